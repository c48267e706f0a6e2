//! Clocks: a value stamped in the future (a meter clock far ahead, a server
//! clock that jumped) is stored flagged `future_timestamp`, a
//! `future_timestamp` event names its device, and it pins no cursor: the
//! normal values stored after it are stored and shown where they belong.
//! One test per cursor, on a manual clock (docs/RELIABILITY.md, "Clocks").

use std::sync::Arc;

use crate::support::{
    TestApp, WAIT, add_unpolled_device, add_unpolled_th40c, eventually, fetch_load_profile, spawn_app_with_clock,
};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ohmnibus::derive::estimate::estimate_gaps;
use ohmnibus::derive::{DeriveServices, run_passes};
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::device::reading::Reading;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::event::{EventCode, EventKind};
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::severity::Severity;
use ohmnibus::domain::source::BillingSource;
use ohmnibus::domain::unit::Unit;
use ohmnibus::metering::billing::{BillingPeriod, BillingRegister};
use ohmnibus::store::billing::{fetch_billing_periods, fetch_last_reset, insert_billing_periods};
use ohmnibus::store::events::{fetch_last_event_spans, insert_event_span};
use ohmnibus::store::load_profile::{fetch_last_meter_interval, insert_meter_intervals, update_profile_read_at};
use ohmnibus::store::profile_derivation::fetch_derived_intervals;
use ohmnibus::store::readings::insert_readings;
use serde_json::{Value, json};

/// The server's time when each test starts: 22 November 2026, 12:00 UTC.
fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

/// A year ahead of [`noon`]: a meter clock far off, a server clock that
/// jumped at boot.
fn next_year() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 11, 22, 12, 0, 0).unwrap()
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn energy(read_at: DateTime<Utc>, kwh: f64) -> Reading {
    Reading {
        obis: "1-1:1.8.0".parse().unwrap(),
        value: kwh,
        unit: Unit::KWh,
        read_at,
        captured_at: None,
        quality: Quality::GOOD,
    }
}

/// A 15-minute interval of 1-1:1.29.0 as a meter's load profile holds it.
fn quarter(start: DateTime<Utc>, kwh: f64) -> Interval {
    Interval {
        obis: "1-1:1.29.0".parse().unwrap(),
        start,
        minutes: 15,
        value: kwh,
        unit: Unit::KWh,
        meter_status: "00".into(),
        quality: Quality::GOOD,
    }
}

