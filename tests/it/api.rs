//! The REST API's shapes, errors and roles, through the real router and a
//! real PostgreSQL database.

use crate::support::spawn_app;
use axum::http::StatusCode;
use ohmnibus::domain::role::Role;
use serde_json::json;

fn bus_body() -> serde_json::Value {
    json!({"name": "line-1", "transport": {"kind": "modbus_tcp", "host": "127.0.0.1", "port": 5020}})
}

#[tokio::test]
async fn creates_and_lists_buses_and_devices() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let (status, bus) = app
        .request("POST", "/api/v1/buses", Some(&engineer), Some(bus_body()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bus}");
    assert_eq!(bus["name"], "line-1");
    assert_eq!(bus["transport"]["kind"], "modbus_tcp");
    let bus_id = bus["id"].as_i64().unwrap();

    let serial = json!({"name": "rs485-a", "transport": {"kind": "serial_rtu", "path": "/dev/ttyUSB0", "baud": 19200, "parity": "even", "stop_bits": 1}});
    let (status, body) = app
        .request("POST", "/api/v1/buses", Some(&engineer), Some(serial))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["transport"]["parity"], "even");

    let device = json!({"name": "Main incomer", "bus_id": bus_id, "profile": "th40c", "address": 1});
    let (status, device) = app
        .request("POST", "/api/v1/devices", Some(&engineer), Some(device))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let id = device["id"].as_i64().unwrap();
    assert_eq!(
        device["schedule"],
        json!({"realtime_seconds": 10, "energy_seconds": 60, "history_seconds": 900})
    );

    let viewer = app.token(Role::Viewer).await;
    let (status, one) = app
        .request("GET", &format!("/api/v1/devices/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "Main incomer");
    assert!(["unknown", "online", "unreachable"].contains(&one["status"]["state"].as_str().unwrap()));
    assert!(one["status"].get("last_success_at").is_some());
    assert!(one["status"]["consecutive_failures"].is_i64());
    let (status, list) = app.request("GET", "/api/v1/devices", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["devices"].as_array().unwrap().len(), 1);
    let (status, registers) = app
        .request("GET", &format!("/api/v1/devices/{id}/registers"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(registers["device_id"], id);
    assert!(registers["registers"].is_array());
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_4xx_naming_the_field() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let (_, bus) = app
        .request("POST", "/api/v1/buses", Some(&engineer), Some(bus_body()))
        .await;
    let bus_id = bus["id"].as_i64().unwrap();

    let cases = [
        (
            json!({"name": "m", "bus_id": bus_id, "profile": "nope", "address": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "profile:",
        ),
        (
            json!({"name": "m", "bus_id": 999_999, "profile": "th40c", "address": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bus_id:",
        ),
        (
            json!({"name": "m", "bus_id": bus_id, "profile": "th40c", "address": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "address:",
        ),
        (
            json!({"name": "m", "bus_id": bus_id, "profile": "th40c", "address": 248}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "address:",
        ),
        (
            json!({"name": "m", "bus_id": bus_id, "profile": "th40c"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "address",
        ),
        (
            json!({"name": "m", "bus_id": "one", "profile": "th40c", "address": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bus_id",
        ),
        (
            json!({"name": " ", "bus_id": bus_id, "profile": "th40c", "address": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name:",
        ),
        (
            json!({"name": "m", "bus_id": bus_id, "profile": "th40c", "address": 1, "schedule": {"realtime_seconds": 0}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "schedule.realtime_seconds:",
        ),
        (
            json!({"name": "m", "bus_id": bus_id, "profile": "th40c", "address": 1, "schedule": {"history_seconds": 86_401}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "schedule.history_seconds:",
        ),
    ];
    for (body, status, field) in cases {
        let (got, error) = app
            .request("POST", "/api/v1/devices", Some(&engineer), Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body} -> {error}");
        assert!(error["error"]["code"].is_string(), "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message:?} should name {field}");
    }

    let bad_buses = [
        (json!({"name": "x", "transport": {"kind": "can_bus"}}), "can_bus"),
        (
            json!({"name": "x", "transport": {"kind": "serial_rtu", "path": "/dev/ttyS0", "baud": 9601, "parity": "none", "stop_bits": 1}}),
            "transport.baud:",
        ),
        (
            json!({"name": "x", "transport": {"kind": "modbus_tcp", "host": "h"}}),
            "port",
        ),
    ];
    for (body, field) in bad_buses {
        let (status, error) = app
            .request("POST", "/api/v1/buses", Some(&engineer), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(field), "{error}");
    }

    let (status, error) = app.request_raw("POST", "/api/v1/buses", &engineer, "{\"name\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "malformed_body");

    let (status, error) = app
        .request("POST", "/api/v1/buses", Some(&engineer), Some(bus_body()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error["error"]["message"].as_str().unwrap().starts_with("name:"));

    let device = json!({"name": "a", "bus_id": bus_id, "profile": "th40c", "address": 5});
    assert_eq!(
        app.request("POST", "/api/v1/devices", Some(&engineer), Some(device.clone()))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, error) = app
        .request("POST", "/api/v1/devices", Some(&engineer), Some(device))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error["error"]["message"].as_str().unwrap().starts_with("address:"));

    let (status, error) = app
        .request("GET", "/api/v1/devices/424242", Some(&engineer), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "not_found");

    let (status, error) = app
        .request("GET", "/api/v1/devices/1/readings?obis=1-1:1.8", Some(&engineer), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "invalid_parameter");
    assert!(error["error"]["message"].as_str().unwrap().starts_with("obis:"));
    let (status, error) = app
        .request(
            "GET",
            "/api/v1/devices/1/readings?obis=1-1:1.8.0&from=yesterday",
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["error"]["message"].as_str().unwrap().starts_with("from:"));
    app.stop().await;
}

#[tokio::test]
async fn tokens_and_roles_are_enforced() {
    let app = spawn_app().await;
    let (status, error) = app.request("GET", "/api/v1/devices", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["code"], "unauthenticated");
    let (status, _) = app
        .request("GET", "/api/v1/devices", Some("ohm_not-a-token"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let engineer = app.token(Role::Engineer).await;
    let (_, bus) = app
        .request("POST", "/api/v1/buses", Some(&engineer), Some(bus_body()))
        .await;
    let device = json!({"name": "m", "bus_id": bus["id"], "profile": "th40c", "address": 1});
    for role in [Role::Viewer, Role::Operator, Role::Secadm, Role::Secaud] {
        let token = app.token(role).await;
        let (status, error) = app
            .request("POST", "/api/v1/devices", Some(&token), Some(device.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        assert_eq!(error["error"]["code"], "forbidden");
        let (status, _) = app
            .request(
                "POST",
                "/api/v1/buses",
                Some(&token),
                Some(json!({"name": format!("b-{role}"), "transport": {"kind": "modbus_tcp", "host": "h", "port": 1}})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        // Outside its role a request is refused before its body is looked at.
        let (status, _) = app
            .request("POST", "/api/v1/devices", Some(&token), Some(json!({"name": 5})))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}, malformed body");
    }
    // The refused requests changed nothing.
    let devices: i64 = sqlx::query_scalar("SELECT count(*) FROM devices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let buses: i64 = sqlx::query_scalar("SELECT count(*) FROM buses")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((devices, buses), (0, 1));
    // Every change is in the audit log with its actor.
    let actors: Vec<String> = sqlx::query_scalar("SELECT actor FROM audit_log WHERE action <> 'create_token'")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(actors, vec!["test-engineer".to_owned()]);
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_matches_the_committed_file() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
        .expect("openapi/openapi.json exists (regenerate with: cargo run -- openapi > openapi/openapi.json)");
    assert!(
        committed == ohmnibus::web::api::openapi_json(),
        "openapi/openapi.json is out of date: regenerate with `cargo run -- openapi > openapi/openapi.json`"
    );
    let app = spawn_app().await;
    let (status, served) = app.request("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(served, committed);
    assert_eq!(served["openapi"].as_str().unwrap().get(..3), Some("3.1"));
    for path in [
        "/api/v1/buses",
        "/api/v1/devices",
        "/api/v1/devices/{id}",
        "/api/v1/devices/{id}/registers",
        "/api/v1/devices/{id}/readings",
    ] {
        assert!(served["paths"].get(path).is_some(), "{path} documented");
    }
    app.stop().await;
}

#[tokio::test]
async fn health_and_pages() {
    let app = spawn_app().await;
    assert_eq!(app.request("GET", "/healthz", None, None).await.0, StatusCode::OK);
    assert_eq!(app.request("GET", "/readyz", None, None).await.0, StatusCode::OK);
    let (status, metrics) = app.request("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.as_str().unwrap().contains("ohmnibus_modbus_requests_total"));
    // Pages without a session send the operator to the login form.
    assert_eq!(app.request("GET", "/", None, None).await.0, StatusCode::SEE_OTHER);
    let viewer = app.token(Role::Viewer).await;
    let (status, page) = app.request("GET", "/", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("<h1>Fleet</h1>"));
    let (status, page) = app.request("GET", "/devices/77", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.as_str().unwrap().contains("no device 77"));
    app.stop().await;
}

#[tokio::test]
async fn readings_page_through_a_time_range() {
    use chrono::{Duration, TimeZone, Utc};
    use ohmnibus::device::reading::Reading;
    use ohmnibus::domain::ids::DeviceId;
    use ohmnibus::domain::quality::Quality;
    use ohmnibus::domain::unit::Unit;

    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let (_, bus) = app
        .request("POST", "/api/v1/buses", Some(&engineer), Some(bus_body()))
        .await;
    let (_, device) = app
        .request(
            "POST",
            "/api/v1/devices",
            Some(&engineer),
            Some(json!({"name": "m", "bus_id": bus["id"], "profile": "th40c", "address": 200})),
        )
        .await;
    let id = device["id"].as_i64().unwrap();
    // Five readings across a month boundary (two partitions), 15 minutes apart.
    let start = Utc.with_ymd_and_hms(2026, 10, 31, 23, 30, 0).unwrap();
    let batch: Vec<(DeviceId, Reading)> = (0..5)
        .map(|i| {
            let reading = Reading {
                obis: "1-1:1.8.0".parse().unwrap(),
                value: 100.0 + f64::from(i),
                unit: Unit::KWh,
                read_at: start + Duration::minutes(15 * i64::from(i)),
                captured_at: None,
                quality: Quality::GOOD,
            };
            (DeviceId(id), reading)
        })
        .collect();
    ohmnibus::store::readings::insert_readings(&app.pool, &batch, chrono::Utc::now())
        .await
        .unwrap();
    // A retried batch stores nothing twice.
    ohmnibus::store::readings::insert_readings(&app.pool, &batch, chrono::Utc::now())
        .await
        .unwrap();

    let mut values = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!(
            "/api/v1/devices/{id}/readings?obis=1-1:1.8.0&from=2026-10-31T23:40:00Z&to=2026-11-01T01:00:00Z&limit=2"
        );
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={}", cursor.replace('+', "%2B")));
        }
        let (status, page) = app.request("GET", &path, Some(&engineer), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        values.extend(
            page["readings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["value"].as_f64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    // 23:45, 00:00, 00:15, 00:30 are inside [23:40, 01:00); 23:30 is not.
    assert_eq!(values, vec![101.0, 102.0, 103.0, 104.0]);
    assert_eq!(pages, 3, "two full pages, then an empty last one");
    let (_, registers) = app
        .request("GET", &format!("/api/v1/devices/{id}/registers"), Some(&engineer), None)
        .await;
    assert_eq!(registers["registers"][0]["value"], 104.0, "latest value is the newest");
    // The device page groups it as energy by tariff, total column.
    let (status, page) = app
        .request("GET", &format!("/devices/{id}"), Some(&engineer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains("<h2>Energy by tariff</h2>"), "{page}");
    assert!(page.contains(">104.000 kWh<"), "{page}");
    assert!(!page.contains("<h2>Real-time values</h2>"), "no empty sections");
    assert!(
        page.contains("1-1:1.8.0 · Current total import active energy"),
        "every value, named from the profile"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_mid_meter_says_what_its_bus_values_are_worth_legally() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let (_, bus) = app
        .request("POST", "/api/v1/buses", Some(&engineer), Some(bus_body()))
        .await;
    let mut ids = Vec::new();
    for (address, profile) in [(1, "countis-e44"), (2, "countis-e43"), (3, "th40c")] {
        let body = json!({"name": profile, "bus_id": bus["id"], "profile": profile, "address": address});
        let (status, device) = app
            .request("POST", "/api/v1/devices", Some(&engineer), Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        ids.push(device["id"].as_i64().unwrap());
    }
    let (_, e44) = app
        .request("GET", &format!("/api/v1/devices/{}", ids[0]), Some(&engineer), None)
        .await;
    let notice = e44["legal_metrology"].as_str().unwrap();
    assert!(notice.contains("MID") && notice.contains("no legal value"), "{notice}");
    let (_, e43) = app
        .request("GET", &format!("/api/v1/devices/{}", ids[1]), Some(&engineer), None)
        .await;
    assert!(e43["legal_metrology"].is_null());
    let (_, page) = app
        .request("GET", &format!("/devices/{}", ids[0]), Some(&engineer), None)
        .await;
    assert!(
        page.as_str()
            .unwrap()
            .contains("Legal metrology:</strong> MID-certified meter")
    );
    let (_, page) = app
        .request("GET", &format!("/devices/{}", ids[1]), Some(&engineer), None)
        .await;
    assert!(!page.as_str().unwrap().contains("Legal metrology"));
    // The TH40C is MID class C (its manual, §1), which the notice says.
    let (_, th40c) = app
        .request("GET", &format!("/api/v1/devices/{}", ids[2]), Some(&engineer), None)
        .await;
    let notice = th40c["legal_metrology"].as_str().unwrap();
    assert!(
        notice.contains("MID class C") && notice.contains("EN 50470-3"),
        "{notice}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_engineer_changes_a_devices_schedule_and_stops_its_polling() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let (_, bus) = app
        .request("POST", "/api/v1/buses", Some(&engineer), Some(bus_body()))
        .await;
    let (_, device) = app
        .request(
            "POST",
            "/api/v1/devices",
            Some(&engineer),
            Some(json!({"name": "m", "bus_id": bus["id"], "profile": "th40c", "address": 1})),
        )
        .await;
    let path = format!("/api/v1/devices/{}", device["id"]);
    // It stopped answering before it was disabled: its comm_lost is open.
    sqlx::query("UPDATE devices SET state = 'unreachable' WHERE id = $1")
        .bind(device["id"].as_i64().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (device_id, code, severity, started_at, message) \
         VALUES ($1, 'comm_lost', 'warning', now(), 'm stopped answering')",
    )
    .bind(device["id"].as_i64().unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    let (status, changed) = app
        .request(
            "PATCH",
            &path,
            Some(&engineer),
            Some(json!({"name": "Main incomer", "enabled": false, "schedule": {"energy_seconds": 300}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "Main incomer");
    assert_eq!(changed["enabled"], false);
    // Disabled, not unreachable, and nobody is paged for it any more.
    assert_eq!(changed["status"]["state"], "disabled", "{changed}");
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE device_id = $1 AND cleared_at IS NULL")
        .bind(device["id"].as_i64().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(open, 0, "its comm_lost is closed");
    let (_, fleet) = app.request("GET", "/", Some(&engineer), None).await;
    let fleet = fleet.as_str().unwrap();
    assert!(
        fleet.contains("1 disabled") && fleet.contains("0 unreachable"),
        "{fleet}"
    );
    // Only what was sent changed: the profile's other periods stay.
    assert_eq!(
        changed["schedule"],
        json!({"realtime_seconds": 10, "energy_seconds": 300, "history_seconds": 900})
    );
    let (_, fetched) = app.request("GET", &path, Some(&engineer), None).await;
    assert_eq!(fetched["schedule"], changed["schedule"]);
    // Derived intervals are 15 minutes long unless changed.
    assert_eq!(fetched["interval_minutes"], 15);
    let (status, changed) = app
        .request("PATCH", &path, Some(&engineer), Some(json!({"interval_minutes": 60})))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["interval_minutes"], 60);

    for (body, field) in [
        (
            json!({"schedule": {"realtime_seconds": 0}}),
            "schedule.realtime_seconds:",
        ),
        (json!({"name": "  "}), "name:"),
        (json!({"interval_minutes": 0}), "interval_minutes:"),
        (json!({"interval_minutes": 121}), "interval_minutes:"),
        (json!({"colour": "red"}), "colour: is not a field here"),
    ] {
        let (status, error) = app.request("PATCH", &path, Some(&engineer), Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(error["error"]["message"].as_str().unwrap().contains(field), "{error}");
    }
    let operator = app.token(Role::Operator).await;
    let (status, _) = app
        .request("PATCH", &path, Some(&operator), Some(json!({"enabled": true})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, fetched) = app.request("GET", &path, Some(&engineer), None).await;
    assert_eq!(fetched["enabled"], false, "the refused change changed nothing");
    let (status, _) = app
        .request(
            "PATCH",
            "/api/v1/devices/999",
            Some(&engineer),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}
