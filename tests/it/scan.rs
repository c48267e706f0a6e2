//! Bus scan: which addresses answer, and which profile fits each.

use crate::support::{SILENT_METER_TIMEOUT, WAIT, eventually, eventually_some, spawn_app, spawn_app_with_timeout};
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::catalog::model_for;
use ohmnibus::sim::concentrator::{ConcentratorModel, MODE_POT_FREE};
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::json;

#[tokio::test]
async fn a_scan_finds_the_devices_on_a_bus() {
    // Seven of the twelve addresses are silent: each costs the scan a timeout.
    let app = spawn_app_with_timeout(SILENT_METER_TIMEOUT).await;
    let engineer = app.token(Role::Engineer).await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let profiles = ProfileSet::builtin();
    // A mixed line. The concentrator is told by its input mode and input
    // 1's settings answering within the manual's ranges; a second one, at
    // 11, has input 1's OFF time set to 0 ms (the manual: 5-300), so it
    // answers but fits no profile.
    let fleet = [
        (3u8, "th40c"),
        (5, "countis-e44"),
        (7, "countis-e33"),
        (9, "pulse-concentrator"),
    ];
    let mut devices: Vec<SimDevice> = fleet
        .iter()
        .map(|&(unit, name)| {
            let model = model_for(name, u64::from(unit), Tz::UTC, at).unwrap();
            SimDevice::with_model(profiles.get(name).unwrap(), unit, model, Clock::manual(at))
        })
        .collect();
    let misset = ConcentratorModel::new(11, Tz::UTC, at, MODE_POT_FREE).with_settings(1, [1, 1, 160, 10, 0]);
    devices.push(SimDevice::new(
        profiles.get("pulse-concentrator").unwrap(),
        11,
        misset,
        Clock::manual(at),
    ));
    let (_stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": line.port()});
    let bus = app.create_bus(&engineer, "new line", transport).await;
    let scan_path = format!("/api/v1/buses/{bus}/scan");

    // The worker starts within a refresh period; until then the bus is not polled.
    let scan = eventually_some(WAIT, || async {
        let (status, body) = app
            .request(
                "POST",
                &scan_path,
                Some(&engineer),
                Some(json!({"first_address": 1, "last_address": 12})),
            )
            .await;
        if status == StatusCode::ACCEPTED {
            return Some(body);
        }
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        None
    })
    .await;
    let mut scan = scan.expect("the bus worker never started");
    assert_eq!(scan["total"], 12);
    let job = format!("/api/v1/scans/{}", scan["id"]);
    let done = eventually(WAIT, || async {
        app.request("GET", &job, Some(&engineer), None).await.1["state"] == "succeeded"
    })
    .await;
    scan = app.request("GET", &job, Some(&engineer), None).await.1;
    assert!(done, "{scan}");
    assert_eq!(scan["probed"], 12);
    assert_eq!(
        scan["found"],
        json!([
            {"address": 3, "profiles": ["th40c"]},
            {"address": 5, "profiles": ["countis-e44"]},
            {"address": 7, "profiles": ["countis-e33"]},
            {"address": 9, "profiles": ["pulse-concentrator"]},
            {"address": 11, "profiles": []},
        ])
    );
    assert!(scan["finished_at"].is_string());

    // The bus page offers the found devices for adding.
    let (status, page) = app
        .request("GET", &format!("/buses/{bus}"), Some(&engineer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(
        page.contains("Address 5")
            && page.contains("countis-e44")
            && page.contains("pulse-concentrator")
            && page.contains("no known profile"),
        "{page}"
    );

    // One click adds the device found at address 3.
    let form = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/buses/{bus}/devices"))
        .header("authorization", format!("Bearer {engineer}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("address=3&profile=th40c&name=Pump+room"))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), form).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, devices) = app.request("GET", "/api/v1/devices", Some(&engineer), None).await;
    let device = &devices["devices"][0];
    assert_eq!(
        (
            device["name"].as_str(),
            device["address"].as_i64(),
            device["profile"].as_str()
        ),
        (Some("Pump room"), Some(3), Some("th40c"))
    );
    assert_eq!(response.headers()["location"], format!("/devices/{}", device["id"]));
    app.stop().await;
}

#[tokio::test]
async fn scans_are_refused_clearly() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 9});
    let bus = app.create_bus(&engineer, "b", transport).await;
    let path = format!("/api/v1/buses/{bus}/scan");
    let (status, error) = app
        .request("POST", &path, Some(&engineer), Some(json!({"first_address": 0})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("first_address:")
    );
    let (status, error) = app
        .request(
            "POST",
            &path,
            Some(&engineer),
            Some(json!({"first_address": 9, "last_address": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error["error"]["message"].as_str().unwrap().starts_with("last_address:"));
    let viewer = app.token(Role::Viewer).await;
    assert_eq!(
        app.request("POST", &path, Some(&viewer), Some(json!({}))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.request("POST", "/api/v1/buses/999/scan", Some(&engineer), Some(json!({})))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.request("GET", "/api/v1/scans/999", Some(&engineer), None).await.0,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
