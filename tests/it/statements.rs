//! Billing statements: a TH40C's March 2026 (Europe/Rome, 743 hours: the
//! clocks go forward on Sunday the 29th) under the Italian F1/F2/F3 bands,
//! from 30-minute intervals that start at :15 and :45 so that every band
//! switch falls inside one; with estimated, corrected, clock-uncertain and
//! missing intervals. Expected values come from a reference written here:
//! each interval's energy spread minute by minute, each minute classified
//! by its own rule for the bands.

use std::collections::BTreeMap;

use crate::support::{TestApp, add_unpolled_th40c, spawn_app_with_clock};
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Europe::Rome;
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::unit::Unit;
use ohmnibus::store::load_profile::insert_meter_intervals;
use serde_json::{Value, json};

/// The period: March 2026 in Rome.
fn period() -> (DateTime<Utc>, DateTime<Utc>) {
    let from = Rome.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
    let to = Rome.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
    (from, to)
}

fn utc(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
}

/// The Italian bands (ARERA deliberation 181/06) by this test's own rule:
/// F1 Monday–Friday 08–19, F2 Monday–Friday 07–08 and 19–23 and Saturday
/// 07–23, F3 the rest and all Sunday. March 2026 has no national holiday.
fn band(at: DateTime<Utc>) -> &'static str {
    let local = at.with_timezone(&Rome);
    let hour = local.hour();
    match local.weekday() {
        Weekday::Sun => "F3",
        Weekday::Sat if (7..23).contains(&hour) => "F2",
        Weekday::Sat => "F3",
        _ => match hour {
            8..=18 => "F1",
            7 | 19..=22 => "F2",
            _ => "F3",
        },
    }
}

/// One stored interval of the test: average kW of import and export.
#[derive(Clone)]
struct Row {
    start: DateTime<Utc>,
    import_kw: f64,
    export_kw: f64,
    quality: Quality,
}

/// 30-minute intervals from 22:45 UTC on 28 February (straddling the
/// period's start) to the one straddling its end, less four: 10 March
/// 12:15, 12:45 and 13:15 UTC and 20 March 20:15 UTC (of which three are
/// estimated, [`estimated`]). Import varies, with one peak per band;
/// export 2 kW on Saturdays 10:15–14:15 UTC.
fn rows() -> Vec<Row> {
    let (_, to) = period();
    let mut rows = Vec::new();
    let mut start = Utc.with_ymd_and_hms(2026, 2, 28, 22, 45, 0).unwrap();
    let mut k: u64 = 0;
    while start < to {
        k += 1;
        let missing = [utc(10, 12, 15), utc(10, 12, 45), utc(10, 13, 15), utc(20, 20, 15)].contains(&start);
        if !missing {
            let mut import_kw = 1.0 + ((k * 37) % 190) as f64 / 10.0;
            if start == utc(3, 10, 15) {
                import_kw = 50.0; // Tuesday 11:15 in Rome: F1
            } else if start == utc(7, 12, 15) {
                import_kw = 40.0; // Saturday 13:15: F2
            } else if start == utc(29, 5, 15) {
                import_kw = 30.0; // Sunday, 07:15 summer time: F3
            }
            let saturday = start.with_timezone(&Rome).weekday() == Weekday::Sat;
            let export_kw = if saturday && (10..14).contains(&start.hour()) {
                2.0
            } else {
                0.0
            };
            let quality = if start == utc(12, 3, 15) {
                Quality::CLOCK_UNCERTAIN
            } else {
                Quality::GOOD
            };
            rows.push(Row {
                start,
                import_kw,
                export_kw,
                quality,
            });
        }
        start += Duration::minutes(30);
    }
    rows
}

/// Estimated intervals (stored as the estimation pass stores them, version
/// 1 with source `estimated`) with their import kW, in slots the meter's
/// rows leave empty; 10 March 13:15 stays missing.
fn estimated() -> [(DateTime<Utc>, f64); 3] {
    [(utc(10, 12, 15), 3.0), (utc(10, 12, 45), 2.5), (utc(20, 20, 15), 4.0)]
}

/// The corrected interval and its new import power.
fn corrected() -> (DateTime<Utc>, f64) {
    (utc(16, 9, 15), 12.5)
}

