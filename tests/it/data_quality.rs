//! Validation settings and data quality: a device's physical limits set
//! through PATCH (and refused when impossible), and the monthly count of
//! actual, estimated and missing intervals for a hand-counted month.

use crate::support::{add_unpolled_th40c, spawn_app_with_clock};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::source::IntervalSource;
use ohmnibus::domain::unit::Unit;
use ohmnibus::store::load_profile::{insert_interval_version, insert_meter_intervals};
use serde_json::{Value, json};

#[tokio::test]
async fn physical_limits_are_set_cleared_audited_and_refused_by_name() {
    let app = spawn_app_with_clock(Clock::manual(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap())).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let path = format!("/api/v1/devices/{id}");

    // The schema's defaults: direct connection, no current of its own, 230 V, three phases.
    let (_, device) = app.request("GET", &path, Some(&engineer), None).await;
    let limits = |d: &Value| {
        (
            d["ct_ratio"].clone(),
            d["max_current_a"].clone(),
            d["voltage_v"].clone(),
            d["phases"].clone(),
        )
    };
    assert_eq!(limits(&device), (json!(1.0), Value::Null, json!(230.0), json!(3)));

    // A 200/5 A CT on a single-phase circuit.
    let (status, changed) = app
        .request(
            "PATCH",
            &path,
            Some(&engineer),
            Some(json!({"ct_ratio": 40, "max_current_a": 6, "voltage_v": 240, "phases": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(limits(&changed), (json!(40.0), json!(6.0), json!(240.0), json!(1)));
    let (_, fetched) = app.request("GET", &path, Some(&engineer), None).await;
    assert_eq!(limits(&fetched), limits(&changed));
    // Left out keeps the value; null restores the default.
    let (status, changed) = app
        .request(
            "PATCH",
            &path,
            Some(&engineer),
            Some(json!({"max_current_a": null, "phases": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(limits(&changed), (json!(40.0), Value::Null, json!(240.0), json!(3)));
    let details: Vec<Value> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'update_device' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(details.len(), 2);
    assert_eq!(details[0]["ct_ratio"], json!(40.0));
    assert_eq!(details[0]["max_current_a"], json!(6.0));
    assert_eq!(details[1]["max_current_a"], Value::Null);
    assert_eq!(details[1]["phases"], json!(3));

    for (body, message) in [
        (json!({"ct_ratio": 0}), "ct_ratio: 0 is not above 0"),
        (json!({"max_current_a": -5}), "max_current_a: -5 is not above 0"),
        (json!({"voltage_v": 0.0}), "voltage_v: 0 is not above 0"),
        (json!({"phases": 2}), "phases: 2 is not 1 or 3"),
        (json!({"phases": "three"}), "phases"),
        (json!({"ct_ratio": "40"}), "ct_ratio"),
    ] {
        let (status, error) = app.request("PATCH", &path, Some(&engineer), Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
    let (_, fetched) = app.request("GET", &path, Some(&engineer), None).await;
    assert_eq!(
        limits(&fetched),
        (json!(40.0), Value::Null, json!(240.0), json!(3)),
        "refusals changed nothing"
    );
}

fn hourly(obis: &str, start: DateTime<Utc>, quality: Quality) -> Interval {
    Interval {
        obis: obis.parse().unwrap(),
        start,
        minutes: 60,
        value: 1.0,
        unit: Unit::KWh,
        meter_status: "00".into(),
        quality,
    }
}

#[tokio::test]
async fn data_quality_counts_a_hand_counted_paris_october() {
    // Now: 2026-11-01 12:10 UTC (13:10 in Paris).
    let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 10, 0).unwrap();
    let app = spawn_app_with_clock(Clock::manual(now)).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    sqlx::query("UPDATE sites SET time_zone = 'Europe/Paris'")
        .execute(&app.pool)
        .await
        .unwrap();
    let id = add_unpolled_th40c(&app, &engineer).await;
    let (status, _) = app
        .request(
            "PATCH",
            &format!("/api/v1/devices/{id}"),
            Some(&engineer),
            Some(json!({"interval_minutes": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let device = DeviceId(id);
    let (import, export) = ("1-1:1.29.0", "1-1:2.29.0");

    // The first interval starts at local midnight of 25 October, the day
    // Paris falls back (25 hours): 2026-10-24 22:00 UTC.
    let first = Utc.with_ymd_and_hms(2026, 10, 24, 22, 0, 0).unwrap();
    let hour = |k: i64| first + TimeDelta::hours(k);
    // Hours 0–23 of that day stored; hour 0 on two channels (still one interval).
    let mut stored: Vec<Interval> = (0..24)
        .map(|k| {
            let quality = if k == 5 || k == 6 || k == 8 {
                Quality::ESTIMATED
            } else {
                Quality::GOOD
            };
            hourly(import, hour(k), quality)
        })
        .collect();
    stored.push(hourly(export, hour(0), Quality::GOOD));
    // November (local): 2026-10-31 23:00 UTC and 2026-11-01 00:00 UTC.
    let november = Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap();
    stored.push(hourly(import, november, Quality::GOOD));
    stored.push(hourly(import, november + TimeDelta::hours(1), Quality::GOOD));
    assert_eq!(
        insert_meter_intervals(&app.pool, device, &stored, chrono::Utc::now())
            .await
            .unwrap(),
        27
    );
    // Hour 7 becomes an estimate in its newest version; hour 8's estimate is
    // replaced by an operator's value: only the newest version counts.
    let version = insert_interval_version(
        &app.pool,
        device,
        &hourly(import, hour(7), Quality::GOOD),
        IntervalSource::Estimated,
        "vee",
        "test",
    )
    .await
    .unwrap();
    assert_eq!(version, Some(2));
    let version = insert_interval_version(
        &app.pool,
        device,
        &hourly(import, hour(8), Quality::EDITED),
        IntervalSource::Edited,
        "alice",
        "read off the display",
    )
    .await
    .unwrap();
    assert_eq!(version, Some(2));

    // October, hand-counted: expected from 25 Oct 00:00 local to the month's
    // end = 25 h (the 25th) + 6 × 24 h = 169 hourly intervals. Stored: 24
    // starts, of which hours 5, 6 and 7 are estimated: 21 actual, 3
    // estimated, 169 − 24 = 145 missing.
    // November: 1 Nov 00:00 local (2026-10-31 23:00 UTC) up to the last complete
    // hour before 12:10 UTC, i.e. starts 23:00 … 11:00 UTC = 13 expected; 2 actual, 11 missing.
    let (status, body) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/data-quality?from=2026-10-01T00:00:00%2B02:00"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"interval_minutes": 60, "months": [
            {"month": "2026-10", "expected": 169, "actual": 21, "estimated": 3, "missing": 145, "pending": 0,
             "actual_share": 0.1243, "estimated_share": 0.0178, "missing_share": 0.858},
            {"month": "2026-11", "expected": 13, "actual": 2, "estimated": 0, "missing": 11, "pending": 0,
             "actual_share": 0.1538, "estimated_share": 0.0, "missing_share": 0.8462},
        ], "backfill": null})
    );

    // Without from: the twelve months up to now, the ten before October empty.
    let (status, body) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/data-quality"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let months = body["months"].as_array().unwrap();
    assert_eq!(months.len(), 12);
    assert_eq!(months[0]["month"], "2025-12");
    assert_eq!(months[0]["expected"], 0);
    assert_eq!(months[10]["expected"], 169);

    // The device page shows the last three months that expect intervals.
    let (status, page) = app
        .request("GET", &format!("/devices/{id}"), Some(&engineer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains("Data quality"), "{page}");
    assert!(page.contains("<th scope=\"row\">2026-10</th><td class=\"num\">169</td><td class=\"num\">21 (12.4 %)</td><td class=\"num\">3 (1.8 %)</td><td class=\"num\">145 (85.8 %)</td>"), "{page}");

    for (query, message) in [
        (
            "from=2026-11-01T00:00:00Z&to=2026-10-01T00:00:00Z",
            "from: must be before to",
        ),
        ("from=2024-01-01T00:00:00Z", "to: the window may span at most 366 days"),
        ("from=yesterday", "from: \"yesterday\" is not an RFC 3339 time"),
    ] {
        let (status, error) = app
            .request(
                "GET",
                &format!("/api/v1/devices/{id}/data-quality?{query}"),
                Some(&viewer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{query}: {text}");
    }
    let (status, _) = app
        .request("GET", "/api/v1/devices/999/data-quality", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
