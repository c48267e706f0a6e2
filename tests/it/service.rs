//! The use cases of `ohmnibus::service` against a real database: the rules
//! that guard them (addresses on a bus, profiles, periods, roles) and that
//! a use case's audit row is written with its change, never without it.

use crate::support::TestDb;
use chrono::{TimeZone, Utc};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::event::EventKind;
use ohmnibus::domain::ids::{BusId, DeviceId, SiteId};
use ohmnibus::domain::role::Role;
use ohmnibus::domain::transport::Transport;
use ohmnibus::service::buses::{NewBus, create_bus};
use ohmnibus::service::device_request::{NewDevice, Periods};
use ohmnibus::service::device_settings::{DeviceChange, update_device};
use ohmnibus::service::devices::{add_device, get_device};
use ohmnibus::service::events::acknowledge_event;
use ohmnibus::service::load_profile_corrections::{IntervalCorrection, correct_load_profile};
use ohmnibus::service::sites::{SiteChange, update_site};
use ohmnibus::service::{Caller, ServiceError};
use ohmnibus::store::events::{EventFilter, fetch_events, insert_event};
use sqlx::PgPool;

fn caller(role: Role) -> Caller {
    Caller {
        user: format!("{role}-1"),
        role,
    }
}

async fn audit_rows(pool: &PgPool, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn bus(pool: &PgPool, name: &str, transport: Transport) -> BusId {
    let new = NewBus {
        name: name.to_owned(),
        transport,
        site_id: None,
    };
    create_bus(pool, &caller(Role::Engineer), &new).await.unwrap().id
}

fn modbus_tcp(port: u16) -> Transport {
    Transport::ModbusTcp {
        host: "127.0.0.1".to_owned(),
        port,
    }
}

fn th40c(bus_id: BusId, address: i64) -> NewDevice {
    NewDevice {
        name: format!("meter {address}"),
        bus_id,
        profile: "th40c".to_owned(),
        address: Some(address),
        iec_address: None,
        schedule: Periods::default(),
    }
}

fn a1000(bus_id: BusId, iec_address: Option<&str>) -> NewDevice {
    NewDevice {
        name: "A1000".to_owned(),
        bus_id,
        profile: "a1000".to_owned(),
        address: None,
        iec_address: iec_address.map(str::to_owned),
        schedule: Periods::default(),
    }
}

fn field_of(error: &ServiceError) -> String {
    match error {
        ServiceError::Conflict { field, .. } => format!("conflict {field}"),
        ServiceError::Invalid { field, .. } => format!("invalid {field}"),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn a_unit_address_is_taken_once_per_bus_and_only_the_device_added_is_audited() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let profiles = ProfileSet::builtin();
    let engineer = caller(Role::Engineer);
    let line_1 = bus(&pool, "line-1", modbus_tcp(5020)).await;
    let line_2 = bus(&pool, "line-2", modbus_tcp(5021)).await;

    add_device(&pool, &profiles, &engineer, &th40c(line_1, 7))
        .await
        .unwrap();
    let taken = add_device(&pool, &profiles, &engineer, &th40c(line_1, 7))
        .await
        .unwrap_err();
    assert_eq!(field_of(&taken), "conflict address");
    assert_eq!(
        taken.to_string(),
        "address: another device on this bus already has this address"
    );
    // The same address on another bus is another device.
    add_device(&pool, &profiles, &engineer, &th40c(line_2, 7))
        .await
        .unwrap();
    assert_eq!(audit_rows(&pool, "create_device").await, 2);
}

#[tokio::test]
async fn an_iec_address_is_taken_once_per_line_and_a_probe_reads_one_meter() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let profiles = ProfileSet::builtin();
    let engineer = caller(Role::Engineer);
    let line = bus(
        &pool,
        "iec-line",
        Transport::Iec62056Tcp {
            host: "127.0.0.1".to_owned(),
            port: 5030,
        },
    )
    .await;
    add_device(&pool, &profiles, &engineer, &a1000(line, Some("12345678")))
        .await
        .unwrap();
    let taken = add_device(&pool, &profiles, &engineer, &a1000(line, Some(" 12345678 ")))
        .await
        .unwrap_err();
    assert_eq!(field_of(&taken), "conflict iec_address");
    let missing = add_device(&pool, &profiles, &engineer, &a1000(line, None))
        .await
        .unwrap_err();
    assert_eq!(field_of(&missing), "invalid iec_address");
    let unit = NewDevice {
        address: Some(3),
        ..a1000(line, Some("87654321"))
    };
    let refused = add_device(&pool, &profiles, &engineer, &unit).await.unwrap_err();
    assert_eq!(field_of(&refused), "invalid address");

    let probe = bus(
        &pool,
        "probe",
        Transport::Optical {
            path: "/dev/ttyUSB9".to_owned(),
            max_baud: 9600,
            settle_ms: 300,
        },
    )
    .await;
    let first = add_device(&pool, &profiles, &engineer, &a1000(probe, None))
        .await
        .unwrap();
    assert_eq!(first.iec_address.as_deref(), Some(""));
    let second = add_device(&pool, &profiles, &engineer, &a1000(probe, Some("1")))
        .await
        .unwrap_err();
    assert_eq!(field_of(&second), "invalid bus_id");
    assert_eq!(audit_rows(&pool, "create_device").await, 2);
}

#[tokio::test]
async fn a_device_needs_a_known_profile_of_its_buses_protocol_and_periods_in_bounds() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let profiles = ProfileSet::builtin();
    let engineer = caller(Role::Engineer);
    let line = bus(&pool, "line", modbus_tcp(5020)).await;

    let unknown = NewDevice {
        profile: "nope".to_owned(),
        ..th40c(line, 1)
    };
    let error = add_device(&pool, &profiles, &engineer, &unknown).await.unwrap_err();
    assert_eq!(field_of(&error), "invalid profile");
    assert!(error.to_string().contains("th40c"), "{error}");
    let wrong_protocol = NewDevice {
        address: Some(1),
        ..a1000(line, None)
    };
    let error = add_device(&pool, &profiles, &engineer, &wrong_protocol)
        .await
        .unwrap_err();
    assert_eq!(field_of(&error), "invalid profile");
    let no_bus = add_device(&pool, &profiles, &engineer, &th40c(BusId(999), 1))
        .await
        .unwrap_err();
    assert_eq!(no_bus.to_string(), "bus_id: no bus 999");
    let too_slow = NewDevice {
        schedule: Periods {
            energy_seconds: Some(86_401),
            ..Periods::default()
        },
        ..th40c(line, 1)
    };
    let error = add_device(&pool, &profiles, &engineer, &too_slow).await.unwrap_err();
    assert_eq!(error.to_string(), "schedule.energy_seconds: must be 1-86400 seconds");
    let out_of_range = add_device(&pool, &profiles, &engineer, &th40c(line, 248))
        .await
        .unwrap_err();
    assert_eq!(field_of(&out_of_range), "invalid address");
    // The COUNTIS E33 takes addresses up to 255 (its manual: x254 (255)),
    // the TH40C up to 247; 256 is no address at all.
    let e33 = NewDevice {
        profile: "countis-e33".to_owned(),
        ..th40c(line, 255)
    };
    add_device(&pool, &profiles, &engineer, &e33).await.unwrap();
    let too_far = NewDevice {
        profile: "countis-e33".to_owned(),
        ..th40c(line, 256)
    };
    let error = add_device(&pool, &profiles, &engineer, &too_far).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "address: address 256 is out of range: a device address is 1-255"
    );

    let viewer = add_device(&pool, &profiles, &caller(Role::Viewer), &th40c(line, 1))
        .await
        .unwrap_err();
    assert!(matches!(viewer, ServiceError::Forbidden { .. }), "{viewer:?}");
    assert_eq!(audit_rows(&pool, "create_device").await, 1, "the E33 alone was added");
}

