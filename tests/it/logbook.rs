//! The TH40C's event logbook (`P.98`) read over IEC 62056-21 from the
//! simulator: each entry stored once as an event at the meter's time, a
//! read again adding nothing but what is new, and a meter that keeps no
//! logbook not asked again.

use crate::support::{TestApp, WAIT, eventually, iec_meter, serve_one_iec_tcp_device, spawn_app_with_clock};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::sim::iec62056::events::{LoggedEventKind, events};
use ohmnibus::sim::iec62056::{IecKind, SharedMeter};
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

    // The events API serves them.
    let (status, body) = app
        .request("GET", &format!("/api/v1/events?device_id={id}"), Some(&operator), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("meter_logbook"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_meter_that_refuses_its_logbook_is_not_asked_again() {
    let now = at(22, 12, 0);
    let clock = Clock::manual(now);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    let meter = iec_meter(IecKind::Th40c, SEED, "40001", now);
    meter.lock().unwrap().no_logbook = true;
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "TH40C", "profile": "th40c", "iec_address": "40001", "schedule": {"energy_seconds": 1}}),
    )
    .await;
    let unsupported = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE device_id = $1 AND code = 'meter_logbook_unsupported'",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    assert!(eventually(WAIT, || async { unsupported().await == 1 }).await);
    assert_eq!(logbook_requests(&meter).await, 1);
    // The load profile is read on, the logbook not asked for.
    read_now(&app, &operator, id).await;
    assert_eq!((unsupported().await, logbook_requests(&meter).await), (1, 1));
    assert!(stored(&app, id).await.is_empty());
    // Kept, so that a restarted poller does not ask either.
    let refused: Vec<i16> = sqlx::query_scalar("SELECT profile FROM meter_logbook_refusals WHERE device_id = $1")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(refused, vec![98]);
    app.stop().await;
}
