//! The event log: listing with filters, acknowledgement by an operator, and
//! the events page.

use crate::support::{TestApp, add_bus, add_device, spawn_app};
use chrono::{Duration, TimeZone, Utc};
use ohmnibus::domain::event::EventKind;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::severity::Severity;
use ohmnibus::store::events::{insert_event, update_event_cleared};
use serde_json::json;

#[tokio::test]
async fn events_are_listed_filtered_and_acknowledged() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let bus = add_bus(&app, &engineer, "line", "modbus_tcp", 1).await;
    let mut ids = Vec::new();
    for (name, address) in [("Main", 1), ("Feeder", 2)] {
        let device = json!({"name": name, "profile": "th40c", "address": address});
        ids.push(DeviceId(add_device(&app, &engineer, &bus, device).await));
    }
    let (main, feeder) = (ids[0], ids[1]);
    let early = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
    let late = early + Duration::days(5);
    // Feeder: a low battery from the 1st, over on the 2nd; Main: silent since the 6th.
    let low_battery = EventKind::Meter {
        code: "low_battery".parse().unwrap(),
        severity: Severity::Critical,
    };
    insert_event(&app.pool, feeder, &low_battery, "Feeder: low battery", early)
        .await
        .unwrap();
    update_event_cleared(&app.pool, feeder, &low_battery.code(), early + Duration::days(1))
        .await
        .unwrap();
    insert_event(&app.pool, main, &EventKind::CommLost, "Main stopped answering", late)
        .await
        .unwrap();

    let viewer = app.token(Role::Viewer).await;
    // Newest first.
    assert_eq!(codes(&app, &viewer, "").await, ["comm_lost", "low_battery"]);
    assert_eq!(codes(&app, &viewer, "?active=true").await, ["comm_lost"]);
    assert_eq!(codes(&app, &viewer, "?active=false").await, ["low_battery"]);
    assert_eq!(codes(&app, &viewer, "?since=2026-11-03T00:00:00Z").await, ["comm_lost"]);
    let by_device = format!("?device_id={}", feeder.0);
    assert_eq!(codes(&app, &viewer, &by_device).await, ["low_battery"]);

    let (_, body) = app.request("GET", "/api/v1/events", Some(&viewer), None).await;
    let event = &body["events"][1];
    assert_eq!(
        event,
        &json!({"id": event["id"], "device_id": feeder.0, "code": "low_battery", "severity": "critical",
                "started_at": "2026-11-01T08:00:00Z", "cleared_at": "2026-11-02T08:00:00Z",
                "message": "Feeder: low battery", "acknowledged_by": null})
    );

    for (query, field) in [("?active=maybe", "active:"), ("?since=yesterday", "since:")] {
        let (status, error) = app
            .request("GET", &format!("/api/v1/events{query}"), Some(&viewer), None)
            .await;
        assert_eq!(status.as_u16(), 400, "{query}");
        assert_eq!(error["error"]["code"], "invalid_parameter", "{query}");
        assert!(
            error["error"]["message"].as_str().unwrap().starts_with(field),
            "{error}"
        );
    }

    // Acknowledgement: operators only; the first one stands.
    let path = format!("/api/v1/events/{}/ack", event["id"]);
    let (status, _) = app.request("POST", &path, Some(&viewer), None).await;
    assert_eq!(status.as_u16(), 403);
    let operator = app.token(Role::Operator).await;
    let (status, acked) = app.request("POST", &path, Some(&operator), None).await;
    assert_eq!(status.as_u16(), 200, "{acked}");
    assert_eq!(acked["acknowledged_by"], "test-operator");
    let (_, again) = app.request("POST", &path, Some(&engineer), None).await;
    assert_eq!(again["acknowledged_by"], "test-operator");
    let (status, _) = app
        .request("POST", "/api/v1/events/999999/ack", Some(&operator), None)
        .await;
    assert_eq!(status.as_u16(), 404);
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'ack_event'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(audited, 2);

    // The page lists them; only an operator sees the button, and only for
    // what nobody has acknowledged.
    let (status, page) = app.request("GET", "/events?active=true", Some(&operator), None).await;
    assert_eq!(status.as_u16(), 200);
    let page = page.as_str().unwrap();
    assert!(page.contains("comm_lost") && !page.contains("low_battery"), "{page}");
    assert!(page.contains("Acknowledge"));
    let (_, page) = app.request("GET", "/events", Some(&viewer), None).await;
    let page = page.as_str().unwrap();
    assert!(page.contains("low_battery") && page.contains("test-operator"));
    assert!(!page.contains("Acknowledge</button>"), "a viewer has no button");
    app.stop().await;
}

/// The codes of the events a query lists, in order.
async fn codes(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, body) = app
        .request("GET", &format!("/api/v1/events{query}"), Some(token), None)
        .await;
    assert_eq!(status.as_u16(), 200, "{query}: {body}");
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}