async fn store(app: &TestApp, id: i64, engineer: &str) -> Vec<Row> {
    let mut rows = rows();
    let interval = |row: &Row, obis: &str, value: f64| Interval {
        obis: obis.parse().unwrap(),
        start: row.start,
        minutes: 30,
        value,
        unit: Unit::KW,
        meter_status: "00".into(),
        quality: row.quality,
    };
    let intervals: Vec<Interval> = rows
        .iter()
        .flat_map(|row| {
            [
                interval(row, "1-1:1.5.0", row.import_kw),
                interval(row, "1-1:2.5.0", row.export_kw),
            ]
        })
        .collect();
    insert_meter_intervals(&app.pool, DeviceId(id), &intervals, chrono::Utc::now())
        .await
        .unwrap();
    sqlx::query("UPDATE devices SET interval_minutes = 30 WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    for (start, kw) in estimated() {
        for (obis, value) in [("1-1:1.5.0", kw), ("1-1:2.5.0", 0.0)] {
            sqlx::query(
                "INSERT INTO load_profile_intervals \
                     (device_id, obis, interval_start, interval_minutes, value, unit, quality, source) \
                 VALUES ($1, $2, $3, 30, $4, 'kW', $5, 'estimated')",
            )
            .bind(id)
            .bind(obis)
            .bind(start)
            .bind(value)
            .bind(Quality::ESTIMATED)
            .execute(&app.pool)
            .await
            .unwrap();
        }
    }
    let (at, kw) = corrected();
    let (status, body) = app
        .request(
            "POST",
            &format!("/api/v1/devices/{id}/load-profile/corrections"),
            Some(engineer),
            Some(json!({"intervals": [{"start": at, "obis": "1-1:1.5.0", "value": kw}], "reason": "meter test"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for row in &mut rows {
        if row.start == at {
            row.import_kw = kw;
        }
    }
    rows
}

/// Every interval the statement should see: the meter's rows (with the
/// correction) and the estimated ones, as (start, import kWh, export kWh).
fn all_intervals(rows: &[Row]) -> Vec<(DateTime<Utc>, f64, f64)> {
    let mut all: Vec<_> = rows
        .iter()
        .map(|row| (row.start, row.import_kw / 2.0, row.export_kw / 2.0))
        .collect();
    for (start, kw) in estimated() {
        all.push((start, kw / 2.0, 0.0));
    }
    all.sort_by_key(|(start, ..)| *start);
    all
}

/// The reference: each interval's energy spread evenly over its 30
/// minutes; per band, (import, export) kWh; and the import kWh of each
/// minute.
struct Reference {
    energy: BTreeMap<&'static str, (f64, f64)>,
    by_minute: BTreeMap<DateTime<Utc>, f64>,
}

fn reference(intervals: &[(DateTime<Utc>, f64, f64)]) -> Reference {
    let (from, to) = period();
    let mut energy: BTreeMap<&'static str, (f64, f64)> = BTreeMap::new();
    let mut by_minute: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    for (start, import, export) in intervals {
        for m in 0..30 {
            let minute = *start + Duration::minutes(m);
            if minute < from || minute >= to {
                continue;
            }
            let entry = energy.entry(band(minute)).or_default();
            entry.0 += import / 30.0;
            entry.1 += export / 30.0;
            *by_minute.entry(minute).or_default() += import / 30.0;
        }
    }
    Reference { energy, by_minute }
}

/// The largest demand (kW) of a window of `cycle` minutes, starting every
/// `step` minutes from the period's start (both divide an hour, so these
/// are the quarter hours, five minutes… of the clock), that lies wholly in
/// `band_name`, with its end; the earliest of equal ones.
fn max_demand(reference: &Reference, band_name: &str, cycle: i64, step: i64) -> (f64, DateTime<Utc>) {
    let (from, to) = period();
    let mut windows = Vec::new();
    let mut start = from;
    while start + Duration::minutes(cycle) <= to {
        let minutes = (0..cycle).map(|m| start + Duration::minutes(m));
        if minutes.clone().all(|minute| band(minute) == band_name) {
            let kwh: f64 = minutes
                .map(|minute| reference.by_minute.get(&minute).copied().unwrap_or(0.0))
                .sum();
            windows.push((start, kwh));
        }
        start += Duration::minutes(step);
    }
    let top = windows.iter().map(|(_, kwh)| *kwh).fold(f64::MIN, f64::max);
    let (start, kwh) = windows.iter().find(|(_, kwh)| *kwh >= top - 1e-9).unwrap();
    (kwh * 60.0 / cycle as f64, *start + Duration::minutes(cycle))
}

fn stamp(at: DateTime<Utc>) -> String {
    at.with_timezone(&Rome).to_rfc3339().replace('+', "%2B")
}

fn energy_of(row: &Value, obis: &str) -> f64 {
    row["energy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["obis"] == obis)
        .unwrap_or_else(|| panic!("no {obis} in {row}"))["value"]
        .as_f64()
        .unwrap()
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-6, "{what}: got {got}, want {want}");
}

async fn arera_calendar(app: &TestApp, engineer: &str) -> i64 {
    let (status, body) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(engineer),
            Some(json!({"preset": "it-arera-f123"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_month_with_a_dst_change_splits_exactly_into_bands_and_names_its_doubtful_data() {
    // Two months later: the estimation pass looks 40 days back only, so it
    // leaves the gap of 10 March to this test.
    let app = spawn_app_with_clock(Clock::manual(utc(31, 12, 0) + Duration::days(60))).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let rows = store(&app, id, &engineer).await;
    let calendar = arera_calendar(&app, &engineer).await;
    let (from, to) = period();
    assert_eq!((to - from).num_hours(), 743, "March in Rome loses an hour");

    let query = format!("from={}&to={}&calendar_id={calendar}", stamp(from), stamp(to));
    let (status, body) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/statement?{query}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], id);
    assert_eq!(body["calendar_id"], calendar);
    assert_eq!(body["time_zone"], "Europe/Rome");
    assert_eq!(body["from"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(), from);

    let intervals = all_intervals(&rows);
    let expected = reference(&intervals);
    let bands = body["bands"].as_array().unwrap();
    let names: Vec<&str> = bands.iter().map(|b| b["tariff"].as_str().unwrap()).collect();
    assert_eq!(names, ["F1", "F2", "F3"]);
    let (mut import_total, mut export_total) = (0.0, 0.0);
    for row in bands {
        let name = row["tariff"].as_str().unwrap();
        let (import, export) = expected.energy[name];
        close(energy_of(row, "1-1:1.8.0"), import, &format!("{name} import"));
        close(energy_of(row, "1-1:2.8.0"), export, &format!("{name} export"));
        assert_eq!(row["energy"][0]["unit"], "kWh");
        import_total += import;
        export_total += export;
        let (kw, at) = max_demand(&expected, name, 15, 15);
        let demand = &row["max_demand"];
        close(demand["value"].as_f64().unwrap(), kw, &format!("{name} max demand"));
        assert_eq!(demand["unit"], "kW");
        assert_eq!(
            demand["at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(),
            at,
            "{name}"
        );
    }
    // The peaks laid in each band are the maxima.
    assert_eq!(bands[0]["max_demand"]["value"].as_f64().unwrap(), 50.0);
    assert_eq!(bands[1]["max_demand"]["value"].as_f64().unwrap(), 40.0);
    assert_eq!(bands[2]["max_demand"]["value"].as_f64().unwrap(), 30.0);
    close(energy_of(&body["total"], "1-1:1.8.0"), import_total, "total import");
    close(energy_of(&body["total"], "1-1:2.8.0"), export_total, "total export");
    // The bands sum exactly to the total (exact decimals of integer sums).
    let summed: f64 = bands.iter().map(|b| energy_of(b, "1-1:1.8.0")).sum();
    close(summed, energy_of(&body["total"], "1-1:1.8.0"), "bands against total");

    // E43/E44 balance over F1 and F2.
    let balance = &body["balance"];
    assert_eq!(balance["bands"], json!(["F1", "F2"]));
    let (f1, f2) = (expected.energy["F1"], expected.energy["F2"]);
    close(
        balance["active"]["value"].as_f64().unwrap(),
        f1.0 - f1.1 + f2.0 - f2.1,
        "balance",
    );
    assert_eq!(balance["reactive"], Value::Null);

    // Quality: intervals starting in the period, counted once over both channels.
    let starting = intervals.iter().filter(|(s, ..)| *s >= from && *s < to).count() as u64;
    let quality = &body["quality"];
    assert_eq!(quality["estimated"], 3);
    assert_eq!(quality["actual"].as_u64().unwrap(), starting - 3);
    // 10 March 13:15–13:45 UTC: one 30-minute interval.
    assert_eq!(quality["missing"], 1);
    assert_eq!(quality["clock_uncertain"], 1);
    let flagged: Vec<(String, Vec<String>)> = quality["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let flags = f["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned());
            (f["start"].as_str().unwrap().to_owned(), flags.collect())
        })
        .collect();
    let named = |at: DateTime<Utc>, flag: &str| {
        flagged
            .iter()
            .any(|(start, flags)| start.parse::<DateTime<Utc>>().unwrap() == at && flags.iter().any(|f| f == flag))
    };
    for (start, _) in estimated() {
        assert!(named(start, "estimated"), "{flagged:?}");
    }
    assert!(named(utc(12, 3, 15), "clock_uncertain"), "{flagged:?}");
    assert!(named(corrected().0, "edited"), "{flagged:?}");
    assert_eq!(flagged.len(), 5, "{flagged:?}");

    // Rolling demand: 30-minute windows every 5 minutes; a window across a
    // switch counts for no band.
    let (status, rolling) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/statement?{query}&demand=rolling&cycle_minutes=30&step_minutes=5"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rolling}");
    assert_eq!(
        rolling["demand"],
        json!({"method": "rolling", "cycle_minutes": 30, "step_minutes": 5})
    );
    for row in rolling["bands"].as_array().unwrap() {
        let name = row["tariff"].as_str().unwrap();
        let (kw, at) = max_demand(&expected, name, 30, 5);
        let demand = &row["max_demand"];
        close(
            demand["value"].as_f64().unwrap(),
            kw,
            &format!("{name} rolling max demand"),
        );
        assert_eq!(
            demand["at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(),
            at,
            "{name} rolling"
        );
    }
    assert_eq!(rolling["bands"][0]["max_demand"]["at"], "2026-03-03T10:45:00Z");

    // The same as CSV.
    let (status, csv) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/statement.csv?{query}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_owned();
    assert!(csv.starts_with("section,tariff,obis,value,unit,at\n"), "{csv}");
    let line = csv
        .lines()
        .find(|line| line.starts_with("energy,F1,1-1:1.8.0,"))
        .unwrap_or_else(|| panic!("{csv}"));
    close(
        line.split(',').nth(3).unwrap().parse().unwrap(),
        expected.energy["F1"].0,
        "CSV F1",
    );
    assert!(
        csv.contains("max_demand,F1,1-1:1.6.0,50,kW,2026-03-03T10:30:00Z"),
        "{csv}"
    );
}

#[tokio::test]
async fn a_statement_needs_a_calendar_and_valid_demand_settings() {
    let app = spawn_app_with_clock(Clock::manual(utc(31, 12, 0) + Duration::days(60))).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    let (from, to) = period();
    let path = format!("/api/v1/devices/{id}/statement?from={}&to={}", stamp(from), stamp(to));
    let (status, body) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("calendar_id:"),
        "{body}"
    );
    // The page says the same, on the page.
    let page_path = format!("/devices/{id}/statement?from={}&to={}", stamp(from), stamp(to));
    let (status, page) = app.request("GET", &page_path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("calendar_id: the device"), "{page}");
    let (_, device_page) = app.request("GET", &format!("/devices/{id}"), Some(&viewer), None).await;
    assert!(
        device_page
            .as_str()
            .unwrap()
            .contains(&format!("href=\"/devices/{id}/statement\"")),
        "the device page links to its statement"
    );

    let calendar = arera_calendar(&app, &engineer).await;
    let bad = [
        ("&demand=rolling&cycle_minutes=60&step_minutes=1", "step_minutes:"),
        ("&cycle_minutes=20", "cycle_minutes:"),
        ("&demand=sliding", "demand:"),
    ];
    for (extra, field) in bad {
        let (status, body) = app
            .request(
                "GET",
                &format!("{path}&calendar_id={calendar}{extra}"),
                Some(&viewer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with(field), "{body}");
    }
    let (status, body) = app
        .request(
            "GET",
            &format!(
                "/api/v1/devices/9999/statement?from={}&to={}&calendar_id={calendar}",
                stamp(from),
                stamp(to)
            ),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // An empty month: every band present with zero energy and no demand.
    let (status, body) = app
        .request("GET", &format!("{path}&calendar_id={calendar}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bands"].as_array().unwrap().len(), 3);
    assert_eq!(body["bands"][0]["max_demand"], Value::Null);
    // Every quarter hour of the month is missing (743 h; the device's
    // interval length is the default 15 minutes).
    assert_eq!(body["quality"]["missing"], 743 * 4);

    // The site's default calendar is taken when none is given.
    let (status, body) = app
        .request(
            "PATCH",
            "/api/v1/sites/1",
            Some(&engineer),
            Some(json!({"default_calendar_id": calendar})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["calendar_id"], calendar);
    assert_eq!(body["time_zone"], "Europe/Rome");
    let (status, page) = app.request("GET", &page_path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains("<td>F1</td>") && page.contains("<td>F3</td>"), "{page}");
    assert!(
        page.contains(&format!("href=\"/api/v1/devices/{id}/statement.csv?from=")),
        "{page}"
    );
}

async fn preset_calendar(app: &TestApp, engineer: &str, preset: &str) -> i64 {
    let (status, body) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(engineer),
            Some(json!({"preset": preset})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().unwrap()
}

async fn rome_site(app: &TestApp, engineer: &str, calendar: i64) -> i64 {
    let (status, site) = app
        .request(
            "POST",
            "/api/v1/sites",
            Some(engineer),
            Some(json!({"name": "Plant A", "timezone": "Europe/Rome"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{site}");
    let id = site["id"].as_i64().unwrap();
    let (status, body) = app
        .request(
            "PATCH",
            &format!("/api/v1/sites/{id}"),
            Some(engineer),
            Some(json!({"default_calendar_id": calendar})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

#[tokio::test]
async fn a_device_moved_to_another_site_than_its_bus_bills_under_that_sites_calendar() {
    let app = spawn_app_with_clock(Clock::manual(utc(31, 12, 0) + Duration::days(60))).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let id = add_unpolled_th40c(&app, &engineer).await;
    // The bus's site (1) bills under four rates, the plant under F1/F2/F3.
    let four_rates = preset_calendar(&app, &engineer, "a1000-4-rate").await;
    let (status, body) = app
        .request(
            "PATCH",
            "/api/v1/sites/1",
            Some(&engineer),
            Some(json!({"default_calendar_id": four_rates})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let arera = arera_calendar(&app, &engineer).await;
    let plant = rome_site(&app, &engineer, arera).await;

    let (from, to) = period();
    let path = format!("/api/v1/devices/{id}/statement?from={}&to={}", stamp(from), stamp(to));
    let (status, body) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["calendar_id"], four_rates, "on its bus's site: {body}");

    let (status, body) = app
        .request(
            "PATCH",
            &format!("/api/v1/devices/{id}"),
            Some(&engineer),
            Some(json!({"site_id": plant})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["calendar_id"], arera, "{body}");
    assert_eq!(body["time_zone"], "Europe/Rome");
    let tariffs: Vec<&str> = body["bands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|band| band["tariff"].as_str().unwrap())
        .collect();
    assert_eq!(tariffs, ["F1", "F2", "F3"]);
}

/// A quarter hour of active import energy per interval.
fn quarter(start: DateTime<Utc>, kwh: f64) -> Interval {
    Interval {
        obis: "1-1:1.29.0".parse().unwrap(),
        start,
        minutes: 15,
        value: kwh,
        unit: Unit::KWh,
        meter_status: "00".into(),
        quality: Quality::GOOD,
    }
}

#[tokio::test]
async fn a_virtual_meter_has_a_statement_where_an_interval_a_member_lacks_is_missing() {
    // Wednesday 2 December 2026 in Rome (UTC+1), no holiday: by ARERA's
    // bands 06:45 is F3 (before 07:00), 07:00–07:59 F2, 08:00 on F1.
    let rome = |hour: u32, minute: u32| {
        Rome.with_ymd_and_hms(2026, 12, 2, hour, minute, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    let app = spawn_app_with_clock(Clock::manual(rome(12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let arera = arera_calendar(&app, &engineer).await;
    // The default site has no calendar: the virtual meter's site gives it.
    let plant = rome_site(&app, &engineer, arera).await;
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": 1});
    let bus = app.create_bus(&engineer, "line", transport).await;
    let meter =
        |address: i64| json!({"name": format!("m{address}"), "profile": "th40c", "address": address, "site_id": plant});
    let a = app.create_device(&engineer, bus, meter(1)).await;
    let b = app.create_device(&engineer, bus, meter(2)).await;
    // Neither is polled nor has its gaps estimated while the test reads
    // them (the derivation passes run every 300 ms here): the intervals
    // below are all there is.
    for device in [a, b] {
        let path = format!("/api/v1/devices/{}", device.0);
        let (status, body) = app
            .request("PATCH", &path, Some(&engineer), Some(json!({"enabled": false})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    //  local  band   A     B     A + B
    //  06:45  F3    1.0   0.5    1.5
    //  07:00  F2    2.0   1.0    3.0
    //  07:15  F2    2.0    —     B lacks it: missing, incomplete
    //  07:30  F2    1.5   0.25   1.75
    //  07:45  F2     —     —     missing
    //  08:00  F1    4.0   2.0    6.0
    //  08:15  F1    3.0   1.0    4.0
    // F1 10.0, F2 4.75, F3 1.5 kWh; 16.25 in all. Block maxima of
    // 15 minutes: F1 6.0 kWh → 24 kW, F2 3.0 → 12 kW, F3 1.5 → 6 kW.
    let a_data = [
        quarter(rome(6, 45), 1.0),
        quarter(rome(7, 0), 2.0),
        quarter(rome(7, 15), 2.0),
        quarter(rome(7, 30), 1.5),
        quarter(rome(8, 0), 4.0),
        quarter(rome(8, 15), 3.0),
    ];
    let b_data = [
        quarter(rome(6, 45), 0.5),
        quarter(rome(7, 0), 1.0),
        quarter(rome(7, 30), 0.25),
        quarter(rome(8, 0), 2.0),
        quarter(rome(8, 15), 1.0),
    ];
    insert_meter_intervals(&app.pool, a, &a_data, chrono::Utc::now())
        .await
        .unwrap();
    insert_meter_intervals(&app.pool, b, &b_data, chrono::Utc::now())
        .await
        .unwrap();
    let body = json!({"name": "Both lines", "site_id": plant, "terms": [
        {"device_id": a.0, "sign": 1}, {"device_id": b.0, "sign": 1}]});
    let (status, created) = app
        .request("POST", "/api/v1/virtual-meters", Some(&engineer), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();

    let query = format!("from={}&to={}", stamp(rome(6, 45)), stamp(rome(8, 30)));
    let (status, statement) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/statement?{query}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{statement}");
    assert_eq!(statement["device_id"], id);
    assert_eq!(statement["calendar_id"], arera);
    assert_eq!(statement["time_zone"], "Europe/Rome");
    let bands = statement["bands"].as_array().unwrap();
    let want = [("F1", 10.0, 24.0), ("F2", 4.75, 12.0), ("F3", 1.5, 6.0)];
    for (row, (name, kwh, kw)) in bands.iter().zip(want) {
        assert_eq!(row["tariff"], name);
        close(energy_of(row, "1-1:1.8.0"), kwh, &format!("{name} energy"));
        close(
            row["max_demand"]["value"].as_f64().unwrap(),
            kw,
            &format!("{name} demand"),
        );
    }
    close(energy_of(&statement["total"], "1-1:1.8.0"), 16.25, "total");
    assert_eq!(
        statement["quality"],
        json!({"actual": 5, "estimated": 0, "missing": 2, "pending": 0, "incomplete": 1, "clock_uncertain": 0, "flagged": []}),
    );

    let (status, csv) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/statement.csv?{query}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    let csv = csv.as_str().unwrap();
    assert!(csv.contains("16.25"), "{csv}");
    assert!(csv.contains("4.75"), "{csv}");

    // The statement page takes the virtual meter's id too, under its name.
    let (status, page) = app
        .request("GET", &format!("/devices/{id}/statement?{query}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains("Both lines"), "{page}");
    assert!(page.contains("16.25"), "{page}");
}
