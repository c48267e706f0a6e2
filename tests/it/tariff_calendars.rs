//! Tariff calendars over the API: presets, definitions and their
//! validation, versions, classification (checked for a whole year against
//! a classifier written here), and a site's default calendar.

use axum::http::StatusCode;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Europe::Rome;
use ohmnibus::domain::role::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app};

async fn create(app: &TestApp, token: &str, body: Value) -> i64 {
    let (status, created) = app
        .request("POST", "/api/v1/tariff-calendars", Some(token), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_i64().unwrap()
}

async fn classify(app: &TestApp, token: &str, id: i64, query: &str) -> Vec<(DateTime<Utc>, String)> {
    let path = format!("/api/v1/tariff-calendars/{id}/classify?{query}");
    let (status, body) = app.request("GET", &path, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["start"].as_str().unwrap().parse().unwrap(),
                step["tariff"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The ARERA F1/F2/F3 band of an instant in 2026, by the rules as written
/// (deliberazione 181/06), in Rome's local time. Easter Monday 2026 is 6
/// April (from a printed calendar).
fn arera_2026(at: DateTime<Utc>) -> &'static str {
    let local = at.with_timezone(&Rome);
    assert_eq!(local.year(), 2026);
    let holidays = [
        (1, 1),
        (1, 6),
        (4, 6),
        (4, 25),
        (5, 1),
        (6, 2),
        (8, 15),
        (11, 1),
        (12, 8),
        (12, 25),
        (12, 26),
    ];
    let hour = local.hour();
    if holidays.contains(&(local.month(), local.day())) || local.weekday() == Weekday::Sun {
        "F3"
    } else if local.weekday() == Weekday::Sat {
        if (7..23).contains(&hour) { "F2" } else { "F3" }
    } else if (8..19).contains(&hour) {
        "F1"
    } else if hour == 7 || (19..23).contains(&hour) {
        "F2"
    } else {
        "F3"
    }
}

#[tokio::test]
async fn a_year_of_quarter_hours_of_the_italian_bands() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let id = create(
        &app,
        &engineer,
        json!({"preset": "it-arera-f123", "effective_from": "2020-01-01T00:00:00Z"}),
    )
    .await;
    let viewer = app.token(Role::Viewer).await;
    // Local 2026 in Rome: from 1 January 00:00 CET to 1 January 2027 00:00 CET.
    let steps = classify(
        &app,
        &viewer,
        id,
        "from=2026-01-01T00:00:00%2B01:00&to=2027-01-01T00:00:00%2B01:00&step_minutes=15",
    )
    .await;
    assert_eq!(steps.len(), 365 * 96);
    let mut start: DateTime<Utc> = "2025-12-31T23:00:00Z".parse().unwrap();
    let mut wrong = Vec::new();
    for (at, tariff) in &steps {
        assert_eq!(*at, start, "steps of real time");
        if tariff != arera_2026(*at) {
            wrong.push((at.with_timezone(&Rome), tariff.clone(), arera_2026(*at)));
        }
        start += chrono::Duration::minutes(15);
    }
    assert!(
        wrong.is_empty(),
        "{} steps differ, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let on = |date: NaiveDate| {
        steps
            .iter()
            .filter(|(at, _)| at.with_timezone(&Rome).date_naive() == date)
            .count()
    };
    assert_eq!(on(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()), 92);
    assert_eq!(on(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()), 100);
    assert_eq!(on(NaiveDate::from_ymd_opt(2026, 10, 26).unwrap()), 96);
    let counts = |band: &str| steps.iter().filter(|(_, t)| t == band).count();
    // 2026 has 261 weekdays, 7 of them holidays, and 52 Saturdays, 3 of
    // them holidays (25 April, 15 August, 26 December): F1 11 h and F2 5 h
    // on 254 working days, F2 16 h on 49 Saturdays.
    assert_eq!(counts("F1"), 254 * 11 * 4);
    assert_eq!(counts("F2"), (254 * 5 + 49 * 16) * 4);

    let (status, calendar) = app
        .request("GET", &format!("/api/v1/tariff-calendars/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{calendar}");
    assert_eq!(calendar["name"], "it-arera-f123");
    assert_eq!(calendar["versions"][0]["version"], 1);
    assert_eq!(calendar["versions"][0]["effective_from"], "2020-01-01T00:00:00Z");
    assert_eq!(calendar["versions"][0]["definition"]["time_zone"], "Europe/Rome");
    assert_eq!(calendar["versions"][0]["created_by"], "test-engineer");
    let (status, list) = app
        .request("GET", "/api/v1/tariff-calendars", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["calendars"][0]["id"], id);
    assert_eq!(list["calendars"][0]["versions"], 1);
}

fn definition() -> Value {
    json!({
        "time_zone": "Europe/Rome",
        "bands": ["day", "night"],
        "day_profiles": [{"name": "d", "switches": [
            {"at": "00:00", "band": "night"}, {"at": "08:00", "band": "day"}, {"at": "20:00", "band": "night"}
        ]}],
        "week_profiles": [{"name": "w", "monday": "d", "tuesday": "d", "wednesday": "d",
            "thursday": "d", "friday": "d", "saturday": "d", "sunday": "d"}],
        "seasons": [
            {"name": "winter", "from": "10-01", "to": "03-31", "week_profile": "w"},
            {"name": "summer", "from": "04-01", "to": "09-30", "week_profile": "w"}
        ]
    })
}

#[tokio::test]
async fn invalid_definitions_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let refused = |body: Value| {
        let app = &app;
        let engineer = &engineer;
        async move {
            let (status, error) = app
                .request("POST", "/api/v1/tariff-calendars", Some(engineer), Some(body))
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
            error["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    let mut overlapping = definition();
    overlapping["seasons"][1]["from"] = json!("03-15");
    overlapping["day_profiles"][0]["switches"][2]["at"] = json!("07:00");
    let message = refused(json!({"name": "x", "definition": overlapping})).await;
    assert_eq!(
        message,
        "definition.day_profiles[0].switches[2].at: is before the previous switch time; switches must be in \
         increasing time; definition.seasons[1].from: overlaps seasons[0]"
    );
    let mut gap = definition();
    gap["seasons"][1]["to"] = json!("09-29");
    gap["seasons"][0]["week_profile"] = json!("weekly");
    let message = refused(json!({"name": "x", "definition": gap})).await;
    assert_eq!(
        message,
        "definition.seasons[0].week_profile: unknown week profile \"weekly\"; \
         definition.seasons: no season covers 09-30 to 09-30"
    );
    let message = refused(json!({"preset": "it-arera-f4"})).await;
    assert_eq!(
        message,
        "preset: unknown preset \"it-arera-f4\"; known: it-arera-f123, a1000-4-rate"
    );
    let message = refused(json!({"definition": definition()})).await;
    assert_eq!(message, "name: is required with a definition");
    let message = refused(json!({"name": "x"})).await;
    assert_eq!(message, "definition: is required unless a preset is given");
    let message = refused(json!({"name": "x", "definition": {"time_zone": "UTC"}})).await;
    assert!(message.contains("bands"), "{message}");

    let viewer = app.token(Role::Viewer).await;
    let (status, _) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&viewer),
            Some(json!({"preset": "it-arera-f123"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    create(&app, &engineer, json!({"name": "plant", "definition": definition()})).await;
    let (status, error) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"name": "plant", "preset": "a1000-4-rate"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(
        error["error"]["message"],
        "name: a tariff calendar with this name already exists"
    );
}

#[tokio::test]
async fn a_new_version_splits_time_from_its_date_on() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let id = create(
        &app,
        &engineer,
        json!({"name": "plant", "definition": definition(), "effective_from": "2026-01-01T00:00:00+01:00"}),
    )
    .await;
    let versions = format!("/api/v1/tariff-calendars/{id}/versions");
    let mut later = definition();
    later["day_profiles"][0]["switches"][1]["at"] = json!("09:00");
    let (status, error) = app
        .request(
            "POST",
            &versions,
            Some(&engineer),
            Some(json!({"effective_from": "2025-06-01T00:00:00Z", "definition": later})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(
        error["error"]["message"],
        "effective_from: must be after version 1's (2025-12-31T23:00:00+00:00)"
    );
    // From 1 February 2026 00:00 Rome (23:00Z the day before), day starts at 09:00.
    let (status, created) = app
        .request(
            "POST",
            &versions,
            Some(&engineer),
            Some(json!({"effective_from": "2026-02-01T00:00:00+01:00", "definition": later})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created, json!({"id": id, "version": 2}));
    let (status, _) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars/999/versions",
            Some(&engineer),
            Some(json!({"effective_from": "2027-01-01T00:00:00Z", "definition": definition()})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let hourly = |day: &str| format!("from={day}T06:00:00Z&to={day}T09:00:00Z&step_minutes=60");
    let bands = |steps: Vec<(DateTime<Utc>, String)>| steps.into_iter().map(|(_, b)| b).collect::<Vec<_>>();
    // 07:00, 08:00, 09:00 CET.
    assert_eq!(
        bands(classify(&app, &engineer, id, &hourly("2026-01-31")).await),
        ["night", "day", "day"]
    );
    assert_eq!(
        bands(classify(&app, &engineer, id, &hourly("2026-02-02")).await),
        ["night", "night", "day"]
    );
    let (_, calendar) = app
        .request("GET", &format!("/api/v1/tariff-calendars/{id}"), Some(&engineer), None)
        .await;
    assert_eq!(calendar["versions"].as_array().unwrap().len(), 2);
    assert_eq!(calendar["versions"][1]["effective_from"], "2026-01-31T23:00:00Z");
}

#[tokio::test]
async fn classification_is_bounded_and_its_parameters_named() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let id = create(&app, &engineer, json!({"preset": "a1000-4-rate"})).await;
    let get = |query: &str| {
        let path = format!("/api/v1/tariff-calendars/{id}/classify?{query}");
        let app = &app;
        let engineer = &engineer;
        async move {
            let (status, body) = app.request("GET", &path, Some(engineer), None).await;
            (status, body["error"]["message"].as_str().unwrap_or_default().to_owned())
        }
    };
    let (status, message) = get("from=2026-01-01T00:00:00Z&to=2027-01-02T00:01:00Z&step_minutes=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.starts_with("step_minutes: 527041 steps from"), "{message}");
    let (status, message) = get("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z").await;
    assert_eq!(
        (status, message.as_str()),
        (StatusCode::BAD_REQUEST, "to: must be after from")
    );
    let (status, message) = get("to=2026-01-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.starts_with("from: is required"), "{message}");
    let (status, message) = get("from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&step_minutes=quarter").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message, "step_minutes: \"quarter\" is not a whole number of minutes");
    let (status, message) = get("from=yesterday&to=2026-01-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.starts_with("from:"), "{message}");
    let (status, _) = app
        .request(
            "GET",
            "/api/v1/tariff-calendars/999/classify?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // 1 minute steps are allowed.
    let steps = classify(
        &app,
        &engineer,
        id,
        "from=2026-01-01T00:00:00Z&to=2026-01-01T00:10:00Z&step_minutes=1",
    )
    .await;
    assert_eq!(steps.len(), 10);
}

#[tokio::test]
async fn a_site_names_its_default_calendar() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let id = create(&app, &engineer, json!({"preset": "it-arera-f123"})).await;
    let patch = |body: Value| {
        let app = &app;
        let engineer = &engineer;
        async move {
            app.request("PATCH", "/api/v1/sites/1", Some(engineer), Some(body))
                .await
        }
    };
    let (status, site) = patch(json!({"billing_day": 1, "billing_hour": 0})).await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(site["default_calendar_id"], Value::Null);
    let (status, site) = patch(json!({"default_calendar_id": id})).await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(site["default_calendar_id"], id);
    // The schedule stays as it was.
    assert_eq!(
        (site["billing_day"].clone(), site["billing_hour"].clone()),
        (json!(1), json!(0))
    );
    let (_, sites) = app.request("GET", "/api/v1/sites", Some(&engineer), None).await;
    assert_eq!(sites["sites"][0]["default_calendar_id"], id);
    let (status, error) = patch(json!({"default_calendar_id": 999})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["message"], "default_calendar_id: no tariff calendar 999");
    let (status, site) = patch(json!({"default_calendar_id": null})).await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(site["default_calendar_id"], Value::Null);
    assert_eq!(site["billing_day"], 1);
}
