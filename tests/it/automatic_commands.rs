//! Commands the server queues itself, as `ohmnibus`, on the test's clock:
//! a site's daily clock synchronisation, and tariff switching by calendar
//! for Countis E43s whose tariff source is the bus.

use std::sync::Arc;

use crate::support::{TestApp, WAIT, eventually, spawn_app_with_clock};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::automation::{AutomationServices, run_round};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::BusId;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::countis::{CountisModel, Firmware, Variant};
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::{Value, json};

/// Serves `devices` as RTU over TCP and adds the line as a bus.
async fn line(app: &TestApp, engineer: &str, name: &str, devices: Vec<SimDevice>) -> (SimBus, BusId, Trigger) {
    let sim = SimBus::new(devices);
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(sim.clone(), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": address.port()});
    (sim, app.create_bus(engineer, name, transport).await, stop)
}

async fn add_meter(app: &TestApp, engineer: &str, bus: BusId, profile: &str, unit: u8) -> i64 {
    let body = json!({"name": format!("{profile}@{unit}"), "profile": profile, "address": unit,
                      "schedule": {"realtime_seconds": 3600, "energy_seconds": 3600}});
    app.create_device(engineer, bus, body).await.0
}

fn services(app: &TestApp, clock: &Clock) -> AutomationServices {
    AutomationServices {
        pool: app.pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        clock: clock.clone(),
    }
}

/// The commands the server queued itself: device, kind and parameters, in order.
async fn automatic(app: &TestApp) -> Vec<(i64, Value)> {
    sqlx::query_as::<_, (i64, sqlx::types::Json<Value>)>(
        "SELECT device_id, parameters FROM jobs WHERE kind = 'command' AND requested_by = 'ohmnibus' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(device, parameters)| (device, parameters.0))
    .collect()
}

/// Waits until each device's date and time registers have been read once.
async fn clocks_read(app: &TestApp, devices: &[i64]) {
    let read = eventually(WAIT, || async {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM latest_readings WHERE device_id = ANY($1) AND obis IN ('1-0:0.9.1', '1-0:0.9.2')",
        )
        .bind(devices)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        count == 2 * devices.len() as i64
    })
    .await;
    assert!(read, "the meters' clocks were read");
}

#[tokio::test]
async fn a_drifting_th40c_gets_one_clock_set_a_day_at_its_sites_time() {
    // 15 January 2026, Rome (CET, UTC+1): 02:00Z is 03:00 local.
    let t0 = Utc.with_ymd_and_hms(2026, 1, 15, 2, 0, 0).unwrap();
    let clock = Clock::manual(t0);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let (status, site) = app
        .request(
            "PATCH",
            "/api/v1/sites/1",
            Some(&engineer),
            Some(json!({"time_zone": "Europe/Rome",
            "clock_sync": {"enabled": true, "at": "03:10", "min_drift_s": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(
        site["clock_sync"],
        json!({"enabled": true, "at": "03:10", "min_drift_s": 1})
    );
    let th40c = ProfileSet::builtin().get("th40c").unwrap();
    let mut drifting = Th40cModel::new(1, Tz::Europe__Rome, t0);
    drifting.clock_offset = Duration::seconds(40);
    let on_time = Th40cModel::new(2, Tz::Europe__Rome, t0);
    let devices = vec![
        SimDevice::new(th40c.clone(), 1, drifting, clock.clone()),
        SimDevice::new(th40c, 2, on_time, clock.clone()),
    ];
    let (_sim, bus, stop) = line(&app, &engineer, "line", devices).await;
    let drifting = add_meter(&app, &engineer, bus, "th40c", 1).await;
    let on_time = add_meter(&app, &engineer, bus, "th40c", 2).await;
    clocks_read(&app, &[drifting, on_time]).await;
    // The line goes quiet: the clocks stay as read, 40 s and 0 s off, so
    // only the pass's own rule keeps a second set out the same day.
    drop(stop);
    let shown = || async {
        sqlx::query_as::<_, (f64, DateTime<Utc>)>(
            "SELECT value, read_at FROM latest_readings WHERE device_id = $1 AND obis = '1-0:0.9.1'",
        )
        .bind(drifting)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let first = shown().await;
    // 03:00:40 local, as hhmmss.
    assert_eq!(first.0, 30040.0);

    // 03:09:59 local: not yet.
    clock.advance(Duration::seconds(9 * 60 + 59));
    run_round(&services(&app, &clock)).await;
    assert_eq!(automatic(&app).await, vec![]);
    // 03:10: the meter 40 s ahead gets its clock set; the one on time does not.
    clock.advance(Duration::seconds(1));
    run_round(&services(&app, &clock)).await;
    assert_eq!(automatic(&app).await, vec![(drifting, json!({"kind": "set_clock"}))]);
    // Again, and later the same local day (23:59:59 CET is 22:59:59Z), its
    // clock still read 40 s off: nothing more.
    run_round(&services(&app, &clock)).await;
    clock.advance(Duration::seconds(20 * 3600 + 49 * 60 + 59));
    run_round(&services(&app, &clock)).await;
    assert_eq!(automatic(&app).await.len(), 1);
    assert_eq!(shown().await, first, "the clock as read is unchanged");
    // The next local day, from 03:10 on, it gets another.
    clock.advance(Duration::seconds(1));
    run_round(&services(&app, &clock)).await;
    assert_eq!(automatic(&app).await.len(), 1, "00:00 local on 16 January: not yet");
    clock.advance(Duration::minutes(190));
    run_round(&services(&app, &clock)).await;
    assert_eq!(automatic(&app).await.len(), 2);
    let audits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE actor = 'ohmnibus' AND action = 'command_device'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audits, 2);

    let (status, refused) = app
        .request(
            "PATCH",
            "/api/v1/sites/1",
            Some(&engineer),
            Some(json!({"clock_sync": {"at": "3:10"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["error"]["message"],
        "clock_sync.at: \"3:10\" is not a local time HH:MM"
    );
    app.stop().await;
}

fn e43(unit: u8, at: DateTime<Utc>, clock: &Clock) -> SimDevice {
    let profile = ProfileSet::builtin().get("countis-e43").unwrap();
    let model = CountisModel::new(Variant::E43, Firmware::V201, u64::from(unit), Tz::Europe__Rome, at);
    SimDevice::new(profile, unit, model, clock.clone())
}

fn tariff(sim: &SimBus, unit: u8, at: DateTime<Utc>) -> f64 {
    sim.with_device(unit, |device| {
        device.model.advance(at);
        device.model.value(&"0-0:96.14.0".parse().unwrap(), at).unwrap().0
    })
    .unwrap()
}

#[tokio::test]
async fn at_a_switch_time_one_broadcast_per_bus_sets_the_calendars_tariff() {
    // Sunday 29 March 2026, Rome: at 01:00Z (02:00 CET) clocks jump to
    // 03:00 CEST, so the calendar's 02:30 switch takes effect at 01:00Z.
    let t0 = Utc.with_ymd_and_hms(2026, 3, 29, 0, 50, 0).unwrap();
    let clock = Clock::manual(t0);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let definition = json!({
        "time_zone": "Europe/Rome",
        "bands": ["T1", "T2", "T3"],
        "day_profiles": [{"name": "d", "switches": [
            {"at": "00:00", "band": "T3"}, {"at": "02:30", "band": "T2"}, {"at": "08:00", "band": "T1"}
        ]}],
        "week_profiles": [{"name": "w", "monday": "d", "tuesday": "d", "wednesday": "d",
            "thursday": "d", "friday": "d", "saturday": "d", "sunday": "d"}],
        "seasons": [{"name": "y", "from": "01-01", "to": "12-31", "week_profile": "w"}]
    });
    let (status, calendar) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"name": "three",
            "definition": definition, "effective_from": "2026-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{calendar}");
    let calendar = calendar["id"].as_i64().unwrap();

    // Bus A: three E43s, all under the calendar. Bus B: two, one under it.
    let (sim_a, bus_a, _stop_a) = line(
        &app,
        &engineer,
        "a",
        [5, 6, 7].iter().map(|&unit| e43(unit, t0, &clock)).collect(),
    )
    .await;
    let (_sim_b, bus_b, _stop_b) = line(
        &app,
        &engineer,
        "b",
        [5, 6].iter().map(|&unit| e43(unit, t0, &clock)).collect(),
    )
    .await;
    let mut on_a = Vec::new();
    for unit in [5, 6, 7] {
        on_a.push(add_meter(&app, &engineer, bus_a, "countis-e43", unit).await);
    }
    let controlled_b = add_meter(&app, &engineer, bus_b, "countis-e43", 5).await;
    add_meter(&app, &engineer, bus_b, "countis-e43", 6).await;
    for id in on_a.iter().chain([&controlled_b]) {
        let (status, device) = app
            .request(
                "PATCH",
                &format!("/api/v1/devices/{id}"),
                Some(&engineer),
                Some(json!({"tariff_control": {"calendar_id": calendar}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{device}");
        assert_eq!(device["tariff_control"], json!({"calendar_id": calendar}));
    }

    // The workers have every meter in their lists (a command for a device
    // not polled yet would fail).
    let mut all = on_a.clone();
    all.push(controlled_b);
    let polled = eventually(WAIT, || async {
        let count: i64 =
            sqlx::query_scalar("SELECT count(DISTINCT device_id) FROM latest_readings WHERE device_id = ANY($1)")
                .bind(&all)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        count == all.len() as i64
    })
    .await;
    assert!(polled, "every meter read once");

    // 01:50 CET: T3 since local midnight (23:00Z): tariff 3.
    run_round(&services(&app, &clock)).await;
    let t3 = json!({"kind": "set_tariff", "tariff": 3, "broadcast": true});
    assert_eq!(
        automatic(&app).await,
        vec![
            (on_a[0], t3.clone()),
            (controlled_b, json!({"kind": "set_tariff", "tariff": 3}))
        ]
    );
    // 00:59:59Z, still before the gap: nothing new.
    clock.advance(Duration::seconds(9 * 60 + 59));
    run_round(&services(&app, &clock)).await;
    assert_eq!(automatic(&app).await.len(), 2);
    // 01:00Z, 03:00 CEST: the skipped 02:30 switch to T2, tariff 2, once.
    clock.advance(Duration::seconds(1));
    run_round(&services(&app, &clock)).await;
    run_round(&services(&app, &clock)).await;
    let queued = automatic(&app).await;
    assert_eq!(
        queued[2..],
        [
            (on_a[0], json!({"kind": "set_tariff", "tariff": 2, "broadcast": true})),
            (controlled_b, json!({"kind": "set_tariff", "tariff": 2})),
        ]
    );
    // The broadcast reached every meter of bus A.
    let switched = eventually(WAIT, || async {
        [5, 6, 7].iter().all(|&unit| tariff(&sim_a, unit, clock.now()) == 2.0)
    })
    .await;
    assert!(switched, "every E43 of bus A on tariff 2");

    // A TH40C takes no tariff over the bus; a calendar past 4 bands fits no E43.
    let th40c = add_meter(&app, &engineer, bus_b, "th40c", 9).await;
    let (status, refused) = app
        .request(
            "PATCH",
            &format!("/api/v1/devices/{th40c}"),
            Some(&engineer),
            Some(json!({"tariff_control": {"calendar_id": calendar}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["error"]["message"],
        "tariff_control: its tariff cannot be switched over the bus: kind: th40c has no set_tariff over Modbus in \
         its profile"
    );
    app.stop().await;
}
