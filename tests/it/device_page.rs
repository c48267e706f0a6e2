//! The device page of a meter read over IEC 62056-21: values named from the
//! profile's `[iec62056]` section, status words decoded into the conditions
//! of A1000 Appendix B, event times as dates, the load profile in a line, and
//! the "Read now" button.

use crate::support::{SILENT_METER_TIMEOUT, WAIT, eventually, spawn_app_with_timeout};
use axum::http::StatusCode;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::device::reading::Reading;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::store::load_profile::insert_meter_intervals;
use ohmnibus::store::readings::insert_readings;
use serde_json::json;

fn reading(obis: &str, value: f64, unit: &str, at: DateTime<Utc>) -> Reading {
    Reading {
        obis: obis.parse().unwrap(),
        value,
        unit: unit.parse().unwrap(),
        read_at: at,
        captured_at: None,
        quality: Quality::GOOD,
    }
}

#[tokio::test]
async fn an_a1000_page_names_its_values_and_decodes_its_status_words() {
    let app = spawn_app_with_timeout(SILENT_METER_TIMEOUT).await;
    let engineer = app.token(Role::Engineer).await;
    // A converter that never answers: the page shows what is stored.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_, bus) = app
        .request(
            "POST",
            "/api/v1/buses",
            Some(&engineer),
            Some(json!({"name": "iec", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": silent.local_addr().unwrap().port()}})),
        )
        .await;
    let (status, device) = app
        .request(
            "POST",
            "/api/v1/devices",
            Some(&engineer),
            Some(json!({"name": "Car park", "bus_id": bus["id"], "profile": "a1000", "iec_address": "10000001"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let id = DeviceId(device["id"].as_i64().unwrap());

    let at = Utc::now().duration_trunc(TimeDelta::minutes(15)).unwrap();
    let mut demand = reading("1-1:1.6.0", 42.5, "kW", at);
    demand.captured_at = Some("2026-11-03T08:45:00Z".parse().unwrap());
    let readings = vec![
        reading("1-1:1.8.0", 1234.5, "kWh", at),
        reading("1-1:1.8.2", 234.5, "kWh", at),
        reading("1-1:1.8.0*101", 1000.25, "kWh", at),
        demand,
        // ERR2 = 0100 0000: bit 6, low battery; ERR1 = 0011 0000: bits 4
        // and 5, current and energy reversal (A1000 manual, App. B).
        reading("0-0:F.F.0", 64.0, "", at),
        reading("0-0:F.F.1", 48.0, "", at),
        reading("0-0:C.7.0", 3.0, "", at),
        // 1 700 000 000 s after the epoch is 2023-11-14 22:13:20 UTC.
        reading("0-0:C.51.0", 1_700_000_000.0, "timestamp", at),
    ];
    let batch: Vec<_> = readings.into_iter().map(|r| (id, r)).collect();
    insert_readings(&app.pool, &batch, chrono::Utc::now()).await.unwrap();
    // Four quarter hours of one channel, the newest ending now.
    let intervals: Vec<_> = (1..=4)
        .map(|k| Interval {
            obis: "1-1:1.29.0".parse().unwrap(),
            start: at - TimeDelta::minutes(15 * k),
            minutes: 15,
            value: 0.25,
            unit: "kWh".parse().unwrap(),
            meter_status: "00".into(),
            quality: Quality::GOOD,
        })
        .collect();
    insert_meter_intervals(&app.pool, id, &intervals, chrono::Utc::now())
        .await
        .unwrap();

    let path = format!("/devices/{}", id.0);
    let (status, page) = app.request("GET", &path, Some(&engineer), None).await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap().to_owned();
    for expected in [
        "IEC device address",
        "10000001",
        "iec62056_tcp",
        // Status words: the set bits by name, with the word as the meter writes it.
        "ERR2 (0-0:F.F.0, error)",
        "01000000",
        "low_battery",
        "ERR1 (0-0:F.F.1, warning)",
        "current_reversal, energy_reversal",
        // Values named from the profile, billing sets said which.
        "Active import energy",
        "1234.500 kWh",
        "234.500 kWh",
        "Active import energy, total, billing set *101 (last period)",
        "1000.250 kWh",
        "Active import maximum demand",
        "42.500 kW",
        "2026-11-03 08:45",
        "Power downs",
        "Last power down start",
        "2023-11-14 22:13 UTC",
        "Billing history",
        "4 intervals in the last 24 h",
    ] {
        assert!(page.contains(expected), "{expected:?} missing from the page:\n{page}");
    }
    let newest = (at - TimeDelta::minutes(15)).format("%Y-%m-%d %H:%M UTC").to_string();
    assert!(page.contains(&format!("newest interval {newest}")), "{page}");
    // Exactly the set bits are reported; the others are only listed as watched.
    assert!(page.contains(">low_battery</td>"), "{page}");
    assert!(page.contains(">current_reversal, energy_reversal</td>"), "{page}");
    assert!(page.contains("watched: over_voltage, under_voltage"), "{page}");

    // "Read now" queues a read of the IEC meter, once the bus has its
    // worker, and the page shows its progress.
    let polled = eventually(WAIT, || async {
        let (_, line) = app
            .request("GET", &format!("/api/v1/buses/{}", bus["id"]), Some(&engineer), None)
            .await;
        !line["statistics"].is_null()
    })
    .await;
    assert!(polled, "the bus has its worker");
    let (status, _) = app
        .request("POST", &format!("{path}/read"), Some(&engineer), None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = app.request("GET", &path, Some(&engineer), None).await;
    assert!(page.as_str().unwrap().contains("Read now by test-engineer"), "{page}");
    app.stop().await;
}