#[tokio::test]
async fn a_refused_change_leaves_the_device_as_it_was_and_unaudited() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let profiles = ProfileSet::builtin();
    let engineer = caller(Role::Engineer);
    let line = bus(&pool, "line", modbus_tcp(5020)).await;
    let device = add_device(&pool, &profiles, &engineer, &th40c(line, 1)).await.unwrap();

    let change = DeviceChange {
        name: Some("Renamed".to_owned()),
        phases: Some(Some(2)),
        ..DeviceChange::default()
    };
    let error = update_device(&pool, &ProfileSet::builtin(), &engineer, device.id, &change)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "phases: 2 is not 1 or 3");
    let unchanged = get_device(&pool, &engineer, device.id).await.unwrap();
    assert_eq!(unchanged.name, "meter 1");
    assert_eq!(audit_rows(&pool, "update_device").await, 0);

    let change = DeviceChange {
        name: Some("Renamed".to_owned()),
        ct_ratio: Some(Some(40.0)),
        ..DeviceChange::default()
    };
    let changed = update_device(&pool, &ProfileSet::builtin(), &engineer, device.id, &change)
        .await
        .unwrap();
    assert_eq!((changed.name.as_str(), changed.ct_ratio), ("Renamed", 40.0));
    // Null restores the default.
    let change = DeviceChange {
        ct_ratio: Some(None),
        ..DeviceChange::default()
    };
    let restored = update_device(&pool, &ProfileSet::builtin(), &engineer, device.id, &change)
        .await
        .unwrap();
    assert_eq!(restored.ct_ratio, 1.0);
    assert_eq!(audit_rows(&pool, "update_device").await, 2);

    let missing = update_device(
        &pool,
        &ProfileSet::builtin(),
        &engineer,
        DeviceId(999),
        &DeviceChange::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(missing, ServiceError::NotFound(_)), "{missing:?}");
}

