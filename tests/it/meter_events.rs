//! The event log of a simulated A1000 read over IEC 62056-21 TCP, on a
//! clock the test moves: the occurrences the meter logs with their start
//! and stop, the conditions of its status words, and the meter going
//! silent and answering again, each stored at the instant it happened.

use crate::support::{
    SILENT_METER_TIMEOUT, TestApp, WAIT, eventually, iec_meter, serve_one_iec_tcp_device, spawn_app_with,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::sim::iec62056::IecKind;
use ohmnibus::sim::iec62056::codes::phase_summary;
use ohmnibus::sim::iec62056::events::{LoggedEventKind, active, events};
use serde_json::json;

const SEED: u64 = 23;
const ADDRESS: &str = "23232323";

/// The A1000's event registers as the profile pairs them: event code, the
/// simulator's kind and phase.
const LOGGED: [(&str, LoggedEventKind, u8); 11] = [
    ("voltage_loss_l1", LoggedEventKind::VoltageLoss, 1),
    ("voltage_loss_l2", LoggedEventKind::VoltageLoss, 2),
    ("voltage_loss_l3", LoggedEventKind::VoltageLoss, 3),
    ("phase_failure_l1", LoggedEventKind::PhaseFailure, 1),
    ("phase_failure_l2", LoggedEventKind::PhaseFailure, 2),
    ("phase_failure_l3", LoggedEventKind::PhaseFailure, 3),
    ("over_current_l1", LoggedEventKind::OverCurrent, 1),
    ("over_current_l2", LoggedEventKind::OverCurrent, 2),
    ("over_current_l3", LoggedEventKind::OverCurrent, 3),
    ("reverse_run", LoggedEventKind::ReverseRun, 0),
    ("power_down", LoggedEventKind::PowerDown, 0),
];

/// The device's events of `code`, oldest first: (started_at, cleared_at).
async fn spans(app: &TestApp, device: i64, code: &str) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    sqlx::query_as(
        "SELECT started_at, cleared_at FROM events WHERE device_id = $1 AND code = $2 ORDER BY started_at, id",
    )
    .bind(device)
    .bind(code)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Queues a read and waits until it ends; returns its final state.
async fn read(app: &TestApp, token: &str, device: i64) -> String {
    let (status, job) = app
        .request("POST", &format!("/api/v1/devices/{device}/read"), Some(token), None)
        .await;
    assert_eq!(status.as_u16(), 202, "{job}");
    let path = format!("/api/v1/reads/{}", job["id"]);
    let ended = eventually(WAIT, || async {
        let (_, job) = app.request("GET", &path, Some(token), None).await;
        job["state"] == "succeeded" || job["state"] == "failed"
    })
    .await;
    let (_, job) = app.request("GET", &path, Some(token), None).await;
    assert!(ended, "the read did not end: {job}");
    job["state"].as_str().unwrap().to_owned()
}

/// Every logged pair's latest stored event equals the meter's latest
/// occurrence at `now`, as the simulator's own event list gives it.
async fn check_logged(app: &TestApp, device: i64, epoch: DateTime<Utc>, now: DateTime<Utc>) {
    let mut seen = 0;
    for (code, kind, phase) in LOGGED {
        let last = phase_summary(SEED, kind, phase, (epoch, now));
        let stored = spans(app, device, code).await;
        match last.last_start {
            None => assert!(stored.is_empty(), "{code}: {stored:?}"),
            Some(start) => {
                seen += 1;
                assert_eq!(stored.last(), Some(&(start, last.last_stop)), "{code}");
            }
        }
    }
    assert!(seen >= 6, "the meter logged occurrences of most kinds ({seen})");
}

#[tokio::test]
async fn meter_events_status_bits_and_silence_are_stored_when_they_happened() {
    // The clock starts on the first phase-1 voltage loss after 1 October,
    // while it is going on.
    let from = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let loss = events(SEED, LoggedEventKind::VoltageLoss, 1, from, from + TimeDelta::days(90))[0];
    let t0 = loss.start;
    let clock = Clock::manual(t0);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let token = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::A1000, SEED, ADDRESS, t0);
    let epoch = meter.lock().unwrap().history().epoch();
    // Read on demand only: the test says when.
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &token,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": ADDRESS,
                        "schedule": {"energy_seconds": 86400}}),
    )
    .await;

    // The first scheduled read, as soon as the bus's worker runs.
    let path = format!("/api/v1/devices/{id}");
    let online = eventually(WAIT, || async {
        app.request("GET", &path, Some(&token), None).await.1["status"]["state"] == "online"
    })
    .await;
    assert!(online, "the meter was never read");

    // The meter's event registers: each code's latest occurrence, the
    // voltage loss open since it started.
    check_logged(&app, id, epoch, t0).await;
    assert_eq!(spans(&app, id, "voltage_loss_l1").await.last(), Some(&(t0, None)));
    // The warning word shows the loss (ERR1 bit 2) from this read on.
    assert_eq!(spans(&app, id, "phase_voltage_loss").await, [(t0, None)]);

    // After the loss ended, the meter logs its stop: the event clears then,
    // and the warning bit clears at the read that no longer shows it.
    let t1 = loss.stop + TimeDelta::minutes(5);
    clock.advance(t1 - t0);
    assert_eq!(read(&app, &token, id).await, "succeeded");
    check_logged(&app, id, epoch, t1).await;
    assert!(
        spans(&app, id, "voltage_loss_l1")
            .await
            .contains(&(t0, Some(loss.stop))),
        "cleared at the meter's stop"
    );
    let still_lost = (1..=3).any(|phase| active(SEED, LoggedEventKind::VoltageLoss, phase, t1));
    let expected = if still_lost { None } else { Some(t1) };
    assert_eq!(spans(&app, id, "phase_voltage_loss").await, [(t0, expected)]);

    // ERR2 bit 6: a low battery opens a critical event at the read that
    // sees it and clears at the read that no longer does.
    meter.lock().unwrap().config.error_bits = 0x40;
    let t2 = t1 + TimeDelta::minutes(10);
    clock.advance(t2 - t1);
    assert_eq!(read(&app, &token, id).await, "succeeded");
    meter.lock().unwrap().config.error_bits = 0;
    let t3 = t2 + TimeDelta::minutes(10);
    clock.advance(t3 - t2);
    assert_eq!(read(&app, &token, id).await, "succeeded");
    assert_eq!(spans(&app, id, "low_battery").await, [(t2, Some(t3))]);

    // The meter stops answering (nothing on the line has its address any
    // more): `comm_lost` opens when the device turns unreachable, and clears with a
    // `comm_restored` at the first read it answers again.
    meter.lock().unwrap().config.address = "99999999".into();
    let t4 = t3 + TimeDelta::minutes(10);
    clock.advance(t4 - t3);
    // A read that finds no answer counts one failure; the third in a row
    // makes the device unreachable.
    for _ in 0..3 {
        assert_eq!(read(&app, &token, id).await, "failed");
    }
    let (_, device) = app.request("GET", &path, Some(&token), None).await;
    assert_eq!(device["status"]["state"], "unreachable", "{device}");
    assert_eq!(spans(&app, id, "comm_lost").await, [(t4, None)]);
    meter.lock().unwrap().config.address = ADDRESS.into();
    let t5 = t4 + TimeDelta::minutes(30);
    clock.advance(t5 - t4);
    assert_eq!(read(&app, &token, id).await, "succeeded");
    assert_eq!(spans(&app, id, "comm_lost").await, [(t4, Some(t5))]);
    assert_eq!(spans(&app, id, "comm_restored").await, [(t5, Some(t5))]);

    // The API lists them with the meter's times.
    let (_, listed) = app
        .request("GET", &format!("/api/v1/events?device_id={id}"), Some(&token), None)
        .await;
    let voltage_loss = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["code"] == "voltage_loss_l1" && event["started_at"] == json!(t0))
        .cloned()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(voltage_loss["cleared_at"], json!(loss.stop));
    assert_eq!(voltage_loss["severity"], "warning");
    app.stop().await;
}