/// The device's `future_timestamp` events: (started_at, cleared_at, message).
async fn future_events(app: &TestApp, device: i64) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>, String)> {
    sqlx::query_as(
        "SELECT started_at, cleared_at, message FROM events \
         WHERE device_id = $1 AND code = 'future_timestamp' ORDER BY id",
    )
    .bind(device)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The stored quality of each reading of 1-1:1.8.0, oldest first.
async fn stored_energy(app: &TestApp, device: i64) -> Vec<(DateTime<Utc>, f64, i32)> {
    sqlx::query_as(
        "SELECT read_at, value, quality FROM readings WHERE device_id = $1 AND obis = '1-1:1.8.0' ORDER BY read_at",
    )
    .bind(device)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The latest value of 1-1:1.8.0 as the API shows it: (value, read_at).
async fn latest_energy(app: &TestApp, token: &str, device: i64) -> (f64, String) {
    let (_, body) = app
        .request("GET", &format!("/api/v1/devices/{device}/registers"), Some(token), None)
        .await;
    let register = body["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["obis"] == "1-1:1.8.0")
        .unwrap_or_else(|| panic!("no 1-1:1.8.0 in {body}"))
        .clone();
    (
        register["value"].as_f64().unwrap(),
        register["read_at"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_reading_stamped_in_the_future_is_flagged_and_never_the_latest() {
    let clock = Clock::manual(noon());
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let device = DeviceId(id);

    // First a value a year ahead, then the normal ones.
    insert_readings(&app.pool, &[(device, energy(next_year(), 9_999.0))], clock.now())
        .await
        .unwrap();
    insert_readings(&app.pool, &[(device, energy(noon() - minutes(1), 100.0))], clock.now())
        .await
        .unwrap();
    assert_eq!(
        latest_energy(&app, &engineer, id).await,
        (100.0, "2026-11-22T11:59:00Z".into())
    );
    clock.advance(minutes(15));
    insert_readings(&app.pool, &[(device, energy(noon() + minutes(14), 101.5))], clock.now())
        .await
        .unwrap();
    assert_eq!(
        latest_energy(&app, &engineer, id).await,
        (101.5, "2026-11-22T12:14:00Z".into())
    );

    // All three are stored; only the one a year ahead is flagged (bit 8).
    let stored = stored_energy(&app, id).await;
    assert_eq!(
        stored,
        [
            (noon() - minutes(1), 100.0, 0),
            (noon() + minutes(14), 101.5, 0),
            (next_year(), 9_999.0, 256),
        ]
    );
    // 14 minutes ahead is within the tolerance of 15: not flagged.
    insert_readings(
        &app.pool,
        &[(device, energy(clock.now() + minutes(14), 101.6))],
        clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(latest_energy(&app, &engineer, id).await.0, 101.6);

    // One event, at the server's time, naming the device and the stamp.
    let events = future_events(&app, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (started, cleared, message) = &events[0];
    assert_eq!((*started, *cleared), (noon(), Some(noon())));
    assert!(
        message.starts_with("Main: 1 readings stamped from 2027-11-22T12:00:00Z on"),
        "{message}"
    );
    let (_, listed) = app
        .request("GET", &format!("/api/v1/events?device_id={id}"), Some(&engineer), None)
        .await;
    assert!(listed.to_string().contains("future_timestamp"), "{listed}");
    // A retried batch stores nothing twice, and records no second event.
    insert_readings(&app.pool, &[(device, energy(next_year(), 9_999.0))], clock.now())
        .await
        .unwrap();
    assert_eq!(future_events(&app, id).await.len(), 1);
}

#[tokio::test]
async fn a_latest_reading_stored_before_the_server_clock_jumped_back_gives_way() {
    // The server's clock is a day ahead at boot and stamps a reading so.
    let clock = Clock::manual(noon() + TimeDelta::days(1));
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let device = DeviceId(id);
    insert_readings(&app.pool, &[(device, energy(clock.now(), 200.0))], clock.now())
        .await
        .unwrap();
    assert_eq!(latest_energy(&app, &engineer, id).await.0, 200.0);

    // Set right (a day back): the next reading is the latest again.
    clock.advance(TimeDelta::days(-1));
    insert_readings(&app.pool, &[(device, energy(clock.now(), 150.0))], clock.now())
        .await
        .unwrap();
    assert_eq!(
        latest_energy(&app, &engineer, id).await,
        (150.0, "2026-11-22T12:00:00Z".into())
    );
    clock.advance(minutes(15));
    insert_readings(&app.pool, &[(device, energy(clock.now(), 150.5))], clock.now())
        .await
        .unwrap();
    assert_eq!(
        latest_energy(&app, &engineer, id).await,
        (150.5, "2026-11-22T12:15:00Z".into())
    );
    // The earlier one was not in the future when stored: kept unflagged.
    assert_eq!(
        stored_energy(&app, id).await.last(),
        Some(&(noon() + TimeDelta::days(1), 200.0, 0))
    );
}

/// An A1000 on an IEC bus nothing answers on; returns its id.
async fn unpolled_a1000(app: &TestApp, engineer: &str) -> i64 {
    add_unpolled_device(
        app,
        engineer,
        "iec62056_tcp",
        json!({"name": "A1000 north", "profile": "a1000", "iec_address": "12345678"}),
    )
    .await
}

#[tokio::test]
async fn a_load_profile_interval_in_the_future_pins_no_read_cursor() {
    let clock = Clock::manual(noon());
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = unpolled_a1000(&app, &engineer).await;
    let device = DeviceId(id);

    // The meter's clock was a year ahead for one interval, then set right.
    assert_eq!(
        insert_meter_intervals(&app.pool, device, &[quarter(next_year(), 5.0)], clock.now())
            .await
            .unwrap(),
        1
    );
    let normal: Vec<Interval> = (0..4)
        .map(|k| quarter(noon() - minutes(60) + minutes(15 * k), 1.0 + k as f64))
        .collect();
    assert_eq!(
        insert_meter_intervals(&app.pool, device, &normal, clock.now())
            .await
            .unwrap(),
        4
    );
    // A read resumes after the last normal interval (11:45), not after 2027.
    assert_eq!(
        fetch_last_meter_interval(&app.pool, device, clock.now()).await.unwrap(),
        Some(noon() - minutes(15))
    );

    // The normal ones are shown unflagged; the one a year ahead flagged.
    let flags = |intervals: &[Value]| -> Vec<(String, Value)> {
        intervals
            .iter()
            .map(|i| (i["start"].as_str().unwrap().to_owned(), i["flags"].clone()))
            .collect()
    };
    let shown = fetch_load_profile(&app, &engineer, id, "1-1:1.29.0", noon() - minutes(60), noon()).await;
    assert_eq!(
        flags(&shown),
        [
            ("2026-11-22T11:00:00Z".to_owned(), json!([])),
            ("2026-11-22T11:15:00Z".to_owned(), json!([])),
            ("2026-11-22T11:30:00Z".to_owned(), json!([])),
            ("2026-11-22T11:45:00Z".to_owned(), json!([])),
        ]
    );
    let ahead = fetch_load_profile(
        &app,
        &engineer,
        id,
        "1-1:1.29.0",
        next_year(),
        next_year() + minutes(15),
    )
    .await;
    assert_eq!(
        flags(&ahead),
        [("2027-11-22T12:00:00Z".to_owned(), json!(["future_timestamp"]))]
    );
    let events = future_events(&app, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]
            .2
            .starts_with("A1000 north: 1 load-profile intervals stamped from 2027-11-22T12:00:00Z on"),
        "{}",
        events[0].2
    );

    // The next read, an hour later, brings 12:00-12:45 and again the
    // interval a year ahead: the cursor moves on, no second event.
    clock.advance(minutes(60));
    let mut next: Vec<Interval> = (0..4).map(|k| quarter(noon() + minutes(15 * k), 2.0)).collect();
    next.push(quarter(next_year(), 5.0));
    assert_eq!(
        insert_meter_intervals(&app.pool, device, &next, clock.now())
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        fetch_last_meter_interval(&app.pool, device, clock.now()).await.unwrap(),
        Some(noon() + minutes(45))
    );
    assert_eq!(future_events(&app, id).await.len(), 1);

    // Intervals stored while the server's clock was a day ahead do not pin
    // the read once it is set back either.
    let jumped = noon() + TimeDelta::days(1);
    insert_meter_intervals(&app.pool, device, &[quarter(jumped, 3.0)], jumped)
        .await
        .unwrap();
    assert_eq!(
        fetch_last_meter_interval(&app.pool, device, clock.now()).await.unwrap(),
        Some(noon() + minutes(45))
    );
}

#[tokio::test]
async fn derivation_resumes_after_a_register_read_stamped_in_the_future() {
    let clock = Clock::manual(noon());
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_device(
        &app,
        &engineer,
        "modbus_tcp",
        json!({"name": "E33", "profile": "countis-e33", "address": 1}),
    )
    .await;
    let device = DeviceId(id);
    let code = "1-1:1.8.0".parse().unwrap();

    // A read a year ahead (stored first), then reads every quarter hour
    // from 11:00 to 12:00: 1 kWh a quarter.
    insert_readings(&app.pool, &[(device, energy(next_year(), 90_000.0))], clock.now())
        .await
        .unwrap();
    let reads: Vec<(DeviceId, Reading)> = (0..5)
        .map(|k| (device, energy(noon() - minutes(60) + minutes(15 * k), 10.0 + k as f64)))
        .collect();
    insert_readings(&app.pool, &reads, clock.now()).await.unwrap();
    let derived = || async { fetch_derived_intervals(&app.pool, device, &code).await.unwrap() };
    assert!(
        eventually(WAIT, || async {
            app.derive_now().await;
            derived().await.len() == 4
        })
        .await,
        "{:?}",
        derived().await
    );
    // 11:00-12:00, 1 kWh each, nothing toward the read a year ahead.
    let expected = |quarters: i64| -> Vec<(DateTime<Utc>, i32, f64, Quality)> {
        (0..quarters)
            .map(|k| (noon() - minutes(60) + minutes(15 * k), 15, 1.0, Quality::GOOD))
            .collect()
    };
    app.derive_now().await;
    assert_eq!(derived().await, expected(4));

    // Half an hour later, two more reads: derivation resumes at 12:00.
    clock.advance(minutes(30));
    let later: Vec<(DeviceId, Reading)> = (1..=2)
        .map(|k| (device, energy(noon() + minutes(15 * k), 14.0 + k as f64)))
        .collect();
    insert_readings(&app.pool, &later, clock.now()).await.unwrap();
    assert!(
        eventually(WAIT, || async {
            app.derive_now().await;
            derived().await.len() == 6
        })
        .await,
        "{:?}",
        derived().await
    );
    assert_eq!(derived().await, expected(6));
    let events = future_events(&app, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].2.starts_with("E33: 1 readings"), "{}", events[0].2);
}

#[tokio::test]
async fn a_gap_before_a_future_interval_is_estimated_up_to_the_present_only() {
    // 23 November 12:00: the meter's profile was read through to now; it
    // holds 22 November 10:00-10:45 and one interval a year ahead.
    let now = noon() + TimeDelta::days(1);
    let clock = Clock::manual(now);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = unpolled_a1000(&app, &engineer).await;
    let device = DeviceId(id);
    insert_meter_intervals(&app.pool, device, &[quarter(next_year(), 5.0)], now)
        .await
        .unwrap();
    let ten = noon() - minutes(120);
    let stored: Vec<Interval> = (0..4).map(|k| quarter(ten + minutes(15 * k), 1.0)).collect();
    insert_meter_intervals(&app.pool, device, &stored, now).await.unwrap();
    update_profile_read_at(&app.pool, device, now).await.unwrap();

    let services = DeriveServices {
        pool: app.pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        clock: clock.clone(),
    };
    estimate_gaps(&services).await.unwrap();
    // The trailing gap from 22 November 11:00 is due up to the grace of six
    // hours before now: 23 November 06:00, 19 hours, 76 quarters. Nothing
    // is estimated after it, toward the interval a year ahead.
    let estimated: Vec<(DateTime<Utc>,)> = sqlx::query_as(
        "SELECT interval_start FROM load_profile_intervals \
         WHERE device_id = $1 AND source = 'estimated' ORDER BY interval_start",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(estimated.len(), 76);
    assert_eq!(estimated.first(), Some(&(ten + minutes(60),)));
    assert_eq!(estimated.last(), Some(&(now - TimeDelta::hours(6) - minutes(15),)));
    let gaps: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE device_id = $1 AND code = 'profile_gap'")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(gaps, 1);
    assert_eq!(future_events(&app, id).await.len(), 1);
}

fn billing_period(reset_at: DateTime<Utc>, kwh: f64) -> BillingPeriod {
    BillingPeriod {
        reset_at,
        source: BillingSource::Meter,
        reset_count: None,
        registers: vec![BillingRegister {
            obis: "1-1:1.8.0".parse().unwrap(),
            value: kwh,
            unit: Unit::KWh,
            captured_at: None,
        }],
        quality: Quality::GOOD,
    }
}

#[tokio::test]
async fn billing_periods_close_on_present_reads_and_a_future_reset_is_never_the_newest() {
    // 1 December 2026 09:00 UTC; the site's periods close on the 1st at 00:00.
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let clock = Clock::manual(now);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_device(
        &app,
        &engineer,
        "modbus_tcp",
        json!({"name": "E33", "profile": "countis-e33", "address": 1}),
    )
    .await;
    let device = DeviceId(id);
    let (status, body) = app
        .request(
            "PATCH",
            "/api/v1/sites/1",
            Some(&engineer),
            Some(json!({"billing_day": 1, "billing_hour": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let services = DeriveServices {
        pool: app.pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        clock: clock.clone(),
    };

    // A read before the reset, and one a year ahead: the period waits for
    // a present read after 00:00 rather than reach for the one in 2027.
    let midnight = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let batch = [
        (device, energy(midnight - minutes(30), 100.0)),
        (device, energy(next_year(), 9_000.0)),
    ];
    insert_readings(&app.pool, &batch, now).await.unwrap();
    run_passes(&services).await;
    let server = |periods: Vec<BillingPeriod>| -> Vec<(DateTime<Utc>, f64, Quality)> {
        periods
            .into_iter()
            .filter(|p| p.source == BillingSource::Server)
            .map(|p| (p.reset_at, p.registers[0].value, p.quality))
            .collect()
    };
    assert_eq!(server(fetch_billing_periods(&app.pool, device).await.unwrap()), []);
    // 00:30 at 102 kWh: 00:00 is halfway, 101 kWh.
    insert_readings(&app.pool, &[(device, energy(midnight + minutes(30), 102.0))], now)
        .await
        .unwrap();
    run_passes(&services).await;
    assert_eq!(
        server(fetch_billing_periods(&app.pool, device).await.unwrap()),
        [(midnight, 101.0, Quality::INTERPOLATED)]
    );

    // A meter that closed a period by a clock a year ahead: stored
    // flagged, with an event, and not the newest period of the meter.
    let november = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    insert_billing_periods(&app.pool, device, &[billing_period(november, 90.0)], now)
        .await
        .unwrap();
    insert_billing_periods(&app.pool, device, &[billing_period(next_year(), 95.0)], now)
        .await
        .unwrap();
    assert_eq!(
        fetch_last_reset(&app.pool, device, BillingSource::Meter, now)
            .await
            .unwrap(),
        Some(november)
    );
    let meter: Vec<(DateTime<Utc>, Quality)> = fetch_billing_periods(&app.pool, device)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.source == BillingSource::Meter)
        .map(|p| (p.reset_at, p.quality))
        .collect();
    assert_eq!(
        meter,
        [(next_year(), Quality::FUTURE_TIMESTAMP), (november, Quality::GOOD)]
    );
    // The December period the meter closes next is newer than November.
    insert_billing_periods(&app.pool, device, &[billing_period(midnight, 101.0)], now)
        .await
        .unwrap();
    assert_eq!(
        fetch_last_reset(&app.pool, device, BillingSource::Meter, now)
            .await
            .unwrap(),
        Some(midnight)
    );
    let messages: Vec<String> = future_events(&app, id).await.into_iter().map(|e| e.2).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("E33: 1 readings stamped from 2027-11-22T12:00:00Z"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].starts_with("E33: 1 billing periods stamped from 2027-11-22T12:00:00Z"),
        "{}",
        messages[1]
    );
}

#[tokio::test]
async fn a_meter_event_logged_in_the_future_is_not_the_latest_occurrence() {
    let clock = Clock::manual(noon());
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let id = unpolled_a1000(&app, &engineer).await;
    let device = DeviceId(id);
    let code: EventCode = "power_down".parse().unwrap();
    let kind = EventKind::Meter {
        code: code.clone(),
        severity: Severity::Warning,
    };
    // The meter logged a power down by a clock a year ahead (stored over at
    // once, as the worker stores it), then one at 10:00-10:05.
    insert_event_span(&app.pool, device, &kind, "ahead", next_year(), Some(next_year()))
        .await
        .unwrap();
    let ten = noon() - minutes(120);
    insert_event_span(&app.pool, device, &kind, "present", ten, Some(ten + minutes(5)))
        .await
        .unwrap();
    // Where the worker resumes comparing: the present one.
    let last = fetch_last_event_spans(&app.pool, device, std::slice::from_ref(&code), clock.now())
        .await
        .unwrap();
    assert_eq!(last, [(code.clone(), ten, Some(ten + minutes(5)))]);
    // With only the one ahead stored, it is what there is.
    let other: EventCode = "voltage_loss_l1".parse().unwrap();
    let loss = EventKind::Meter {
        code: other.clone(),
        severity: Severity::Warning,
    };
    insert_event_span(&app.pool, device, &loss, "ahead", next_year(), Some(next_year()))
        .await
        .unwrap();
    let last = fetch_last_event_spans(&app.pool, device, std::slice::from_ref(&other), clock.now())
        .await
        .unwrap();
    assert_eq!(last, [(other, next_year(), Some(next_year()))]);
}
