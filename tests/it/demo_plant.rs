//! `ohmnibus demo`'s "Plant A": the site in Europe/Rome on the ARERA
//! calendar, a main A1000 over three sub-meters, its balance and a
//! statement, once the poller has backfilled the meters' load profiles.
//! The line is served over TCP rather than the demo's RS485
//! pseudo-terminal, whose 300 Bd sign-ons would make the 40-day backfill
//! last minutes. The remainder is checked against the main meter's own share as the
//! simulator's history gives it, computed here from that history alone.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use ohmnibus::cli::demo_plant::{PLANT_MAIN, PLANT_SUB_METERS, PlantLine, start_plant};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::iec62056::history::{EnergyHistory, INTERVAL_SECONDS, Quantity};
use serde_json::Value;

use crate::support::{ANSWER_TIMEOUT, WAIT, eventually, fetch_load_profile, spawn_app_with_profiles};

/// The latest Tuesday, Wednesday or Thursday before `today` that is no
/// fixed Italian holiday: a day with F1, F2 and F3 hours under the ARERA
/// calendar (Easter Monday is a Monday).
fn working_day(today: NaiveDate) -> NaiveDate {
    let holidays = [
        (1, 1),
        (1, 6),
        (4, 25),
        (5, 1),
        (6, 2),
        (8, 15),
        (11, 1),
        (12, 8),
        (12, 25),
        (12, 26),
    ];
    let mut day = today - Days::new(1);
    while !matches!(day.weekday(), Weekday::Tue | Weekday::Wed | Weekday::Thu)
        || holidays.contains(&(day.month(), day.day()))
    {
        day = day - Days::new(1);
    }
    day
}

