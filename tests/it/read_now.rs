//! An operator reads a device now, ahead of its schedule.

use crate::support::{WAIT, eventually, spawn_app};
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::json;

#[tokio::test]
async fn read_now_reads_every_group_ahead_of_the_schedule() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    let viewer = app.token(Role::Viewer).await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let device = SimDevice::new(profile, 1, Th40cModel::new(1, Tz::UTC, at), Clock::manual(at));
    let (_stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::RtuOverTcp,
        shutdown,
    )
    .await
    .unwrap();
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": line.port()});
    let bus = app.create_bus(&engineer, "b", transport).await;
    // Read once an hour: only the first scheduled reads happen during the test.
    let body = json!({"name": "m", "profile": "th40c", "address": 1,
                      "schedule": {"realtime_seconds": 3600, "energy_seconds": 3600}});
    let id = app.create_device(&engineer, bus, body).await.0;
    let reads = |code: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM readings WHERE device_id = $1 AND obis = $2")
                .bind(id)
                .bind(code)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(
        eventually(WAIT, || async {
            reads("1-1:1.8.0").await == 1 && reads("1-1:32.7.0").await == 1
        })
        .await
    );

    let path = format!("/api/v1/devices/{id}/read");
    assert_eq!(
        app.request("POST", &path, Some(&viewer), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.request("POST", "/api/v1/devices/9999/read", Some(&operator), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, job) = app.request("POST", &path, Some(&operator), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["device_id"], id);
    let job_path = format!("/api/v1/reads/{}", job["id"]);
    let done = eventually(WAIT, || async {
        app.request("GET", &job_path, Some(&viewer), None).await.1["state"] == "succeeded"
    })
    .await;
    let (_, job) = app.request("GET", &job_path, Some(&viewer), None).await;
    assert!(done, "{job}");
    // Both groups were read again: 36 real-time and 172 energy values (see the profile tests).
    assert_eq!(job["readings"], 36 + 172, "{job}");
    assert_eq!(job["requested_by"], "test-operator");
    // Stored by the batched ingest within moments.
    assert!(
        eventually(WAIT, || async {
            reads("1-1:1.8.0").await == 2 && reads("1-1:32.7.0").await == 2
        })
        .await
    );

    // The device page's button does the same, and shows the outcome.
    let form = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/devices/{id}/read"))
        .header("authorization", format!("Bearer {operator}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), form).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(eventually(WAIT, || async { reads("1-1:32.7.0").await == 3 }).await);
    let page_path = format!("/devices/{id}");
    let shown = eventually(WAIT, || async {
        let (_, page) = app.request("GET", &page_path, Some(&operator), None).await;
        page.as_str()
            .unwrap()
            .contains("Read now by test-operator: succeeded, 208 values")
    })
    .await;
    assert!(shown, "the device page shows the read's outcome");
    app.stop().await;
}
