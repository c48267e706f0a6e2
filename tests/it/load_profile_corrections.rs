//! Operators' corrections of load-profile intervals: engineers only, each a
//! new version with who and why, audited, and refused whole with a message
//! naming the bad field or interval.

use crate::support::{TestApp, add_unpolled_th40c, spawn_app_with_clock};
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::unit::Unit;
use ohmnibus::store::load_profile::insert_meter_intervals;
use ohmnibus::store::profile_corrections::fetch_interval_versions;
use serde_json::{Value, json};

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, hour, minute, 0).unwrap()
}

/// A device with two stored 15-minute intervals of 1-1:1.29.0 from the
/// meter: 08:00 (1.25 kWh) and 08:15 (1.5 kWh).
async fn device_with_intervals(app: &TestApp, engineer: &str) -> i64 {
    let id = add_unpolled_th40c(app, engineer).await;
    let interval = |start, value| Interval {
        obis: "1-1:1.29.0".parse().unwrap(),
        start,
        minutes: 15,
        value,
        unit: Unit::KWh,
        meter_status: "00".into(),
        quality: Quality::GOOD,
    };
    insert_meter_intervals(
        &app.pool,
        DeviceId(id),
        &[interval(at(8, 0), 1.25), interval(at(8, 15), 1.5)],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    id
}

async fn post(app: &TestApp, id: i64, token: &str, body: Value) -> (StatusCode, Value) {
    app.request(
        "POST",
        &format!("/api/v1/devices/{id}/load-profile/corrections"),
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn an_engineers_correction_is_a_new_version_with_who_and_why_and_is_audited() {
    let app = spawn_app_with_clock(Clock::manual(at(12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    let id = device_with_intervals(&app, &engineer).await;
    let body = json!({"intervals": [{"start": "2026-11-22T08:15:00Z", "obis": "1-1:1.29.0", "value": 1.75}],
                      "reason": "meter exchanged; value from the removed meter's display"});

    let (status, refused) = post(&app, id, &operator, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    let (status, corrected) = post(&app, id, &engineer, body).await;
    assert_eq!(status, StatusCode::OK, "{corrected}");
    assert_eq!(
        corrected,
        json!({"intervals": [{"start": "2026-11-22T08:15:00Z", "obis": "1-1:1.29.0", "value": 1.75, "unit": "kWh",
                              "flags": ["edited"], "source": "edited", "version": 2,
                              "meter_status": "00"}]}),
        "the meter's own status of the interval is kept with the correction"
    );

    // The load profile shows the correction; the other interval is untouched.
    let path = format!("/api/v1/devices/{id}/load-profile?from=2026-11-22T08:00:00Z&to=2026-11-22T08:30:00Z");
    let (_, profile) = app.request("GET", &path, Some(&operator), None).await;
    let shown: Vec<_> = profile["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["value"].clone(), i["source"].clone(), i["version"].clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (json!(1.25), json!("meter"), json!(1)),
            (json!(1.75), json!("edited"), json!(2))
        ]
    );

    // The meter's value stays on record as version 1.
    let versions = fetch_interval_versions(&app.pool, DeviceId(id), &"1-1:1.29.0".parse().unwrap(), at(8, 15))
        .await
        .unwrap();
    let summary: Vec<_> = versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.value,
                v.source.as_str(),
                v.changed_by.as_deref(),
                v.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 1.5, "meter", None, None),
            (
                2,
                1.75,
                "edited",
                Some("test-engineer"),
                Some("meter exchanged; value from the removed meter's display")
            ),
        ]
    );
    assert_eq!(versions[1].quality, Quality::EDITED);

    let audit: Vec<(String, String, String, Value)> =
        sqlx::query_as("SELECT actor, action, target, detail FROM audit_log WHERE action = 'correct_load_profile'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    let (actor, _, target, detail) = &audit[0];
    assert_eq!(
        (actor.as_str(), target.as_str()),
        ("test-engineer", format!("device/{id}").as_str())
    );
    assert_eq!(
        detail["reason"],
        "meter exchanged; value from the removed meter's display"
    );
    assert_eq!(
        detail["intervals"],
        json!([{"start": "2026-11-22T08:15:00Z", "obis": "1-1:1.29.0", "value": 1.75, "version": 2}])
    );

    // The interval's history, through the API.
    let path = format!("/api/v1/devices/{id}/load-profile/versions?obis=1-1:1.29.0&start=2026-11-22T08:15:00Z");
    let (status, history) = app.request("GET", &path, Some(&operator), None).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let history: Vec<_> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].clone(),
                v["value"].clone(),
                v["flags"].clone(),
                v["source"].clone(),
                v["changed_by"].clone(),
                v["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            (
                json!(1),
                json!(1.5),
                json!([]),
                json!("meter"),
                Value::Null,
                Value::Null
            ),
            (
                json!(2),
                json!(1.75),
                json!(["edited"]),
                json!("edited"),
                json!("test-engineer"),
                json!("meter exchanged; value from the removed meter's display")
            ),
        ]
    );
    for (query, status, message) in [
        (
            "start=2026-11-22T08:15:00Z",
            StatusCode::BAD_REQUEST,
            "obis: is required",
        ),
        ("obis=1-1:1.29.0", StatusCode::BAD_REQUEST, "start: is required"),
        (
            "obis=1-1:1.29.0&start=08:15",
            StatusCode::BAD_REQUEST,
            "start: \"08:15\" is not",
        ),
        (
            "obis=1-1:1.29.0&start=2026-11-22T09:00:00Z",
            StatusCode::NOT_FOUND,
            "no interval of 1-1:1.29.0 starts at 2026-11-22T09:00:00Z",
        ),
    ] {
        let path = format!("/api/v1/devices/{id}/load-profile/versions?{query}");
        let (got, error) = app.request("GET", &path, Some(&operator), None).await;
        assert_eq!(got, status, "{query}: {error}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(message),
            "{query}: {error}"
        );
    }

    // A second correction of the same interval is version 3.
    let again = json!({"intervals": [{"start": "2026-11-22T08:15:00Z", "obis": "1-1:1.29.0", "value": 1.7}],
                       "reason": "typo"});
    let (status, corrected) = post(&app, id, &engineer, again).await;
    assert_eq!(status, StatusCode::OK, "{corrected}");
    assert_eq!(corrected["intervals"][0]["version"], 3);
    app.stop().await;
}

#[tokio::test]
async fn bad_corrections_are_refused_whole_naming_what_was_wrong() {
    let app = spawn_app_with_clock(Clock::manual(at(12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let id = device_with_intervals(&app, &engineer).await;
    let good = json!({"start": "2026-11-22T08:00:00Z", "obis": "1-1:1.29.0", "value": 2.0});
    let cases = [
        (
            json!({"intervals": [good]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason: say why",
        ),
        (
            json!({"intervals": [good], "reason": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason: say why",
        ),
        (
            json!({"intervals": [], "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "intervals: must hold at least one interval",
        ),
        (
            json!({"intervals": [good, {"start": "2026-11-22T09:00:00Z", "obis": "1-1:1.29.0", "value": 1.0}],
                   "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "intervals[1]: no interval of 1-1:1.29.0 starts at 2026-11-22T09:00:00Z",
        ),
        (
            json!({"intervals": [good, {"start": "yesterday", "obis": "1-1:1.29.0", "value": 1.0}], "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "intervals[1].start: \"yesterday\" is not an RFC 3339 time",
        ),
        (
            json!({"intervals": [{"start": "2026-11-22T08:00:00Z", "obis": "1-1:1.29", "value": 1.0}], "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "intervals[0].obis:",
        ),
        (
            json!({"intervals": [good, good], "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "intervals[1]: corrects the same interval as intervals[0]",
        ),
        (
            json!({"intervals": [{"start": "2026-11-22T08:00:00Z", "obis": "1-1:1.29.0", "value": "NaN"}],
                   "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "intervals[0].value",
        ),
    ];
    for (body, status, message) in cases {
        let (got, error) = post(&app, id, &engineer, body.clone()).await;
        assert_eq!(got, status, "{body}: {error}");
        let text = error["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
    // A value JSON cannot hold (1e999 overflows a double) is refused too.
    let (status, error) = app
        .request_raw(
            "POST",
            &format!("/api/v1/devices/{id}/load-profile/corrections"),
            &engineer,
            r#"{"intervals": [{"start": "2026-11-22T08:00:00Z", "obis": "1-1:1.29.0", "value": 1e999}], "reason": "r"}"#,
        )
        .await;
    assert!(status.is_client_error(), "{status}: {error}");
    let (status, error) = app
        .request_raw(
            "POST",
            &format!("/api/v1/devices/{id}/load-profile/corrections"),
            &engineer,
            "{not json",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, error) = post(&app, id + 100, &engineer, json!({"intervals": [good], "reason": "r"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");

    // Nothing was stored by any of them: the interval at 08:00 is version 1.
    let versions = fetch_interval_versions(&app.pool, DeviceId(id), &"1-1:1.29.0".parse().unwrap(), at(8, 0))
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'correct_load_profile'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(audited, 0);
    app.stop().await;
}
