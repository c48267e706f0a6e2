//! The tariff calendar pages: the list, and one calendar's week as a grid
//! of bands, its special days and versions. The week of 23–29 March 2026
//! ends with Europe/Rome's spring-forward change (Sunday 29 March, 02:00
//! CET becomes 03:00 CEST); the grid is checked cell by cell against the
//! ARERA rules written out here.

use axum::http::StatusCode;
use chrono::{Duration, NaiveDate, Weekday};
use ohmnibus::domain::role::Role;
use serde_json::json;

use ohmnibus::domain::clock::Clock;

use crate::support::{TestApp, spawn_app, spawn_app_with_clock};

async fn page(app: &TestApp, token: &str, path: &str) -> (StatusCode, String) {
    let (status, body) = app.request("GET", path, Some(token), None).await;
    (status, body.as_str().unwrap_or_default().to_owned())
}

/// The words of the grid cell of local time `at` (`YYYY-MM-DD HH:MM`): one
/// band name, two for a time that occurs twice, `–` for one that does not
/// exist.
fn cell(page: &str, at: &str) -> Vec<String> {
    let marker = format!("data-at=\"{at}\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no cell {at}"));
    let open = start + page[start..].find('>').unwrap() + 1;
    let close = open + page[open..].find("</td>").unwrap();
    let mut text = String::new();
    let mut in_tag = false;
    for c in page[open..close].chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().map(str::to_owned).collect()
}

/// The ARERA band of a local weekday and hour on a day that is no holiday
/// (deliberazione 181/06: F1 Monday–Friday 08–19; F2 Monday–Friday 07–08
/// and 19–23, Saturday 07–23; F3 the rest and all of Sunday).
fn arera(weekday: Weekday, hour: u32) -> &'static str {
    match weekday {
        Weekday::Sun => "F3",
        Weekday::Sat if (7..23).contains(&hour) => "F2",
        Weekday::Sat => "F3",
        _ if (8..19).contains(&hour) => "F1",
        _ if hour == 7 || (19..23).contains(&hour) => "F2",
        _ => "F3",
    }
}

