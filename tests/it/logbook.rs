//! The TH40C's event logbook (`P.98`) read over IEC 62056-21 from the
//! simulator: each entry stored once as an event at the meter's time, a
//! read again adding nothing but what is new, and a meter that refuses its
//! logbook asked again once a day until it answers.

use crate::support::{
    TestApp, WAIT, eventually, iec_meter, serve_one_iec_tcp_device, spawn_app_deriving_on_demand, spawn_app_with_clock,
};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::sim::iec62056::events::{LoggedEventKind, events};
use ohmnibus::sim::iec62056::{IecKind, SharedMeter};
use ohmnibus::store::logbook::{delete_logbook_refusal, fetch_logbook_refusals, insert_logbook_refusal};
use serde_json::json;

const SEED: u64 = 5;

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap()
}

/// The entries the meter keeps at `now`, computed from its event list: the
/// start and (past) stop of each occurrence its counters report, newest
/// 255 (TH40C manual, "Eventi e allarmi"), as (instant, status).
fn expected_entries(meter: &SharedMeter, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, String)> {
    let epoch = meter.lock().unwrap().history().epoch();
    let kinds = [
        (LoggedEventKind::VoltageLoss, true),
        (LoggedEventKind::PhaseFailure, true),
        (LoggedEventKind::CurrentUnbalance, true),
        (LoggedEventKind::UnderVoltage, true),
        (LoggedEventKind::CurrentLoss, true),
        (LoggedEventKind::OverVoltage, true),
        (LoggedEventKind::PowerDown, false),
        (LoggedEventKind::TerminalCover, false),
    ];
    let mut all = Vec::new();
    for (kind, per_phase) in kinds {
        let phases: &[u8] = if per_phase { &[1, 2, 3] } else { &[0] };
        for &phase in phases {
            for event in events(SEED, kind, phase, epoch, now) {
                all.push((event.start, format!("{:02X}{phase}0", kind as u8)));
                if event.stop <= now {
                    all.push((event.stop, format!("{:02X}{phase}1", kind as u8)));
                }
            }
        }
    }
    all.sort();
    let keep = all.len().min(255);
    all.split_off(all.len() - keep)
}

/// An event row: start, clear time, severity and message.
type EventRow = (DateTime<Utc>, Option<DateTime<Utc>>, String, String);

/// The device's `meter_logbook` events as (start, status), by start.
async fn stored(app: &TestApp, id: i64) -> Vec<(DateTime<Utc>, String)> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT started_at, cleared_at, severity, message FROM events \
         WHERE device_id = $1 AND code = 'meter_logbook' ORDER BY started_at, message",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(started, cleared, severity, message)| {
            assert_eq!((cleared, severity.as_str()), (Some(started), "info"), "{message}");
            let status = message
                .strip_prefix("TH40C: logbook entry (P.98 status ")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{message}"));
            (started, status.to_owned())
        })
        .collect()
}

