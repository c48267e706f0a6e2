//! A command to an IEC 62056-21 meter that takes programming only in
//! "PRG": it waits in `awaiting_field_programming`, tells the technician
//! what to do, is tried again as time passes, and goes through once the
//! window opens, fails when it never does, or is cancelled meanwhile.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::{DateTime, Duration as TimeDelta, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::sim::iec62056::{IecKind, Received};
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, eventually, iec_meter, quick_iec_line, serve_iec_tcp, spawn_app_with_clock};

const ADDRESS: &str = "12345678";

async fn state_of(app: &TestApp, token: &str, id: &Value) -> Value {
    app.request("GET", &format!("/api/v1/commands/{id}"), Some(token), None)
        .await
        .1
}

async fn until_state(app: &TestApp, token: &str, id: &Value, wanted: &str) -> Value {
    let reached = eventually(WAIT, || async { state_of(app, token, id).await["state"] == wanted }).await;
    let command = state_of(app, token, id).await;
    assert!(reached, "wanted {wanted}: {command}");
    command
}

/// The device's events of `code`: open ones only, or all.
async fn events(app: &TestApp, token: &str, device: i64, code: &str, open: bool) -> usize {
    let filter = if open { "&active=true" } else { "" };
    let (_, events) = app
        .request(
            "GET",
            &format!("/api/v1/events?device_id={device}{filter}"),
            Some(token),
            None,
        )
        .await;
    let all = events["events"].as_array().cloned().unwrap_or_default();
    all.iter().filter(|event| event["code"] == code).count()
}

fn writes_received(received: &Received) -> usize {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|message| message.windows(3).any(|bytes| bytes == b"\x01W1"))
        .count()
}

#[tokio::test]
async fn a_command_waits_for_prg_goes_through_when_it_opens_and_expires_when_it_never_does() {
    let start: DateTime<Utc> = "2026-03-14T10:20:30Z".parse().unwrap();
    let clock = Clock::manual(start);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::A1000, 5, ADDRESS, start);
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let mut line = quick_iec_line(vec![meter.clone()], clock.clone());
    line.received = Some(received.clone());
    let (port, _stop) = serve_iec_tcp(line).await;
    let transport = json!({"kind": "iec62056_tcp", "host": "127.0.0.1", "port": port});
    let bus = app.create_bus(&engineer, "iec", transport).await;
    let device = app
        .create_device(
            &engineer,
            bus,
            json!({"name": "A1000 feeder", "profile": "a1000", "iec_address": ADDRESS}),
        )
        .await
        .0;
    let path = format!("/api/v1/devices/{device}/commands");

    // A dry run lists the session's messages, the password masked, and
    // sends nothing.
    let (status, dry) = app
        .request(
            "POST",
            &path,
            Some(&engineer),
            Some(json!({"kind": "set_clock", "dry_run": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    let texts: Vec<&str> = dry["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert!(texts.iter().any(|text| text.contains("P1<STX>(********)")), "{texts:?}");
    assert_eq!(texts.iter().filter(|text| text.contains("W1")).count(), 2, "{texts:?}");
    assert_eq!(writes_received(&received), 0);
    let (status, refused) = app
        .request("POST", &path, Some(&engineer), Some(json!({"kind": "billing_reset"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["error"]["message"],
        "kind: a1000 has no billing_reset over IEC 62056-21 in its profile (A1000 feeder is read over IEC 62056-21)"
    );

    // The bus's worker has the device once it has read it.
    assert!(
        eventually(WAIT, || async {
            let (_, read) = app
                .request("GET", &format!("/api/v1/devices/{device}"), Some(&engineer), None)
                .await;
            !read["status"]["last_success_at"].is_null()
        })
        .await,
        "the meter is read"
    );

    // PRG is not on: the first write is refused, nothing is written, and
    // the command waits, saying what to do at the meter.
    let (status, queued) = app
        .request("POST", &path, Some(&engineer), Some(json!({"kind": "set_clock"})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let waiting = until_state(&app, &engineer, &queued["id"], "awaiting_field_programming").await;
    let instructions = waiting["instructions"].as_str().unwrap();
    assert!(instructions.contains("A1000 feeder"), "{instructions}");
    assert!(
        instructions.contains("8 seconds") && instructions.contains("PRG"),
        "{instructions}"
    );
    assert_eq!(
        events(&app, &engineer, device, "field_programming_needed", true).await,
        1
    );
    assert_eq!(writes_received(&received), 1, "the meter was tried once");

    // Tried again a minute later (by the manual clock, which stands still
    // until the test moves it), until two hours after the first refusal.
    let (next, deadline): (String, String) =
        sqlx::query_as("SELECT progress->>'next_try_at', progress->>'deadline' FROM jobs WHERE id = $1")
            .bind(queued["id"].as_i64().unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let parse = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
    assert_eq!(parse(&next), start + TimeDelta::seconds(60));
    assert_eq!(parse(&deadline), start + TimeDelta::hours(2));

    // The technician opens PRG; a minute later the command is tried again
    // and goes through, read back, and the request for a technician closes.
    meter.lock().unwrap().open_field_programming(clock.now());
    clock.advance(TimeDelta::seconds(61));
    let done = until_state(&app, &engineer, &queued["id"], "succeeded").await;
    assert_eq!(done["written"].as_array().unwrap().len(), 2, "{done}");
    assert!(done["after"]["0.9.1"].is_string(), "{done}");
    assert!(
        eventually(WAIT, || async {
            events(&app, &engineer, device, "field_programming_needed", true).await == 0
        })
        .await,
        "the event closes"
    );

    // PRG lapses; a command waits, and is cancelled while it waits.
    meter.lock().unwrap().close_field_programming();
    let (_, second) = app
        .request("POST", &path, Some(&engineer), Some(json!({"kind": "set_clock"})))
        .await;
    until_state(&app, &engineer, &second["id"], "awaiting_field_programming").await;
    let (status, cancelled) = app
        .request(
            "POST",
            &format!("/api/v1/commands/{}/cancel", second["id"]),
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");

    // One that is never let in fails at the end of the window (2 hours).
    let (_, third) = app
        .request("POST", &path, Some(&engineer), Some(json!({"kind": "set_clock"})))
        .await;
    until_state(&app, &engineer, &third["id"], "awaiting_field_programming").await;
    clock.advance(TimeDelta::hours(2) + TimeDelta::seconds(1));
    let expired = until_state(&app, &engineer, &third["id"], "failed").await;
    assert_eq!(expired["error"]["code"], "field_programming_expired", "{expired}");
    assert!(
        eventually(WAIT, || async {
            events(&app, &engineer, device, "field_programming_expired", false).await == 1
        })
        .await,
        "an event says the window never opened"
    );
    app.stop().await;
}