#[tokio::test]
async fn the_week_of_the_spring_change_shows_the_italian_bands() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let (status, created) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"preset": "it-arera-f123", "effective_from": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();

    // The list, linked from the fleet page's navigation.
    let (status, fleet) = page(&app, &viewer, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(fleet.contains("href=\"/tariff-calendars\""), "{fleet}");
    let (status, list) = page(&app, &viewer, "/tariff-calendars").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        format!("<a href=\"/tariff-calendars/{id}\">it-arera-f123</a>"),
        "<td class=\"num\">1</td><td>Europe/Rome</td>".to_owned(),
    ] {
        assert!(list.contains(&expected), "{expected:?} missing:\n{list}");
    }

    // Any day of the week shows the week from its Monday.
    let (status, week) = page(
        &app,
        &viewer,
        &format!("/tariff-calendars/{id}?week=2026-03-25&year=2026"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{week}");
    assert!(week.contains("2026-03-23 to 2026-03-29"), "{week}");
    assert!(week.contains("Version 1 is in force all week."), "{week}");
    for neighbour in ["2026-03-16", "2026-03-30"] {
        let link = format!("href=\"/tariff-calendars/{id}?week={neighbour}&#38;year=2026\"");
        assert!(week.contains(&link), "{link} missing:\n{week}");
    }

    // Cells picked by hand.
    for (at, band) in [
        ("2026-03-23 08:00", "F1"),
        ("2026-03-23 07:45", "F2"),
        ("2026-03-23 06:45", "F3"),
        ("2026-03-23 18:45", "F1"),
        ("2026-03-23 19:00", "F2"),
        ("2026-03-23 23:00", "F3"),
        ("2026-03-28 10:00", "F2"),
        ("2026-03-28 06:45", "F3"),
        ("2026-03-28 23:00", "F3"),
        ("2026-03-29 12:00", "F3"),
    ] {
        assert_eq!(cell(&week, at), [band], "{at}");
    }
    // Every cell of the week against the rules; on Sunday 29 March the
    // local times 02:00 to 02:45 do not exist.
    let monday = NaiveDate::from_ymd_opt(2026, 3, 23).unwrap();
    let mut sunday_f3 = 0;
    for day in 0..7 {
        let date = monday + Duration::days(day);
        let weekday = chrono::Datelike::weekday(&date);
        for quarter in 0..96 {
            let (hour, minute) = (quarter / 4, quarter % 4 * 15);
            let at = format!("{date} {hour:02}:{minute:02}");
            let skipped = day == 6 && hour == 2;
            let expected = if skipped { "–" } else { arera(weekday, hour) };
            assert_eq!(cell(&week, &at), [expected], "{at}");
            if day == 6 && expected == "F3" {
                sunday_f3 += 1;
            }
        }
    }
    assert_eq!(sunday_f3, 92);
    assert!(week.contains("Sunday 2026-03-29 has 23 hours"), "{week}");
    assert!(week.contains("02:00 to 02:45 do not exist"), "{week}");

    // The special days of 2026, movable feasts as dates: Easter Sunday 2026
    // is 5 April (printed calendars), so Easter Monday is 6 April.
    for expected in [
        "<tr><td>2026-04-06</td><td>Monday</td>",
        "<td>Easter Sunday + 1 day</td><td>holiday</td>",
        "<tr><td>2026-12-08</td><td>Tuesday</td><td>Immacolata Concezione</td><td>every year 12-08</td><td>holiday</td></tr>",
        "<tr><td>2026-01-01</td><td>Thursday</td><td>Capodanno</td>",
    ] {
        assert!(week.contains(expected), "{expected:?} missing:\n{week}");
    }
    assert_eq!(week.matches("<td>holiday</td></tr>").count(), 11, "{week}");
    // Another year moves Easter Monday: 2027's Easter Sunday is 28 March.
    let (_, later) = page(
        &app,
        &viewer,
        &format!("/tariff-calendars/{id}?week=2026-03-23&year=2027"),
    )
    .await;
    assert!(later.contains("<tr><td>2027-03-29</td><td>Monday</td>"), "{later}");

    // The fall-back week: Sunday 25 October has 25 hours, 02:00 to 02:45
    // twice, both F3 (a Sunday).
    let (status, autumn) = page(&app, &viewer, &format!("/tariff-calendars/{id}?week=2026-10-19")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cell(&autumn, "2026-10-25 02:15"), ["F3", "F3"]);
    assert_eq!(cell(&autumn, "2026-10-25 03:00"), ["F3"]);
    assert_eq!(cell(&autumn, "2026-10-23 02:15"), ["F3"]);
    assert_eq!(cell(&autumn, "2026-10-23 08:00"), ["F1"]);
    assert!(autumn.contains("Sunday 2026-10-25 has 25 hours"), "{autumn}");
}

#[tokio::test]
async fn bad_input_gets_the_error_page() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let (_, created) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"preset": "it-arera-f123"})),
        )
        .await;
    let id = created["id"].as_i64().unwrap();

    let (status, missing) = page(&app, &engineer, "/tariff-calendars/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        missing.contains("Error 404") && missing.contains("no tariff calendar 999999"),
        "{missing}"
    );
    let (status, missing) = page(&app, &engineer, "/tariff-calendars/abc").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains("Error 404"), "{missing}");

    for (query, field) in [
        ("week=2026-13-01", "week: "),
        ("week=next", "week: "),
        ("year=20x6", "year: "),
        ("year=10000", "year: "),
        ("week=2026-03-23&week=2026-03-30", "week"),
    ] {
        let (status, error) = page(&app, &engineer, &format!("/tariff-calendars/{id}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(error.contains("Error 400") && error.contains(field), "{query}: {error}");
    }

    // Nobody signed in: the login page, back here afterwards.
    let (status, _) = app.request("GET", "/tariff-calendars", None, None).await;
    assert!(status.is_redirection(), "{status}");
}

#[tokio::test]
async fn a_version_taking_effect_mid_week_is_named_and_followed() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let (_, created) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"preset": "it-arera-f123", "effective_from": "2020-01-01T00:00:00Z"})),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    // Version 2 makes Saturday a holiday from Friday 27 March 2026, local
    // midnight (CET, UTC+1: 26 March 23:00 UTC).
    let (_, detail) = app
        .request("GET", &format!("/api/v1/tariff-calendars/{id}"), Some(&engineer), None)
        .await;
    let mut definition = detail["versions"][0]["definition"].clone();
    definition["week_profiles"][0]["saturday"] = json!("holiday");
    let (status, added) = app
        .request(
            "POST",
            &format!("/api/v1/tariff-calendars/{id}/versions"),
            Some(&engineer),
            Some(json!({"effective_from": "2026-03-27T00:00:00+01:00", "definition": definition})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");

    let (status, week) = page(&app, &engineer, &format!("/tariff-calendars/{id}?week=2026-03-23")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        week.contains(
            "Version 1 is in force at the start of the week, then version 2 from 2026-03-27 00:00 Europe/Rome (23:00 UTC)."
        ),
        "{week}"
    );
    assert_eq!(week.matches("<td>in force</td>").count(), 2, "{week}");
    assert_eq!(cell(&week, "2026-03-23 08:00"), ["F1"]);
    assert_eq!(cell(&week, "2026-03-27 08:00"), ["F1"]);
    assert_eq!(cell(&week, "2026-03-28 10:00"), ["F3"]);
    assert!(
        week.contains("Sat 2026-03-28<span class=\"note\">holiday</span>"),
        "{week}"
    );

    let (_, before) = page(&app, &engineer, &format!("/tariff-calendars/{id}?week=2026-03-16")).await;
    assert!(before.contains("Version 1 is in force all week."), "{before}");
    assert_eq!(cell(&before, "2026-03-21 10:00"), ["F2"]);
    let (_, after) = page(&app, &engineer, &format!("/tariff-calendars/{id}?week=2026-03-30")).await;
    assert!(after.contains("Version 2 is in force all week."), "{after}");
}

#[tokio::test]
async fn by_default_this_week_and_this_year_in_the_calendars_zone() {
    // 31 December 2026 23:30 UTC is Friday 1 January 2027, 00:30 CET in
    // Rome: the week of 28 December and the special days of 2027 (in UTC
    // it is still 2026).
    let app = spawn_app_with_clock(Clock::manual("2026-12-31T23:30:00Z".parse().unwrap())).await;
    let engineer = app.token(Role::Engineer).await;
    let (_, created) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"preset": "it-arera-f123"})),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let (status, now) = page(&app, &engineer, &format!("/tariff-calendars/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert!(now.contains("2026-12-28 to 2027-01-03"), "{now}");
    assert!(now.contains("Special days of 2027"), "{now}");
    // Easter Sunday 2027 is 28 March (printed calendars).
    assert!(now.contains("<tr><td>2027-03-29</td><td>Monday</td>"), "{now}");
    // New Year's Day, a Friday, is F3 all day; Thursday 31 December is not.
    assert_eq!(cell(&now, "2027-01-01 10:00"), ["F3"]);
    assert_eq!(cell(&now, "2026-12-31 10:00"), ["F1"]);

    // 29 March 2026 22:30 UTC is Monday 30 March 00:30 CEST: the next week
    // in Rome, while in UTC it is still Sunday.
    let app = spawn_app_with_clock(Clock::manual("2026-03-29T22:30:00Z".parse().unwrap())).await;
    let engineer = app.token(Role::Engineer).await;
    let (_, created) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"preset": "it-arera-f123"})),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let (_, now) = page(&app, &engineer, &format!("/tariff-calendars/{id}")).await;
    assert!(now.contains("2026-03-30 to 2026-04-05"), "{now}");
}