#[tokio::test]
async fn the_first_acknowledgement_stands_and_each_is_audited() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let profiles = ProfileSet::builtin();
    let line = bus(&pool, "line", modbus_tcp(5020)).await;
    let device = add_device(&pool, &profiles, &caller(Role::Engineer), &th40c(line, 1))
        .await
        .unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
    insert_event(&pool, device.id, &EventKind::CommLost, "no answer", at)
        .await
        .unwrap();
    let id = fetch_events(
        &pool,
        &EventFilter {
            limit: 10,
            ..EventFilter::default()
        },
    )
    .await
    .unwrap()[0]
        .id;

    let viewer = acknowledge_event(&pool, &caller(Role::Viewer), id).await.unwrap_err();
    assert!(matches!(viewer, ServiceError::Forbidden { .. }), "{viewer:?}");
    let first = acknowledge_event(&pool, &caller(Role::Operator), id).await.unwrap();
    assert_eq!(first.acknowledged_by.as_deref(), Some("operator-1"));
    let second = acknowledge_event(&pool, &caller(Role::Engineer), id).await.unwrap();
    assert_eq!(second.acknowledged_by.as_deref(), Some("operator-1"));
    assert_eq!(audit_rows(&pool, "ack_event").await, 2);
    let missing = acknowledge_event(&pool, &caller(Role::Operator), id + 1000)
        .await
        .unwrap_err();
    assert_eq!(missing.to_string(), format!("no event {}", id + 1000));
}

#[tokio::test]
async fn a_correction_of_an_interval_not_stored_changes_nothing() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let profiles = ProfileSet::builtin();
    let engineer = caller(Role::Engineer);
    let line = bus(&pool, "line", modbus_tcp(5020)).await;
    let device = add_device(&pool, &profiles, &engineer, &th40c(line, 1)).await.unwrap();
    let intervals = [IntervalCorrection {
        start: "2026-11-22T08:15:00Z".to_owned(),
        obis: "1-0:1.8.0".to_owned(),
        value: 1.4,
    }];
    let error = correct_load_profile(&pool, &engineer, device.id, &intervals, Some("site visit"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "intervals[0]: no interval of 1-0:1.8.0 starts at 2026-11-22T08:15:00Z"
    );
    assert_eq!(audit_rows(&pool, "correct_load_profile").await, 0);
    let no_device = correct_load_profile(&pool, &engineer, DeviceId(999), &intervals, Some("x"))
        .await
        .unwrap_err();
    assert_eq!(no_device.to_string(), "no device 999");
}

#[tokio::test]
async fn a_billing_schedule_is_set_on_an_existing_site() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let engineer = caller(Role::Engineer);
    let site: SiteId = sqlx::query_scalar("SELECT min(id) FROM sites")
        .fetch_one(&pool)
        .await
        .unwrap();
    let row = update_site(
        &pool,
        &engineer,
        site,
        SiteChange {
            billing_day: Some(1),
            billing_hour: Some(0),
            time_zone: None,
            ..SiteChange::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((row.billing_day, row.billing_hour), (Some(1), Some(0)));
    let missing = update_site(
        &pool,
        &engineer,
        SiteId(999),
        SiteChange {
            billing_day: None,
            billing_hour: None,
            time_zone: None,
            ..SiteChange::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(missing.to_string(), "no site 999");
    let half = update_site(
        &pool,
        &engineer,
        site,
        SiteChange {
            billing_day: Some(1),
            billing_hour: None,
            time_zone: None,
            ..SiteChange::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(half.to_string(), "billing_hour: is required with billing_day");
    assert_eq!(audit_rows(&pool, "update_site").await, 1);
}

#[tokio::test]
async fn a_change_whose_audit_row_fails_is_not_stored() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let profiles = ProfileSet::builtin();
    let engineer = caller(Role::Engineer);
    let line = bus(&pool, "line", modbus_tcp(5020)).await;
    // This database refuses the audit rows of new devices.
    sqlx::query("ALTER TABLE audit_log ADD CONSTRAINT no_device_audit CHECK (action <> 'create_device')")
        .execute(&pool)
        .await
        .unwrap();
    let error = add_device(&pool, &profiles, &engineer, &th40c(line, 1))
        .await
        .unwrap_err();
    assert!(matches!(error, ServiceError::Storage(_)), "{error:?}");
    let devices: i64 = sqlx::query_scalar("SELECT count(*) FROM devices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(devices, 0, "the device was stored without its audit row");
}

#[tokio::test]
async fn a_token_is_issued_with_its_audit_row_or_not_at_all() {
    use ohmnibus::service::tokens::{authenticate, issue_token};
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let token = issue_token(&pool, " alice ", Role::Operator).await.unwrap();
    let alice = authenticate(&pool, &token).await.unwrap().unwrap();
    assert_eq!((alice.user.as_str(), alice.role), ("alice", Role::Operator));
    assert!(authenticate(&pool, "ohm_unknown").await.unwrap().is_none());

    let refused = issue_token(&pool, "alice", Role::Engineer).await.unwrap_err();
    assert_eq!(field_of(&refused), "conflict name");
    let blank = issue_token(&pool, "  ", Role::Viewer).await.unwrap_err();
    assert_eq!(blank.to_string(), "name: must not be empty");
    assert_eq!(audit_rows(&pool, "create_token").await, 1);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}
