//! Meter identity: a different meter at a device's address (a COUNTIS
//! whose serial words change across a reconnection, a TH40C whose readout
//! prints another meter number) opens `meter_identity_changed` and its
//! readings are held, not stored as the device's, until an engineer
//! confirms the replacement, which releases them and starts register
//! series 2.

use axum::http::StatusCode;
use chrono::Utc;
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::catalog::model_for;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::fault::{self, ModbusFault};
use ohmnibus::sim::iec62056::IecKind;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, count_readings, eventually, iec_meter, serve_one_iec_tcp_device, spawn_app};

async fn identity(app: &TestApp, token: &str, device: i64) -> Value {
    let (status, body) = app
        .request("GET", &format!("/api/v1/devices/{device}/identity"), Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The device's events: code, still open.
async fn events(app: &TestApp, device: i64) -> Vec<(String, bool)> {
    sqlx::query_as("SELECT code, cleared_at IS NULL FROM events WHERE device_id = $1 ORDER BY id")
        .bind(device)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// The device page's HTML.
async fn device_page(app: &TestApp, token: &str, device: i64) -> String {
    let (status, body) = app
        .request("GET", &format!("/devices/{device}"), Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    body.as_str().unwrap_or_default().to_owned()
}

async fn held(app: &TestApp, device: i64, obis: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM held_readings WHERE device_id = $1 AND obis = $2")
        .bind(device)
        .bind(obis)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn confirm(app: &TestApp, token: &str, device: i64, body: Value) -> (StatusCode, Value) {
    app.request(
        "POST",
        &format!("/api/v1/devices/{device}/identity/confirm"),
        Some(token),
        Some(body),
    )
    .await
}

/// What every swap test checks once another meter answers: the event is
/// open, `code`'s readings go aside while the device's stand still, an
/// engineer's confirmation must name the meter now there and releases
/// them.
async fn quarantine_then_confirm(app: &TestApp, engineer: &str, device: i64, code: &str, new_identity: &str) {
    let quarantined = eventually(WAIT, || async {
        identity(app, engineer, device).await["quarantined_since"].is_string()
    })
    .await;
    assert!(quarantined, "{}", identity(app, engineer, device).await);
    let open = events(app, device).await;
    assert!(open.contains(&("meter_identity_changed".to_owned(), true)), "{open:?}");
    // Readings keep coming from the new meter, but go aside.
    let stored_then = count_readings(app, device, code).await;
    let held_then = held(app, device, code).await;
    let more_held = eventually(WAIT, || async { held(app, device, code).await >= held_then + 2 }).await;
    assert!(more_held, "the new meter's readings were not held");
    assert_eq!(
        count_readings(app, device, code).await,
        stored_then,
        "no reading of the new meter is stored as the device's"
    );
    let shown = identity(app, engineer, device).await;
    assert_eq!(shown["seen"], new_identity, "{shown}");
    assert!(shown["held_readings"].as_i64().unwrap() > 0, "{shown}");

    // A viewer may not confirm; a confirmation naming another meter, or
    // none, changes nothing.
    let viewer = app.token(Role::Viewer).await;
    let (status, _) = confirm(app, &viewer, device, json!({"identity": new_identity})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = confirm(app, engineer, device, json!({"identity": "someone else"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, body) = confirm(app, engineer, device, json!({"identity": " "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(identity(app, engineer, device).await["quarantined_since"].is_string());

    // The confirmation: the held readings become the device's.
    let stored_before = count_readings(app, device, code).await;
    let (status, confirmed) = confirm(app, engineer, device, json!({"identity": new_identity})).await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["expected"], new_identity);
    assert_eq!(confirmed["series"], 2);
    assert!(confirmed["quarantined_since"].is_null());
    assert_eq!(confirmed["series_started_at"], shown["quarantined_since"]);
    let released = confirmed["released_readings"].as_i64().unwrap();
    assert!(released >= shown["held_readings"].as_i64().unwrap(), "{confirmed}");
    assert!(count_readings(app, device, code).await > stored_before);
    assert_eq!(held(app, device, code).await, 0);
    let after = events(app, device).await;
    assert!(
        after.contains(&("meter_identity_changed".to_owned(), false)),
        "{after:?}"
    );
    assert!(after.iter().any(|(code, _)| code == "meter_replaced"), "{after:?}");
    // A second confirmation has nothing to confirm.
    let (status, _) = confirm(app, engineer, device, json!({"identity": new_identity})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Readings of the confirmed meter are stored again.
    let stored_now = count_readings(app, device, code).await;
    let flowing = eventually(WAIT, || async { count_readings(app, device, code).await > stored_now }).await;
    assert!(flowing, "the confirmed meter's readings are not stored");
}

/// A COUNTIS E43 goes silent (the meter is being changed) and comes back
/// with other serial words at 0xC358: after the reconnection its identity
/// differs. The identities are written out by hand: the serial words in
/// hex, then the extended name the E43 shows at 0xC38A.
#[tokio::test]
async fn a_countis_swapped_on_the_bus_is_quarantined_until_confirmed() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let clock = Clock::System;
    let model = model_for("countis-e43", 72, Tz::UTC, clock.now()).unwrap();
    let profile = ProfileSet::builtin().get("countis-e43").unwrap();
    let device = SimDevice::with_model(profile, 2, model, clock.clone());
    let (serial, fault) = (device.serial_switch(), device.fault_switch());
    let (_stop, stopped) = shutdown::channel();
    let (address, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::RtuOverTcp,
        stopped,
    )
    .await
    .unwrap();
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": address.port()});
    let bus = app.create_bus(&engineer, "countis line", transport).await;
    let body = json!({"name": "E43 feeder", "profile": "countis-e43", "address": 2,
                      "schedule": {"realtime_seconds": 1, "energy_seconds": 1}});
    let id = app.create_device(&engineer, bus, body).await.0;

    let first = eventually(WAIT, || async {
        identity(&app, &engineer, id).await["expected"] == "2026-0000-0002 / countis e43"
    })
    .await;
    assert!(first, "{}", identity(&app, &engineer, id).await);
    let page = device_page(&app, &engineer, id).await;
    assert!(
        page.contains("2026-0000-0002 / countis e43"),
        "the page names the meter"
    );

    // The meter is changed: silent, then another serial answers.
    fault::set(&fault, Some(ModbusFault::NoAnswer));
    let lost = eventually(WAIT, || async {
        let (_, device) = app
            .request("GET", &format!("/api/v1/devices/{id}"), Some(&engineer), None)
            .await;
        device["status"]["consecutive_failures"].as_i64().unwrap_or(0) > 0
    })
    .await;
    assert!(lost, "the silent meter was not noticed");
    *serial.lock().unwrap() = vec![0x2026, 0x0001, 0x0099];
    fault::set(&fault, None);

    quarantine_then_confirm(&app, &engineer, id, "1-1:1.8.0", "2026-0001-0099 / countis e43").await;
    let page = device_page(&app, &engineer, id).await;
    assert!(page.contains("register series 2"), "the page shows the new series");
}

/// A TH40C read over IEC 62056-21 prints its meter number in `0.0.0`; a
/// readout with another number is another meter.
#[tokio::test]
async fn a_th40c_printing_another_meter_number_is_quarantined_until_confirmed() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::Th40c, 9, "40001", Utc::now());
    let device = json!({"name": "TH40C incomer", "profile": "th40c", "iec_address": "40001",
                        "schedule": {"realtime_seconds": 1, "energy_seconds": 1}});
    let (id, _stop) = serve_one_iec_tcp_device(&app, &engineer, &meter, &Clock::System, device).await;
    let (manufacturer, _) = IecKind::Th40c.identification();
    let first = eventually(WAIT, || async {
        identity(&app, &engineer, id).await["expected"] == format!("{manufacturer} 40001")
    })
    .await;
    assert!(first, "{}", identity(&app, &engineer, id).await);
    assert!(
        events(&app, id)
            .await
            .iter()
            .all(|(code, _)| code != "meter_identity_changed")
    );

    meter.lock().unwrap().config.serial = Some("40999".into());
    quarantine_then_confirm(&app, &engineer, id, "1-1:1.8.0", &format!("{manufacturer} 40999")).await;
}