/// Net active energy (import − export) of a history's intervals that start
/// in `[from, to)`, in kWh.
fn net_kwh(history: &mut EnergyHistory, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let step = chrono::Duration::seconds(INTERVAL_SECONDS);
    let wh: i64 = history
        .intervals(from + step, to, now)
        .iter()
        .map(|i| i.get(Quantity::ImportActive) - i.get(Quantity::ExportActive))
        .sum();
    wh as f64 / 1000.0
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[tokio::test]
async fn the_demo_plant_balances_its_main_meter_and_bills_it_in_f1_f2_f3() {
    // The A1000's 40 days of backfill in one request per meter rather
    // than twenty: each session's 300 Bd sign-on and turnarounds cost
    // about a second, and nothing here depends on the chunking.
    let mut profiles = ProfileSet::builtin();
    let mut a1000 = (*profiles.get("a1000").unwrap()).clone();
    let settings = a1000.iec62056.as_mut().unwrap().load_profile.as_mut().unwrap();
    settings.chunk_days = settings.backfill_days + 1;
    profiles.insert(a1000);
    let app = spawn_app_with_profiles(ANSWER_TIMEOUT, Clock::System, profiles.clone()).await;
    let viewer = app.token(Role::Viewer).await;
    let (_stop, lines) = shutdown::channel();
    let now = Utc::now();
    let plant = start_plant(
        &app.pool,
        &profiles,
        PlantLine::Tcp,
        Duration::from_millis(5),
        now,
        &lines,
    )
    .await
    .unwrap();

    // The site, its zone and its calendar from the preset.
    let (status, site) = app
        .request("GET", &format!("/api/v1/sites/{}", plant.site_id), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{site}");
    assert_eq!(site["name"], "Plant A");
    assert_eq!(site["time_zone"], "Europe/Rome");
    assert_eq!(site["default_calendar_id"], plant.calendar_id.0);
    let (_, calendar) = app
        .request(
            "GET",
            &format!("/api/v1/tariff-calendars/{}", plant.calendar_id),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(calendar["name"], "it-arera-f123", "{calendar}");
    // The tree: three sub-meters under the main incomer.
    for sub in &plant.sub_meters {
        let device = app.device(&viewer, *sub).await;
        assert_eq!(device["parent_device_id"], plant.main.0, "{device}");
        assert_eq!(device["site_id"], plant.site_id.0, "{device}");
    }

    // A past working day in Rome, once every meter's profile covers it.
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let day = working_day(now.with_timezone(&zone).date_naive());
    let midnight = |d: NaiveDate| {
        zone.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let (from, to) = (midnight(day), midnight(day + Days::new(1)));
    let intervals = ((to - from).num_seconds() / INTERVAL_SECONDS) as usize;
    let devices: Vec<i64> = std::iter::once(plant.main)
        .chain(plant.sub_meters.iter().copied())
        .map(|d| d.0)
        .collect();
    let backfilled = eventually(WAIT, || async {
        for id in &devices {
            let rows = fetch_load_profile(&app, &viewer, *id, "1-1:1.29.0", from, to).await;
            let inside = rows
                .iter()
                .filter(|row| {
                    let start: DateTime<Utc> = row["start"].as_str().unwrap().parse().unwrap();
                    start >= from && start < to
                })
                .count();
            if inside < intervals {
                return false;
            }
        }
        true
    })
    .await;
    assert!(backfilled, "the load profiles of {day} were not backfilled");

    // The simulator's own history, independently: the main meter's own
    // share is its seed's load; each sub-meter is its seed's.
    let mut own = EnergyHistory::new(PLANT_MAIN.seed, zone, now);
    let unmetered = net_kwh(&mut own, from, to, now);
    let children: f64 = PLANT_SUB_METERS
        .iter()
        .map(|meter| net_kwh(&mut EnergyHistory::new(meter.seed, zone, now), from, to, now))
        .sum();
    assert!(unmetered > 0.0, "{unmetered}");

    let path = format!(
        "/api/v1/sites/{}/balance?from={}&to={}",
        plant.site_id,
        stamp(from),
        stamp(to)
    );
    let (status, balance) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance["bands"], serde_json::json!(["F1", "F2", "F3"]), "{balance}");
    let nodes = balance["nodes"].as_array().unwrap();
    let main = nodes.iter().find(|n| n["id"] == plant.main.0).unwrap();
    assert_eq!(main["missing_intervals"], 0, "{main}");
    let total = &main["total"];
    let remainder = total["remainder"].as_f64().unwrap();
    assert!(remainder > 0.0, "{main}");
    assert!((remainder - unmetered).abs() < 0.002, "{remainder} against {unmetered}");
    let children_sum = total["children_sum"].as_f64().unwrap();
    assert!(
        (children_sum - children).abs() < 0.002,
        "{children_sum} against {children}"
    );
    assert!(
        (total["energy"].as_f64().unwrap() - unmetered - children).abs() < 0.002,
        "{main}"
    );
    let virtual_meter = nodes.iter().find(|n| n["id"] == plant.virtual_meter.0).unwrap();
    assert!((virtual_meter["total"]["energy"].as_f64().unwrap() - children).abs() < 0.002);

    // The main meter's statement of that day: F1, F2 and F3 all non-zero,
    // summing to the total.
    let path = format!(
        "/api/v1/devices/{}/statement?from={}&to={}",
        plant.main,
        stamp(from),
        stamp(to)
    );
    let (status, statement) = app.request("GET", &path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{statement}");
    assert_eq!(statement["calendar_id"], plant.calendar_id.0);
    let import = |energy: &Value| {
        energy
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["obis"].as_str().unwrap().ends_with("1.8.0"))
            .map(|e| e["value"].as_f64().unwrap())
            .unwrap()
    };
    let bands: Vec<(String, f64)> = statement["bands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|band| (band["tariff"].as_str().unwrap().to_owned(), import(&band["energy"])))
        .collect();
    let names: Vec<&str> = bands.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["F1", "F2", "F3"]);
    assert!(bands.iter().all(|(_, kwh)| *kwh > 0.0), "{bands:?}");
    let sum: f64 = bands.iter().map(|(_, kwh)| kwh).sum();
    let whole = import(&statement["total"]["energy"]);
    assert!((sum - whole).abs() < 0.002, "{sum} against {whole}");
    // The import over the day is the simulator's: own share plus feeds.
    let import_wh: i64 = [PLANT_MAIN.seed]
        .iter()
        .chain(PLANT_SUB_METERS.iter().map(|m| &m.seed))
        .map(|seed| {
            EnergyHistory::new(*seed, zone, now)
                .intervals(from + chrono::Duration::seconds(INTERVAL_SECONDS), to, now)
                .iter()
                .map(|i| i.get(Quantity::ImportActive))
                .sum::<i64>()
        })
        .sum();
    assert!(
        (whole - import_wh as f64 / 1000.0).abs() < 0.002,
        "{whole} against {import_wh} Wh"
    );

    // A second start of the demo reuses what the first made.
    let again = start_plant(
        &app.pool,
        &profiles,
        PlantLine::Tcp,
        Duration::from_millis(5),
        now,
        &lines,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            again.site_id,
            again.calendar_id,
            again.main,
            again.sub_meters.clone(),
            again.virtual_meter
        ),
        (
            plant.site_id,
            plant.calendar_id,
            plant.main,
            plant.sub_meters.clone(),
            plant.virtual_meter
        )
    );
    app.stop().await;
}
