//! The load-profile API: the newest version of each stored interval over a
//! window, as JSON and as CSV.

use crate::support::{
    TestApp, WAIT, add_unpolled_device, add_unpolled_th40c, eventually, fetch_load_profile, iec_meter,
    serve_one_iec_tcp_device, spawn_app_with_clock,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use http_body_util::BodyExt;
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::source::IntervalSource;
use ohmnibus::domain::unit::Unit;
use ohmnibus::sim::iec62056::history::Quantity;
use ohmnibus::sim::iec62056::{IecKind, ProfileChannel, ProgrammedProfile};
use ohmnibus::store::load_profile::{insert_interval_version, insert_meter_intervals};
use serde_json::json;
use tower::ServiceExt;

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap()
}

fn interval(obis: &str, start: DateTime<Utc>, value: f64, quality: Quality) -> Interval {
    Interval {
        obis: obis.parse().unwrap(),
        start,
        minutes: 30,
        value,
        unit: Unit::KWh,
        meter_status: "00".into(),
        quality,
    }
}

/// GET returning status, content type, content disposition and body text.
async fn get_text(app: &TestApp, path: &str, token: &str) -> (StatusCode, String, String, String) {
    let request = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, kind, disposition) = (response.status(), header("content-type"), header("content-disposition"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, kind, disposition, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn load_profile_shows_newest_versions_in_order_as_json_and_csv() {
    let clock = Clock::manual(at(22, 12, 0));
    let app = spawn_app_with_clock(clock).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let device = DeviceId(id);
    let import = "1-1:1.29.0";
    let export = "1-1:2.29.0";
    let gap = Quality::GAP.with(Quality::CLOCK_UNCERTAIN);
    let stored = vec![
        // Two days back: outside the default window (the 24 h before 12:00 on the 22nd).
        interval(import, at(20, 8, 0), 9.5, Quality::GOOD),
        interval(import, at(22, 8, 0), 1.25, Quality::GOOD),
        interval(export, at(22, 8, 0), 0.5, Quality::GOOD),
        interval(import, at(22, 8, 30), 0.75, gap),
        interval(export, at(22, 8, 30), 0.0, Quality::GOOD),
        interval(import, at(22, 9, 0), 1.5, Quality::GOOD),
    ];
    assert_eq!(
        insert_meter_intervals(&app.pool, device, &stored, chrono::Utc::now())
            .await
            .unwrap(),
        6
    );
    // A correction of the 08:30 import interval: version 2 replaces it, flags
    // and all (the meter's gap and clock_uncertain are not shown).
    let corrected = interval(import, at(22, 8, 30), 2.0, Quality::EDITED);
    let version = insert_interval_version(
        &app.pool,
        device,
        &corrected,
        IntervalSource::Edited,
        "alice",
        "meter swap",
    )
    .await
    .unwrap();
    assert_eq!(version, Some(2));

    let path = format!("/api/v1/devices/{id}/load-profile");
    let (status, body) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = |start: &str, obis: &str, value: f64, flags: serde_json::Value, source: &str, version: i32| {
        // The meter's own status of each interval, as stored ("00").
        json!({"start": start, "obis": obis, "value": value, "unit": "kWh", "flags": flags,
               "source": source, "version": version, "meter_status": "00"})
    };
    let day = json!({"interval_minutes": 30, "intervals": [
        row("2026-11-22T08:00:00Z", import, 1.25, json!([]), "meter", 1),
        row("2026-11-22T08:00:00Z", export, 0.5, json!([]), "meter", 1),
        row("2026-11-22T08:30:00Z", import, 2.0, json!(["edited"]), "edited", 2),
        row("2026-11-22T08:30:00Z", export, 0.0, json!([]), "meter", 1),
        row("2026-11-22T09:00:00Z", import, 1.5, json!([]), "meter", 1),
    ]});
    assert_eq!(body, day);

    // One channel, a window that ends before 09:00 and reaches back to the 20th.
    let (status, body) = app
        .request(
            "GET",
            &format!("{path}?obis={import}&from=2026-11-20T00:00:00Z&to=2026-11-22T09:00:00%2B00:00"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"interval_minutes": 30, "intervals": [
            row("2026-11-20T08:00:00Z", import, 9.5, json!([]), "meter", 1),
            row("2026-11-22T08:00:00Z", import, 1.25, json!([]), "meter", 1),
            row("2026-11-22T08:30:00Z", import, 2.0, json!(["edited"]), "edited", 2),
        ]})
    );

    // An empty window falls back to the device's configured length (15 min
    // by default).
    let (status, body) = app
        .request(
            "GET",
            &format!("{path}?from=2026-11-21T00:00:00Z&to=2026-11-21T06:00:00Z"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"interval_minutes": 15, "intervals": []}));

    // CSV of the default window.
    let (status, kind, disposition, text) = get_text(&app, &format!("{path}.csv"), &viewer).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(kind, "text/csv; charset=utf-8");
    assert_eq!(
        disposition,
        format!("attachment; filename=\"device-{id}-load-profile.csv\"")
    );
    assert_eq!(
        text,
        "start,obis,value,unit,flags,source,version,meter_status\n\
         2026-11-22T08:00:00Z,1-1:1.29.0,1.25,kWh,,meter,1,00\n\
         2026-11-22T08:00:00Z,1-1:2.29.0,0.5,kWh,,meter,1,00\n\
         2026-11-22T08:30:00Z,1-1:1.29.0,2,kWh,edited,edited,2,00\n\
         2026-11-22T08:30:00Z,1-1:2.29.0,0,kWh,,meter,1,00\n\
         2026-11-22T09:00:00Z,1-1:1.29.0,1.5,kWh,,meter,1,00\n"
    );
    app.stop().await;
}

