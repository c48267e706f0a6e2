//! Sites and their tree of meters: creating and changing a site, a
//! device's site and the meter upstream of it, each refusal naming the
//! field at fault.

use axum::http::StatusCode;
use ohmnibus::domain::ids::{BusId, DeviceId};
use ohmnibus::domain::role::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app};

/// Asserts a refusal of `status` whose message starts with `field: `.
fn refused(answer: &(StatusCode, Value), status: StatusCode, field: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("{field}: ")), "{message}");
}

async fn create_site(app: &TestApp, token: &str, body: Value) -> i64 {
    let (status, site) = app.request("POST", "/api/v1/sites", Some(token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{site}");
    site["id"].as_i64().unwrap()
}

async fn patch_device(app: &TestApp, token: &str, id: DeviceId, body: Value) -> (StatusCode, Value) {
    app.request("PATCH", &format!("/api/v1/devices/{id}"), Some(token), Some(body))
        .await
}

/// A bus nobody answers on (port 1) on the default site.
async fn quiet_bus(app: &TestApp, engineer: &str) -> BusId {
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1});
    app.create_bus(engineer, "line", transport).await
}

#[tokio::test]
async fn a_site_is_created_and_changed_by_an_engineer_naming_each_bad_field() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;

    let body = json!({"name": "Plant A", "timezone": "Europe/Rome"});
    let (status, _) = app
        .request("POST", "/api/v1/sites", Some(&viewer), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let id = create_site(&app, &engineer, body.clone()).await;
    let (status, site) = app
        .request("GET", &format!("/api/v1/sites/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        site,
        json!({"id": id, "name": "Plant A", "time_zone": "Europe/Rome", "billing_day": null,
               "billing_hour": null, "balance_threshold_percent": 5.0, "tou_tolerance_percent": 1.0,
               "default_calendar_id": null,
               "clock_sync": {"enabled": false, "at": "03:00", "min_drift_s": 1}})
    );
    // Either spelling of the zone.
    let other = create_site(&app, &engineer, json!({"name": "Plant B", "time_zone": "UTC"})).await;
    assert_ne!(other, id);

    let post = |body: Value| app.request("POST", "/api/v1/sites", Some(&engineer), Some(body));
    refused(&post(body).await, StatusCode::CONFLICT, "name");
    refused(
        &post(json!({"name": "Plant C", "timezone": "Europe/Atlantis"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "time_zone",
    );
    refused(
        &post(json!({"name": "Plant C"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "time_zone",
    );
    refused(
        &post(json!({"name": " ", "timezone": "UTC"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "name",
    );
    refused(
        &post(json!({"name": "Plant C", "timezone": "UTC", "balance_threshold_percent": 0})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "balance_threshold_percent",
    );

    let path = format!("/api/v1/sites/{id}");
    let patch = |body: Value| app.request("PATCH", &path, Some(&engineer), Some(body));
    let (status, site) = patch(json!({"billing_day": 3, "billing_hour": 6})).await;
    assert_eq!(status, StatusCode::OK, "{site}");
    // A name, a zone (as `timezone`) and a threshold leave the schedule alone.
    let (status, site) =
        patch(json!({"name": "Plant A1", "timezone": "Europe/Paris", "balance_threshold_percent": 2.5})).await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(
        site,
        json!({"id": id, "name": "Plant A1", "time_zone": "Europe/Paris", "billing_day": 3,
               "billing_hour": 6, "balance_threshold_percent": 2.5, "tou_tolerance_percent": 1.0,
               "default_calendar_id": null,
               "clock_sync": {"enabled": false, "at": "03:00", "min_drift_s": 1}})
    );
    refused(&patch(json!({"name": "Plant B"})).await, StatusCode::CONFLICT, "name");
    refused(
        &patch(json!({"timezone": "Mars/Base"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "time_zone",
    );
    let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE target = $1 ORDER BY id")
        .bind(format!("site/{id}"))
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(audit, ["create_site", "update_site", "update_site"]);
    app.stop().await;
}

#[tokio::test]
async fn a_device_belongs_to_its_bus_site_unless_told_and_its_parent_is_checked() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let plant = create_site(&app, &engineer, json!({"name": "Plant A", "timezone": "Europe/Rome"})).await;
    let bus = quiet_bus(&app, &engineer).await;
    let meter = |address: i64| json!({"name": format!("m{address}"), "profile": "th40c", "address": address});

    // Default: the bus's site (the default site, 1), no parent.
    let lone = app.create_device(&engineer, bus, meter(1)).await;
    let device = app.device(&engineer, lone).await;
    assert_eq!(
        (&device["site_id"], &device["parent_device_id"]),
        (&json!(1), &Value::Null)
    );

    let a = app
        .create_device(&engineer, bus, with(meter(2), json!({"site_id": plant})))
        .await;
    let b = app
        .create_device(
            &engineer,
            bus,
            with(meter(3), json!({"site_id": plant, "parent_device_id": a.0})),
        )
        .await;
    let c = app
        .create_device(
            &engineer,
            bus,
            with(meter(4), json!({"site_id": plant, "parent_device_id": b.0})),
        )
        .await;
    let device = app.device(&engineer, c).await;
    assert_eq!(
        (&device["site_id"], &device["parent_device_id"]),
        (&json!(plant), &json!(b.0))
    );
    let (_, list) = app.request("GET", "/api/v1/devices", Some(&engineer), None).await;
    let listed = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == json!(b.0))
        .unwrap();
    assert_eq!(listed["parent_device_id"], json!(a.0));

    // On create: a parent on another site, a site that does not exist.
    let (status, answer) = app
        .request(
            "POST",
            "/api/v1/devices",
            Some(&engineer),
            Some(with(meter(5), json!({"bus_id": bus.0, "parent_device_id": a.0}))),
        )
        .await;
    refused(&(status, answer), StatusCode::UNPROCESSABLE_ENTITY, "parent_device_id");
    let (status, answer) = app
        .request(
            "POST",
            "/api/v1/devices",
            Some(&engineer),
            Some(with(meter(5), json!({"bus_id": bus.0, "site_id": 999}))),
        )
        .await;
    refused(&(status, answer), StatusCode::UNPROCESSABLE_ENTITY, "site_id");

    // Itself, a two-step cycle (a → b → a), a three-step one, another site.
    refused(
        &patch_device(&app, &engineer, a, json!({"parent_device_id": a.0})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent_device_id",
    );
    refused(
        &patch_device(&app, &engineer, a, json!({"parent_device_id": b.0})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent_device_id",
    );
    refused(
        &patch_device(&app, &engineer, a, json!({"parent_device_id": c.0})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent_device_id",
    );
    refused(
        &patch_device(&app, &engineer, lone, json!({"parent_device_id": a.0})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent_device_id",
    );
    refused(
        &patch_device(&app, &engineer, a, json!({"parent_device_id": 999_999})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent_device_id",
    );
    // A device with sub-meters stays on its site.
    refused(
        &patch_device(&app, &engineer, b, json!({"site_id": 1})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "site_id",
    );
    // Moving c over to the other side of the tree is fine; so is moving the
    // lone device to the plant under a, in one change.
    let (status, moved) = patch_device(&app, &engineer, c, json!({"parent_device_id": a.0})).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["parent_device_id"], json!(a.0));
    let (status, moved) = patch_device(
        &app,
        &engineer,
        lone,
        json!({"site_id": plant, "parent_device_id": a.0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        (&moved["site_id"], &moved["parent_device_id"]),
        (&json!(plant), &json!(a.0))
    );
    // Null detaches; the rest of the tree is untouched.
    let (status, detached) = patch_device(&app, &engineer, c, json!({"parent_device_id": null})).await;
    assert_eq!(status, StatusCode::OK, "{detached}");
    assert!(detached["parent_device_id"].is_null());
    assert_eq!(app.device(&engineer, b).await["parent_device_id"], json!(a.0));

    // A viewer changes nothing.
    let viewer = app.token(Role::Viewer).await;
    let (status, _) = patch_device(&app, &viewer, c, json!({"parent_device_id": a.0})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let detail: Value = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'update_device' AND target = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(format!("device/{lone}"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (&detail["site_id"], &detail["parent_device_id"]),
        (&json!(plant), &json!(a.0))
    );
    app.stop().await;
}

/// `body` with the fields of `extra` added.
fn with(mut body: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

#[tokio::test]
async fn a_sites_tou_tolerance_is_one_percent_until_changed_within_0_to_100() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let plant = create_site(&app, &engineer, json!({"name": "Plant A", "timezone": "Europe/Rome"})).await;
    let path = format!("/api/v1/sites/{plant}");
    let (status, site) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(site["tou_tolerance_percent"], 1.0);

    for bad in [json!(0), json!(-1), json!(100.5)] {
        let answer = app
            .request(
                "PATCH",
                &path,
                Some(&engineer),
                Some(json!({"tou_tolerance_percent": bad})),
            )
            .await;
        refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, "tou_tolerance_percent");
    }
    let (status, _) = app
        .request(
            "PATCH",
            &path,
            Some(&viewer),
            Some(json!({"tou_tolerance_percent": 2.5})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, changed) = app
        .request(
            "PATCH",
            &path,
            Some(&engineer),
            Some(json!({"tou_tolerance_percent": 2.5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["tou_tolerance_percent"], 2.5);
    // Only the tolerance was named: the rest of the site stays.
    assert_eq!(changed["time_zone"], "Europe/Rome");
    let (_, list) = app.request("GET", "/api/v1/sites", Some(&viewer), None).await;
    let listed = list["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|site| site["id"] == plant)
        .unwrap();
    assert_eq!(listed["tou_tolerance_percent"], 2.5);
    let (status, _) = app
        .request(
            "PATCH",
            &path,
            Some(&engineer),
            Some(json!({"tou_tolerance_percent": 100})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = app
        .request(
            "PATCH",
            "/api/v1/sites/999",
            Some(&engineer),
            Some(json!({"tou_tolerance_percent": 3})),
        )
        .await;
    assert_eq!(answer.0, StatusCode::NOT_FOUND, "{}", answer.1);
}
