//! Meter identity: a different meter at a device's address (a COUNTIS
//! whose serial words change across a reconnection, a TH40C whose readout
//! prints another meter number) opens `meter_identity_changed` and its
//! readings are held, not stored as the device's, until an engineer
//! confirms the replacement, which releases them and starts register
//! series 2 (through the API for one, the device page's form for the
//! other).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::obis::ObisCode;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::catalog::model_for;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::fault::{self, ModbusFault};
use ohmnibus::sim::iec62056::IecKind;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use ohmnibus::store::identity::record_identity_seen;
use ohmnibus::store::profile_derivation::fetch_derived_intervals;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{
    TestApp, WAIT, add_unpolled_device, count_readings, eventually, iec_meter, insert_energy_reads,
    serve_one_iec_tcp_device, spawn_app, spawn_app_with_clock,
};

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
/// How the engineer confirms the replacement.
#[derive(Clone, Copy, PartialEq)]
enum ConfirmBy {
    Api,
    /// The device page's form, as a browser posts it.
    Page,
}

/// Posts the device page's confirmation form; answers the status and where
/// it redirects.
async fn post_confirm_form(app: &TestApp, token: &str, device: i64, identity: &str) -> (StatusCode, String) {
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("identity", identity)
        .finish();
    let request = Request::builder()
        .method("POST")
        .uri(format!("/devices/{device}/identity/confirm"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status(), location)
}

async fn quarantine_then_confirm(
    app: &TestApp,
    engineer: &str,
    device: i64,
    code: &str,
    new_identity: &str,
    by: ConfirmBy,
) {
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
    let confirmed = match by {
        ConfirmBy::Api => {
            let (status, confirmed) = confirm(app, engineer, device, json!({"identity": new_identity})).await;
            assert_eq!(status, StatusCode::OK, "{confirmed}");
            let released = confirmed["released_readings"].as_i64().unwrap();
            assert!(released >= shown["held_readings"].as_i64().unwrap(), "{confirmed}");
            confirmed
        }
        ConfirmBy::Page => {
            let page = device_page(app, engineer, device).await;
            assert!(page.contains("action=\"/devices/"), "the page offers the confirmation");
            let (status, location) = post_confirm_form(app, engineer, device, new_identity).await;
            assert_eq!(status, StatusCode::SEE_OTHER);
            assert_eq!(location, format!("/devices/{device}"));
            let after = identity(app, engineer, device).await;
            assert_eq!(after["held_readings"], 0, "{after}");
            after
        }
    };
    assert_eq!(confirmed["expected"], new_identity);
    assert_eq!(confirmed["series"], 2);
    assert!(confirmed["quarantined_since"].is_null());
    assert_eq!(confirmed["series_started_at"], shown["quarantined_since"]);
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
        identity(&app, &engineer, id).await["expected"] == "2026-0000-0002 / countis e43 / SOCOMEC / COUNTIS E43"
    })
    .await;
    assert!(first, "{}", identity(&app, &engineer, id).await);
    let page = device_page(&app, &engineer, id).await;
    assert!(
        page.contains("2026-0000-0002 / countis e43 / SOCOMEC / COUNTIS E43"),
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

    let new_identity = "2026-0001-0099 / countis e43 / SOCOMEC / COUNTIS E43";
    quarantine_then_confirm(&app, &engineer, id, "1-1:1.8.0", new_identity, ConfirmBy::Api).await;
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
    let new_identity = format!("{manufacturer} 40999");
    quarantine_then_confirm(&app, &engineer, id, "1-1:1.8.0", &new_identity, ConfirmBy::Page).await;
}

/// No interval is derived across a confirmed replacement: the old meter's
/// register ends at 1010 kWh, the new one starts at 5 kWh. Laid out by
/// hand: reads at 10:00 (1000), 10:15 (1010), then the new meter from the
/// quarantine at 10:20: 10:30 (5), 10:45 (15). The 15-minute intervals are
/// 10:00–10:15 = 10 kWh and 10:30–10:45 = 10 kWh; 10:15–10:30 spans two
/// meters and is not derived (it is a gap, not a decrease or a wrap).
#[tokio::test]
async fn no_interval_is_derived_across_a_replacement() {
    let at = |hour: u32, minute: u32| Utc.with_ymd_and_hms(2026, 11, 20, hour, minute, 0).unwrap();
    let clock = Clock::manual(at(12, 0));
    let app = spawn_app_with_clock(clock).await;
    let engineer = app.token(Role::Engineer).await;
    // A line that never answers: the stored reads are all there is.
    let body = json!({"name": "E43", "profile": "countis-e43", "address": 2});
    let id = DeviceId(add_unpolled_device(&app, &engineer, "modbus_tcp", body).await);
    let code: ObisCode = "1-1:1.8.0".parse().unwrap();
    let reads = [
        (at(10, 0), 1000.0),
        (at(10, 15), 1010.0),
        (at(10, 30), 5.0),
        (at(10, 45), 15.0),
    ];
    insert_energy_reads(&app, id, "1-1:1.8.0", &reads, at(12, 0)).await;
    sqlx::query(
        "INSERT INTO device_identities (device_id, expected, seen, series, series_started_at) \
         VALUES ($1, 'THM 2', 'THM 2', 2, $2)",
    )
    .bind(id)
    .bind(at(10, 20))
    .execute(&app.pool)
    .await
    .unwrap();

    app.derive_now().await;
    let derived = fetch_derived_intervals(&app.pool, id, &code).await.unwrap();
    let expected = vec![
        (at(10, 0), 15, 10.0, Quality::GOOD),
        (at(10, 30), 15, 10.0, Quality::GOOD),
    ];
    assert_eq!(derived, expected);
    let decreased: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE device_id = $1 AND code = 'register_decreased'")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(decreased, 0);
}

/// A COUNTIS first seen before its profile read the vendor and product
/// names (serial words and extended name only) shows them appended at its
/// next check: the same meter, no quarantine, and the expected identity
/// takes the longer form; another serial in that form is still another
/// meter.
#[tokio::test]
async fn an_identity_with_parts_its_profile_added_since_is_the_same_meter() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let body = json!({"name": "E43", "profile": "countis-e43", "address": 2});
    let id = add_unpolled_device(&app, &engineer, "modbus_tcp", body).await;
    let at = |minute: u32| Utc.with_ymd_and_hms(2026, 11, 20, 10, minute, 0).unwrap();
    let (old, longer) = (
        "2026-0000-0002 / countis e43",
        "2026-0000-0002 / countis e43 / SOCOMEC / COUNTIS E43",
    );
    record_identity_seen(&app.pool, DeviceId(id), "E43", old, at(0))
        .await
        .unwrap();
    record_identity_seen(&app.pool, DeviceId(id), "E43", longer, at(5))
        .await
        .unwrap();
    let stored = identity(&app, &engineer, id).await;
    assert_eq!(
        (stored["expected"].as_str(), stored["seen"].as_str()),
        (Some(longer), Some(longer))
    );
    assert!(stored["quarantined_since"].is_null(), "{stored}");
    assert!(events(&app, id).await.is_empty());
    let other = "2026-0000-0009 / countis e43 / SOCOMEC / COUNTIS E43";
    record_identity_seen(&app.pool, DeviceId(id), "E43", other, at(10))
        .await
        .unwrap();
    assert_eq!(
        events(&app, id).await,
        vec![("meter_identity_changed".to_owned(), true)]
    );
}
