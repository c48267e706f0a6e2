//! Virtual meters: a signed sum of devices, served by the load-profile
//! endpoint under its own id, which no device has.

use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::source::IntervalSource;
use ohmnibus::domain::unit::Unit;
use ohmnibus::store::load_profile::{insert_interval_version, insert_meter_intervals};
use serde_json::{Value, json};

use crate::support::spawn_app_with_clock;

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, hour, minute, 0).unwrap()
}

fn interval(start: DateTime<Utc>, value: f64) -> Interval {
    Interval {
        obis: "1-1:1.29.0".parse().unwrap(),
        start,
        minutes: 15,
        value,
        unit: Unit::KWh,
        meter_status: "00".into(),
        quality: Quality::GOOD,
    }
}

#[tokio::test]
async fn a_virtual_meter_load_profile_is_the_signed_sum_of_its_devices() {
    let app = spawn_app_with_clock(Clock::manual(at(12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1});
    let bus = app.create_bus(&engineer, "line", transport).await;
    let meter = |address: i64| json!({"name": format!("m{address}"), "profile": "th40c", "address": address});
    let main = app.create_device(&engineer, bus, meter(1)).await;
    let feeder = app.create_device(&engineer, bus, meter(2)).await;
    let other = app.create_device(&engineer, bus, meter(3)).await;
    // None is polled nor has its gaps estimated while the test reads them
    // (the derivation passes run every 300 ms here): the intervals below
    // are all there is.
    for device in [main, feeder, other] {
        let path = format!("/api/v1/devices/{}", device.0);
        let (status, body) = app
            .request("PATCH", &path, Some(&engineer), Some(json!({"enabled": false})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // main − feeder − other, laid out by hand:
    //  08:00  10.0 − 2.5 − 1.0 = 6.5
    //  08:15   8.0 − 0.5 − 3.0 = 4.5  (feeder's newest version: 0.5, an edit of 4.0)
    //  08:30   7.0 − 1.0 −  —  : other lacks it, incomplete
    //  08:45   —   − 1.5 − 2.0 : main lacks it, incomplete
    insert_meter_intervals(
        &app.pool,
        main,
        &[
            interval(at(8, 0), 10.0),
            interval(at(8, 15), 8.0),
            interval(at(8, 30), 7.0),
        ],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    insert_meter_intervals(
        &app.pool,
        feeder,
        &[
            interval(at(8, 0), 2.5),
            interval(at(8, 15), 4.0),
            interval(at(8, 30), 1.0),
            interval(at(8, 45), 1.5),
        ],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let edit = Interval {
        quality: Quality::EDITED,
        ..interval(at(8, 15), 0.5)
    };
    insert_interval_version(&app.pool, feeder, &edit, IntervalSource::Edited, "test", "meter swap")
        .await
        .unwrap()
        .unwrap();
    insert_meter_intervals(
        &app.pool,
        other,
        &[
            interval(at(8, 0), 1.0),
            interval(at(8, 15), 3.0),
            interval(at(8, 45), 2.0),
        ],
        chrono::Utc::now(),
    )
    .await
    .unwrap();

    let body = json!({"name": "Unmetered", "site_id": 1, "terms": [
        {"device_id": main.0, "sign": 1}, {"device_id": feeder.0, "sign": -1}, {"device_id": other.0, "sign": -1}]});
    let (status, _) = app
        .request("POST", "/api/v1/virtual-meters", Some(&viewer), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = app
        .request("POST", "/api/v1/virtual-meters", Some(&engineer), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    // From the devices' sequence: not one of theirs, and the next device's
    // id is not its id either.
    assert!(![main.0, feeder.0, other.0].contains(&id));
    let later = app.create_device(&engineer, bus, meter(4)).await;
    assert_ne!(later.0, id);
    assert_eq!(created["terms"][1], json!({"device_id": feeder.0, "sign": -1}));

    let (status, got) = app
        .request("GET", &format!("/api/v1/virtual-meters/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
    let (_, list) = app
        .request("GET", "/api/v1/virtual-meters?site_id=1", Some(&viewer), None)
        .await;
    assert_eq!(list["virtual_meters"], json!([created]));

    let path = format!("/api/v1/devices/{id}/load-profile?from=2026-12-01T08:00:00Z&to=2026-12-01T09:00:00Z");
    let (status, profile) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["interval_minutes"], 15);
    let values: Vec<(String, f64, Value)> = profile["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["start"].as_str().unwrap().to_owned(),
                i["value"].as_f64().unwrap(),
                i["flags"].clone(),
            )
        })
        .collect();
    assert_eq!(
        values,
        vec![
            ("2026-12-01T08:00:00Z".to_owned(), 6.5, json!([])),
            ("2026-12-01T08:15:00Z".to_owned(), 4.5, json!(["edited"])),
        ]
    );
    assert_eq!(profile["intervals"][1]["version"], 2);
    assert_eq!(
        profile["incomplete"],
        json!([
            {"start": "2026-12-01T08:30:00Z", "obis": "1-1:1.29.0", "missing_device_ids": [other.0], "pending_device_ids": []},
            {"start": "2026-12-01T08:45:00Z", "obis": "1-1:1.29.0", "missing_device_ids": [main.0], "pending_device_ids": []},
        ])
    );
    // A device's own profile carries no `incomplete` list.
    let (_, own) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{main}/load-profile?from=2026-12-01T08:00:00Z&to=2026-12-01T09:00:00Z"),
            Some(&viewer),
            None,
        )
        .await;
    assert!(own.get("incomplete").is_none(), "{own}");
    assert_eq!(own["intervals"].as_array().unwrap().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_virtual_meter_is_refused_naming_the_field_at_fault() {
    let app = spawn_app_with_clock(Clock::manual(at(12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1});
    let bus = app.create_bus(&engineer, "line", transport).await;
    let a = app
        .create_device(&engineer, bus, json!({"name": "a", "profile": "th40c", "address": 1}))
        .await;
    let (status, site) = app
        .request(
            "POST",
            "/api/v1/sites",
            Some(&engineer),
            Some(json!({"name": "Plant B", "timezone": "UTC"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let b = app
        .create_device(
            &engineer,
            bus,
            json!({"name": "b", "profile": "th40c", "address": 2, "site_id": site["id"]}),
        )
        .await;
    let term = |device: DeviceId, sign: i64| json!({"device_id": device.0, "sign": sign});
    let good = json!({"name": "v", "site_id": 1, "terms": [term(a, 1)]});
    let (status, made) = app
        .request("POST", "/api/v1/virtual-meters", Some(&engineer), Some(good.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let virtual_id = DeviceId(made["id"].as_i64().unwrap());
    for (body, status, field) in [
        (good.clone(), StatusCode::CONFLICT, "name"),
        (
            json!({"name": "w", "site_id": 1, "terms": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "terms",
        ),
        (
            json!({"name": "w", "site_id": 1, "terms": [term(a, 2)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "terms[0].sign",
        ),
        (
            json!({"name": "w", "site_id": 1, "terms": [term(a, 1), term(b, -1)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "terms[1].device_id",
        ),
        (
            json!({"name": "w", "site_id": 1, "terms": [term(a, 1), term(a, -1)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "terms[1].device_id",
        ),
        (
            json!({"name": "w", "site_id": 1, "terms": [term(virtual_id, 1)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "terms[0].device_id",
        ),
        (
            json!({"name": "w", "site_id": 999, "terms": [term(a, 1)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "site_id",
        ),
        (
            json!({"name": "w", "site_id": 1, "terms": [term(a, 1)], "parent_device_id": b.0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "parent_device_id",
        ),
    ] {
        let (got, answer) = app
            .request("POST", "/api/v1/virtual-meters", Some(&engineer), Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}: ")), "{body} → {message}");
    }
    // A device counted by a virtual meter stays on its site.
    let (status, answer) = app
        .request(
            "PATCH",
            &format!("/api/v1/devices/{a}"),
            Some(&engineer),
            Some(json!({"site_id": site["id"]})),
        )
        .await;
    assert!(
        status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::CONFLICT,
        "{answer}"
    );
    assert!(
        answer["error"]["message"].as_str().unwrap().starts_with("site_id: "),
        "{answer}"
    );
    app.stop().await;
}

/// A member still backfilling its meter's load profile (newest first) has
/// not lost the intervals it has not reached: they are pending, not
/// missing, until its backfill is complete.
#[tokio::test]
async fn a_member_still_backfilling_is_pending_not_missing() {
    let app = spawn_app_with_clock(Clock::manual(at(12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1});
    let bus = app.create_bus(&engineer, "line", transport).await;
    let meter = |address: i64| json!({"name": format!("m{address}"), "profile": "th40c", "address": address});
    let (main, backfilling) = (
        app.create_device(&engineer, bus, meter(1)).await,
        app.create_device(&engineer, bus, meter(2)).await,
    );
    for device in [main, backfilling] {
        let path = format!("/api/v1/devices/{}", device.0);
        let (status, body) = app
            .request("PATCH", &path, Some(&engineer), Some(json!({"enabled": false})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let starts = [at(8, 0), at(8, 15), at(8, 30)];
    let all: Vec<Interval> = starts.iter().map(|start| interval(*start, 1.0)).collect();
    insert_meter_intervals(&app.pool, main, &all, chrono::Utc::now())
        .await
        .unwrap();
    // The second has read back to 08:30 of a backfill that goes back a month.
    insert_meter_intervals(&app.pool, backfilling, &all[2..], chrono::Utc::now())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO load_profile_backfills (device_id, started_at, depth_limit, oldest_reached) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(backfilling)
    .bind(at(11, 0))
    .bind(at(11, 0) - chrono::Duration::days(30))
    .bind(at(8, 30))
    .execute(&app.pool)
    .await
    .unwrap();
    let body = json!({"name": "Both", "site_id": 1, "terms": [
        {"device_id": main.0, "sign": 1}, {"device_id": backfilling.0, "sign": 1}]});
    let (status, created) = app
        .request("POST", "/api/v1/virtual-meters", Some(&engineer), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!(
        "/api/v1/devices/{}/load-profile?from=2026-12-01T08:00:00Z&to=2026-12-01T09:00:00Z",
        created["id"]
    );
    let incomplete = |missing: &[DeviceId], pending: &[DeviceId]| {
        let ids = |devices: &[DeviceId]| devices.iter().map(|device| device.0).collect::<Vec<_>>();
        json!([
            {"start": "2026-12-01T08:00:00Z", "obis": "1-1:1.29.0", "missing_device_ids": ids(missing), "pending_device_ids": ids(pending)},
            {"start": "2026-12-01T08:15:00Z", "obis": "1-1:1.29.0", "missing_device_ids": ids(missing), "pending_device_ids": ids(pending)},
        ])
    };
    let (status, profile) = app.request("GET", &path, Some(&engineer), None).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["incomplete"], incomplete(&[], &[backfilling]));
    assert_eq!(profile["intervals"][0]["value"], 2.0);
    // Complete at 08:30 (the meter had nothing older): the sum lacks them
    // for good, they are missing.
    sqlx::query("UPDATE load_profile_backfills SET completed_at = $2 WHERE device_id = $1")
        .bind(backfilling)
        .bind(at(11, 5))
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, profile) = app.request("GET", &path, Some(&engineer), None).await;
    assert_eq!(profile["incomplete"], incomplete(&[backfilling], &[]));
}