/// Asks for a read now and waits for it: its turn reads the load profile
/// and, once caught up, the logbook.
async fn read_now(app: &TestApp, operator: &str, id: i64) {
    let (status, job) = app
        .request("POST", &format!("/api/v1/devices/{id}/read"), Some(operator), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let path = format!("/api/v1/reads/{}", job["id"]);
    let done = eventually(WAIT, || async {
        let state = app.request("GET", &path, Some(operator), None).await.1["state"].clone();
        state == "succeeded" || state == "failed"
    })
    .await;
    assert!(done, "read {path} did not end");
}

async fn logbook_requests(meter: &SharedMeter) -> u32 {
    meter.lock().unwrap().logbook_requests
}

#[tokio::test]
async fn the_th40c_logbook_is_stored_once_at_the_meters_times() {
    let now = at(22, 12, 0);
    let clock = Clock::manual(now);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    let meter = iec_meter(IecKind::Th40c, SEED, "40001", now);
    // A day of load profile kept: its backfill ends after a few answers
    // without records, and the turns that read the logbook follow.
    meter.lock().unwrap().config.profile_days = Some(1);
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "TH40C", "profile": "th40c", "iec_address": "40001", "schedule": {"energy_seconds": 1}}),
    )
    .await;
    let want = expected_entries(&meter, now);
    assert_eq!(want.len(), 255, "the meter's event model fills its logbook");
    let read = eventually(WAIT, || async { stored(&app, id).await.len() >= 255 }).await;
    assert!(
        read,
        "the logbook was not read: {} stored",
        stored(&app, id).await.len()
    );
    assert_eq!(stored(&app, id).await, want);

    // Read again (the request names the newest stored entry, which the
    // meter sends again): nothing is added.
    let asked = logbook_requests(&meter).await;
    let again = eventually(WAIT, || async {
        read_now(&app, &operator, id).await;
        logbook_requests(&meter).await >= asked + 2
    })
    .await;
    assert!(again, "the logbook was not read again");
    assert_eq!(stored(&app, id).await, want);

    // Two days on: what the meter logged since is added, once; the older
    // entries stay, even those the meter no longer keeps.
    let later = now + TimeDelta::days(2);
    clock.advance(TimeDelta::days(2));
    let newer: Vec<_> = expected_entries(&meter, later)
        .into_iter()
        .filter(|(at, _)| *at > want.last().unwrap().0)
        .collect();
    assert!(!newer.is_empty(), "two days bring new entries");
    let mut union = want.clone();
    union.extend(newer);
    let caught_up = eventually(WAIT, || async {
        read_now(&app, &operator, id).await;
        stored(&app, id).await.len() >= union.len()
    })
    .await;
    assert!(caught_up, "the new entries were not read");
    assert_eq!(stored(&app, id).await, union);

    // The device page says how many are stored and the newest's stamp.
    let newest = union.last().unwrap().0.format("%Y-%m-%d %H:%M:%S UTC");
    let page = device_page(&app, &operator, id).await;
    assert!(
        page.contains(&format!("{} entries stored, the newest of {newest}", union.len())),
        "{page}"
    );

    // The events API serves them.
    let (status, body) = app
        .request("GET", &format!("/api/v1/events?device_id={id}"), Some(&operator), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("meter_logbook"), "{body}");
    app.stop().await;
}