/// An A1000 whose ERR2 word (`F.F.0`, 8 binary digits in its manual's
/// App. B) comes written in hex (`4C`): the word is not guessed at. Its
/// low-battery condition, read before, stays open; `status_word_unreadable`
/// names the word and what the meter wrote; once the word reads again the
/// event clears and the conditions follow the word.
#[tokio::test]
async fn a_status_word_in_neither_form_is_reported_and_its_conditions_kept() {
    let t0 = Utc.with_ymd_and_hms(2026, 10, 1, 12, 0, 0).unwrap();
    let clock = Clock::manual(t0);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let token = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::A1000, SEED, ADDRESS, t0);
    meter.lock().unwrap().config.error_bits = 0x40; // bit 6: low battery
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &token,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": ADDRESS,
                        "schedule": {"energy_seconds": 86400}}),
    )
    .await;
    let battery = eventually(WAIT, || async { spans(&app, id, "low_battery").await == [(t0, None)] }).await;
    assert!(battery, "{:?}", spans(&app, id, "low_battery").await);

    meter.lock().unwrap().config.error_word_text = Some("4C".into());
    clock.advance(TimeDelta::minutes(5));
    assert_eq!(read(&app, &token, id).await, "succeeded");
    let t1 = t0 + TimeDelta::minutes(5);
    assert_eq!(spans(&app, id, "status_word_unreadable").await, [(t1, None)]);
    let message: String =
        sqlx::query_scalar("SELECT message FROM events WHERE device_id = $1 AND code = 'status_word_unreadable'")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(message.contains("0-0:F.F.0: \"4C\" is not binary digits"), "{message}");
    // 0x4C would be bits 2, 3 and 6: none of them is taken.
    assert_eq!(spans(&app, id, "low_battery").await, [(t0, None)]);
    assert!(spans(&app, id, "eeprom_error").await.is_empty());

    // The word reads again, without the battery bit.
    {
        let mut meter = meter.lock().unwrap();
        meter.config.error_word_text = None;
        meter.config.error_bits = 0;
    }
    clock.advance(TimeDelta::minutes(5));
    assert_eq!(read(&app, &token, id).await, "succeeded");
    let t2 = t1 + TimeDelta::minutes(5);
    assert_eq!(spans(&app, id, "status_word_unreadable").await, [(t1, Some(t2))]);
    assert_eq!(spans(&app, id, "low_battery").await, [(t0, Some(t2))]);
}