#[tokio::test]
async fn flags_are_named_and_joined_in_csv() {
    let app = spawn_app_with_clock(Clock::manual(at(22, 12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let flagged = interval(
        "1-1:1.29.0",
        at(22, 8, 30),
        0.75,
        Quality::GAP.with(Quality::CLOCK_UNCERTAIN),
    );
    insert_meter_intervals(&app.pool, DeviceId(id), &[flagged], chrono::Utc::now())
        .await
        .unwrap();
    let (_, body) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/load-profile"),
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(body["intervals"][0]["flags"], json!(["gap", "clock_uncertain"]));
    let (_, _, _, text) = get_text(&app, &format!("/api/v1/devices/{id}/load-profile.csv"), &engineer).await;
    assert_eq!(
        text,
        "start,obis,value,unit,flags,source,version,meter_status\n\
         2026-11-22T08:30:00Z,1-1:1.29.0,0.75,kWh,gap|clock_uncertain,meter,1,00\n"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_parameters_unknown_devices_and_missing_tokens_are_refused() {
    let app = spawn_app_with_clock(Clock::manual(at(22, 12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let path = format!("/api/v1/devices/{id}/load-profile");
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-11-22", "to"),
        ("obis=hello", "obis"),
        ("from=2026-11-22T00:00:00Z&to=2026-11-22T00:00:00Z", "from"),
        ("from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z", "from"),
        ("from=2025-01-01T00:00:00Z&to=2026-11-22T00:00:00Z", "to"),
    ] {
        for suffix in ["", ".csv"] {
            let (status, body) = app
                .request("GET", &format!("{path}{suffix}?{query}"), Some(&viewer), None)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("{field}:")), "{query}: {message}");
        }
    }
    let (status, _) = app
        .request("GET", "/api/v1/devices/999999/load-profile", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .request("GET", "/api/v1/devices/999999/load-profile.csv", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for suffix in ["", ".csv"] {
        let (status, _) = app.request("GET", &format!("{path}{suffix}"), None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    app.stop().await;
}

#[tokio::test]
async fn the_device_page_links_the_csv_of_the_last_day_once_there_are_intervals() {
    let app = spawn_app_with_clock(Clock::manual(at(22, 12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let id = add_unpolled_device(
        &app,
        &engineer,
        "iec62056_tcp",
        json!({"name": "A1000", "profile": "a1000", "iec_address": "1"}),
    )
    .await;
    let link = format!("href=\"/api/v1/devices/{id}/load-profile.csv\"");
    let (_, _, _, page) = get_text(&app, &format!("/devices/{id}"), &engineer).await;
    assert!(page.contains("no interval stored yet"), "{page}");
    assert!(!page.contains(&link));
    // Two days old: still nothing in the last 24 h to link to.
    let old = interval("1-1:1.29.0", at(20, 8, 0), 1.0, Quality::GOOD);
    insert_meter_intervals(&app.pool, DeviceId(id), &[old], chrono::Utc::now())
        .await
        .unwrap();
    let (_, _, _, page) = get_text(&app, &format!("/devices/{id}"), &engineer).await;
    assert!(!page.contains(&link));
    let recent = interval("1-1:1.29.0", at(22, 8, 0), 1.0, Quality::GOOD);
    insert_meter_intervals(&app.pool, DeviceId(id), &[recent], chrono::Utc::now())
        .await
        .unwrap();
    let (status, _, _, page) = get_text(&app, &format!("/devices/{id}"), &engineer).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&link), "{page}");
    app.stop().await;
}

/// End to end: the simulated A1000 is read over TCP and its recorded
/// import energy comes back through the API as the meter kept it (Wh → kWh).
#[tokio::test]
async fn an_a1000_load_profile_read_from_the_meter_is_served() {
    let now = at(22, 12, 0);
    let clock = Clock::manual(now);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::A1000, 7, "12345678", now);
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678",
                        "schedule": {"energy_seconds": 1}}),
    )
    .await;
    // Two hours of the first backfill chunk, which is the newest.
    let from = now - TimeDelta::hours(26);
    let to = from + TimeDelta::hours(2);
    let path = format!(
        "/api/v1/devices/{id}/load-profile?obis=1-1:1.29.0&from={}&to={}",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let read = eventually(WAIT, || async {
        let (_, body) = app.request("GET", &path, Some(&engineer), None).await;
        body["intervals"].as_array().is_some_and(|i| i.len() == 8)
    })
    .await;
    assert!(read, "the load profile was not read");
    let expected: Vec<(DateTime<Utc>, f64)> = meter
        .lock()
        .unwrap()
        .history()
        .intervals(from + TimeDelta::minutes(15), to, now)
        .iter()
        .map(|i| (i.start, i.get(Quantity::ImportActive) as f64 / 1000.0))
        .collect();
    assert_eq!(expected.len(), 8);
    let (_, body) = app.request("GET", &path, Some(&engineer), None).await;
    assert_eq!(body["interval_minutes"], 15);
    for (got, (start, value)) in body["intervals"].as_array().unwrap().iter().zip(&expected) {
        assert_eq!(got["start"], json!(start), "{got}");
        assert!(
            (got["value"].as_f64().unwrap() - value).abs() < 1e-9,
            "{got}: recorded {value}"
        );
        assert_eq!(
            (got["unit"].as_str(), got["source"].as_str(), got["version"].as_i64()),
            (Some("kWh"), Some("meter"), Some(1))
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_th40c_programmed_for_half_hours_of_other_channels_is_stored_as_its_header_says() {
    // The TH40C may record up to 22 channels over 1-120 minutes (TH40C
    // manual §2): this one records active import power, apparent import
    // power and active import energy over 30 minutes. Its profile lists
    // only the first; the header names the others and their units.
    let now = at(22, 12, 0);
    let clock = Clock::manual(now);
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::Th40c, 5, "40001", now);
    let channel = |obis, unit, quantity, average_power| ProfileChannel {
        obis,
        unit,
        quantity,
        average_power,
    };
    meter.lock().unwrap().config.programmed_profile = Some(ProgrammedProfile {
        channels: vec![
            channel("1.5.0", "kW", Quantity::ImportActive, true),
            channel("9.5.0", "kVA", Quantity::ImportApparent, true),
            channel("1.29.0", "kWh", Quantity::ImportActive, false),
        ],
        quarters: 2,
    });
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &engineer,
        &meter,
        &clock,
        json!({"name": "TH40C", "profile": "th40c", "iec_address": "40001", "schedule": {"energy_seconds": 1}}),
    )
    .await;
    let (from, to) = (now - TimeDelta::hours(26), now - TimeDelta::hours(24));
    let read = eventually(WAIT, || async {
        fetch_load_profile(&app, &engineer, id, "1-1:9.5.0", from, to)
            .await
            .len()
            == 4
    })
    .await;
    assert!(read, "the programmed load profile was not read");
    // Quarter hours of the meter's history, two to a half hour: average
    // power is the half hour's Wh × 2 / 1000, energy its Wh / 1000.
    let quarters = meter
        .lock()
        .unwrap()
        .history()
        .intervals(from + TimeDelta::minutes(15), to, now);
    assert_eq!(quarters.len(), 8);
    for (obis, unit, quantity, per_wh) in [
        ("1-1:1.5.0", "kW", Quantity::ImportActive, 2.0 / 1000.0),
        ("1-1:9.5.0", "kVA", Quantity::ImportApparent, 2.0 / 1000.0),
        ("1-1:1.29.0", "kWh", Quantity::ImportActive, 1.0 / 1000.0),
    ] {
        let got = fetch_load_profile(&app, &engineer, id, obis, from, to).await;
        assert_eq!(got.len(), 4, "{obis}: {got:?}");
        for (interval, pair) in got.iter().zip(quarters.chunks(2)) {
            let wh = pair[0].get(quantity) + pair[1].get(quantity);
            assert_eq!(interval["start"], json!(pair[0].start), "{obis}");
            assert_eq!(interval["unit"], unit, "{interval}");
            let want = wh as f64 * per_wh;
            assert!(
                (interval["value"].as_f64().unwrap() - want).abs() < 1e-9,
                "{interval}: want {want}"
            );
        }
    }
    let lengths: Vec<i32> = sqlx::query_scalar(
        "SELECT DISTINCT interval_minutes FROM load_profile_intervals WHERE device_id = $1 ORDER BY 1",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(lengths, vec![30], "every interval as long as the header's period");
    // Data quality counts the half hours the meter records, not the
    // profile's quarter hours.
    let (status, quality) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/data-quality"),
            Some(&engineer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{quality}");
    assert_eq!(quality["interval_minutes"], 30, "{quality}");
    app.stop().await;
}