/// The device page's text.
async fn device_page(app: &TestApp, token: &str, id: i64) -> String {
    let (status, page) = app.request("GET", &format!("/devices/{id}"), Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    page.as_str().unwrap().to_owned()
}

/// The device's refusals as (profile, refused_at).
async fn refusals(app: &TestApp, id: i64) -> Vec<(i16, DateTime<Utc>)> {
    sqlx::query_as("SELECT profile, refused_at FROM meter_logbook_refusals WHERE device_id = $1")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// The device's `meter_logbook_unsupported` events' messages.
async fn unsupported(app: &TestApp, id: i64) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT message FROM events WHERE device_id = $1 AND code = 'meter_logbook_unsupported' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_meter_that_refuses_its_logbook_is_asked_again_a_day_on() {
    let now = at(22, 12, 0);
    let clock = Clock::manual(now);
    // Derivation on demand only: no pass races the clock's moves.
    let app = spawn_app_deriving_on_demand(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    let meter = iec_meter(IecKind::Th40c, SEED, "40001", now);
    {
        let mut meter = meter.lock().unwrap();
        meter.no_logbook = true;
        // A day of load profile kept: each read below is caught up, so its
        // turn asks for the logbook if it is due.
        meter.config.profile_days = Some(1);
    }
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "TH40C", "profile": "th40c", "iec_address": "40001", "schedule": {"energy_seconds": 1}}),
    )
    .await;
    assert!(eventually(WAIT, || async { unsupported(&app, id).await.len() == 1 }).await);
    assert_eq!(logbook_requests(&meter).await, 1);
    let message = &unsupported(&app, id).await[0];
    assert!(
        message.ends_with("asked again once a day until it answers, first at 2026-11-23T12:00:00Z"),
        "{message}"
    );
    // Kept with its time, so that a restarted poller waits the day too.
    assert_eq!(refusals(&app, id).await, vec![(98, now)]);
    let page = device_page(&app, &operator, id).await;
    assert!(
        page.contains("the meter refused it on 2026-11-22 12:00:00 UTC")
            && page.contains("asked again from 2026-11-23 12:00:00 UTC"),
        "{page}"
    );

    // Within the day: the load profile is read on, the logbook not asked.
    clock.advance(TimeDelta::hours(23) + TimeDelta::minutes(59));
    read_now(&app, &operator, id).await;
    read_now(&app, &operator, id).await;
    assert_eq!(logbook_requests(&meter).await, 1);

    // A day on it is asked again; refused again, the refusal moves to now
    // without a second event.
    clock.advance(TimeDelta::minutes(1));
    let second = now + TimeDelta::days(1);
    let asked = eventually(WAIT, || async {
        read_now(&app, &operator, id).await;
        logbook_requests(&meter).await >= 2
    })
    .await;
    assert!(asked, "the refused logbook was not asked again a day on");
    assert!(eventually(WAIT, || async { refusals(&app, id).await == vec![(98, second)] }).await);
    assert_eq!(unsupported(&app, id).await.len(), 1);
    assert!(stored(&app, id).await.is_empty());

    // The meter starts logging. Short of a day after the second refusal it
    // is not asked; past it, its whole log is read and stored, and the
    // refusal goes.
    meter.lock().unwrap().no_logbook = false;
    clock.advance(TimeDelta::hours(12));
    read_now(&app, &operator, id).await;
    assert_eq!(logbook_requests(&meter).await, 2);
    assert!(stored(&app, id).await.is_empty());
    clock.advance(TimeDelta::hours(13));
    let later = second + TimeDelta::hours(25);
    let want = expected_entries(&meter, later);
    assert!(!want.is_empty());
    let read = eventually(WAIT, || async {
        read_now(&app, &operator, id).await;
        stored(&app, id).await.len() >= want.len()
    })
    .await;
    assert!(
        read,
        "the logbook was not read: {} stored",
        stored(&app, id).await.len()
    );
    assert_eq!(stored(&app, id).await, want);
    assert!(eventually(WAIT, || async { refusals(&app, id).await.is_empty() }).await);
    assert_eq!(unsupported(&app, id).await.len(), 1);
    let page = device_page(&app, &operator, id).await;
    assert!(
        page.contains(&format!("{} entries stored", want.len())) && !page.contains("the meter refused it on"),
        "{page}"
    );
    app.stop().await;
}

/// What a restarted poller loads of a refusal: the time of the last one,
/// one event however often the meter refused, and nothing once it answered.
#[tokio::test]
async fn a_repeated_refusal_moves_its_time_and_raises_no_new_event() {
    let app = spawn_app_with_clock(Clock::manual(at(22, 12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1});
    let bus = app.create_bus(&engineer, "line", transport).await;
    let device = app
        .create_device(
            &engineer,
            bus,
            json!({"name": "TH40C", "profile": "th40c", "address": 1}),
        )
        .await;
    for (message, when) in [
        ("first", at(22, 12, 0)),
        ("again", at(23, 12, 0)),
        ("late", at(22, 18, 0)),
    ] {
        insert_logbook_refusal(&app.pool, device, 98, message, when)
            .await
            .unwrap();
    }
    // A late write of an older refusal does not move the time back.
    assert_eq!(
        fetch_logbook_refusals(&app.pool, device).await.unwrap(),
        vec![(98, at(23, 12, 0))]
    );
    assert_eq!(unsupported(&app, device.0).await, vec!["first"]);
    delete_logbook_refusal(&app.pool, device, 98).await.unwrap();
    assert!(fetch_logbook_refusals(&app.pool, device).await.unwrap().is_empty());
    assert_eq!(unsupported(&app, device.0).await, vec!["first"]);
    app.stop().await;
}
