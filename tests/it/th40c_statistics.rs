//! The TH40C's maxima and minima (TH40C manual, App. G, 0x1115-0x1161 and
//! 0x11C4-0x1210) read over Modbus TCP as the poller reads them: a meter
//! whose statistics registers are laid out by hand here, word by word, and
//! the values and capture times worked out by hand from the manual's
//! scaling (* one decimal, ‡ two, † three) and the site's zone.

use std::collections::HashMap;

use crate::support::{WAIT, eventually, spawn_app};
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::obis::ObisCode;
use ohmnibus::domain::role::Role;
use ohmnibus::protocol::modbus::frame::Exception;
use ohmnibus::shutdown;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::model::MeterModel;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::{Value, json};

/// 0x1115-0x1161: value, then YEAR MONTH DAY HOUR MIN SEC, in Rome time.
#[rustfmt::skip]
const MAXIMA: [u16; 77] = [
    2418, 2026, 11, 19, 14, 5, 30,   // L1 241.8 V
    2409, 26, 11, 18, 9, 0, 0,       // L2 240.9 V (a two-digit year)
    2412, 2026, 11, 17, 21, 45, 10,  // L3 241.2 V
    48_250, 2026, 11, 16, 19, 3, 0,  // L1 48.250 A
    45_001, 2026, 11, 16, 19, 4, 0,  // L2 45.001 A
    51_999, 2026, 11, 12, 19, 5, 0,  // L3 51.999 A
    30_555, 2026, 11, 16, 19, 3, 0,  // P 30.555 kW
    9_876, 2026, 11, 16, 19, 3, 1,   // Q 9.876 kvar
    31_999, 2026, 11, 16, 19, 3, 2,  // S 31.999 kVA
    999, 2026, 11, 14, 12, 0, 0,     // PF 0.999
    5_012, 2026, 11, 2, 3, 30, 0,    // 50.12 Hz
];

/// 0x11C4-0x1210, the same layout.
#[rustfmt::skip]
const MINIMA: [u16; 77] = [
    2201, 2026, 11, 10, 7, 15, 0,    // L1 220.1 V
    2199, 2026, 11, 10, 7, 15, 1,    // L2 219.9 V
    2210, 2026, 11, 10, 7, 15, 2,    // L3 221.0 V
    120, 2026, 11, 11, 3, 0, 0,      // L1 0.120 A
    95, 2026, 11, 11, 3, 0, 1,       // L2 0.095 A
    0, 2026, 11, 13, 12, 30, 0,      // L3 0.000 A
    0xD8F0, 2026, 11, 13, 12, 30, 0, // P -10.000 kW (two's complement of 10000)
    0xF448, 2026, 11, 11, 2, 10, 20, // Q -3.000 kvar
    0xDC01, 2026, 11, 13, 12, 30, 0, // S -9.215 kVA
    0xFC7C, 2026, 11, 13, 12, 30, 5, // PF -0.900
    4_991, 2026, 10, 25, 2, 30, 0,   // 49.91 Hz, in the hour Rome repeats
];

/// A TH40C whose statistics registers answer the words above; the rest of
/// its map is the simulator's.
struct LaidOut {
    meter: Th40cModel,
    words: HashMap<u16, u16>,
}

impl LaidOut {
    fn new(at: DateTime<Utc>) -> LaidOut {
        let words = (0x1115..).zip(MAXIMA).chain((0x11C4..).zip(MINIMA)).collect();
        let zone: Tz = "Europe/Rome".parse().unwrap();
        LaidOut {
            meter: Th40cModel::new(4, zone, at),
            words,
        }
    }
}

impl MeterModel for LaidOut {
    fn advance(&mut self, now: DateTime<Utc>) {
        self.meter.advance(now);
    }

    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        self.meter.value(code, now)
    }

    fn command(&mut self, name: &str, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        MeterModel::command(&mut self.meter, name, values, now)
    }

    fn zone(&self) -> Tz {
        self.meter.zone
    }

    fn read_own(&mut self, start: u16, count: u16, _now: DateTime<Utc>) -> Option<Result<Vec<u16>, Exception>> {
        (start..start + count)
            .map(|address| self.words.get(&address).copied())
            .collect::<Option<Vec<u16>>>()
            .map(Ok)
    }
}

/// Code, value, unit and capture time (UTC: Rome is UTC+1 after 25
/// October 2026 03:00, UTC+2 before).
fn expected() -> Vec<(&'static str, f64, &'static str, DateTime<Utc>)> {
    let utc = |month, day, hour, minute, second| Utc.with_ymd_and_hms(2026, month, day, hour, minute, second).unwrap();
    vec![
        ("1-1:32.6.0", 241.8, "V", utc(11, 19, 13, 5, 30)),
        ("1-1:52.6.0", 240.9, "V", utc(11, 18, 8, 0, 0)),
        ("1-1:72.6.0", 241.2, "V", utc(11, 17, 20, 45, 10)),
        ("1-1:31.6.0", 48.25, "A", utc(11, 16, 18, 3, 0)),
        ("1-1:51.6.0", 45.001, "A", utc(11, 16, 18, 4, 0)),
        ("1-1:71.6.0", 51.999, "A", utc(11, 12, 18, 5, 0)),
        ("1-1:1.16.0", 30.555, "kW", utc(11, 16, 18, 3, 0)),
        ("1-1:3.16.0", 9.876, "kvar", utc(11, 16, 18, 3, 1)),
        ("1-1:9.16.0", 31.999, "kVA", utc(11, 16, 18, 3, 2)),
        ("1-1:13.6.0", 0.999, "", utc(11, 14, 11, 0, 0)),
        ("1-1:14.6.0", 50.12, "Hz", utc(11, 2, 2, 30, 0)),
        ("1-1:32.3.0", 220.1, "V", utc(11, 10, 6, 15, 0)),
        ("1-1:52.3.0", 219.9, "V", utc(11, 10, 6, 15, 1)),
        ("1-1:72.3.0", 221.0, "V", utc(11, 10, 6, 15, 2)),
        ("1-1:31.3.0", 0.12, "A", utc(11, 11, 2, 0, 0)),
        ("1-1:51.3.0", 0.095, "A", utc(11, 11, 2, 0, 1)),
        ("1-1:71.3.0", 0.0, "A", utc(11, 13, 11, 30, 0)),
        ("1-1:1.13.0", -10.0, "kW", utc(11, 13, 11, 30, 0)),
        ("1-1:3.13.0", -3.0, "kvar", utc(11, 11, 1, 10, 20)),
        ("1-1:9.13.0", -9.215, "kVA", utc(11, 13, 11, 30, 0)),
        ("1-1:13.3.0", -0.9, "", utc(11, 13, 11, 30, 5)),
        // 02:30 comes twice that night; the first is still summer time.
        ("1-1:14.3.0", 49.91, "Hz", utc(10, 25, 0, 30, 0)),
    ]
}

#[tokio::test]
async fn maxima_and_minima_are_stored_with_the_time_they_occurred() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 34, 56).unwrap();
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let device = SimDevice::new(profile, 1, LaidOut::new(at), Clock::manual(at));
    let (_stop, stopped) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(vec![device]), "127.0.0.1:0", TcpFraming::ModbusTcp, stopped)
        .await
        .unwrap();

    let (status, site) = app
        .request(
            "POST",
            "/api/v1/sites",
            Some(&token),
            Some(json!({"name": "Rome", "timezone": "Europe/Rome"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{site}");
    // The meter's clock runs in the zone of its bus's site.
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": address.port()});
    let body = json!({"name": "line", "transport": transport, "site_id": site["id"]});
    let (status, bus) = app.request("POST", "/api/v1/buses", Some(&token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{bus}");
    let body = json!({"name": "meter", "profile": "th40c", "address": 1, "bus_id": bus["id"],
                      "schedule": {"realtime_seconds": 1, "energy_seconds": 1}});
    let (status, device) = app.request("POST", "/api/v1/devices", Some(&token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{device}");
    let id = device["id"].as_i64().unwrap();

    let path = format!("/api/v1/devices/{id}/registers");
    let registers = || async {
        let (_, body) = app.request("GET", &path, Some(&token), None).await;
        body["registers"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| (row["obis"].as_str().unwrap_or_default().to_owned(), row.clone()))
                    .collect::<HashMap<String, Value>>()
            })
            .unwrap_or_default()
    };
    let read = eventually(WAIT, || async {
        let stored = registers().await;
        expected().iter().all(|(code, ..)| stored.contains_key(*code))
    })
    .await;
    assert!(read, "the statistics were not read in time");
    let stored = registers().await;
    for (code, value, unit, captured_at) in expected() {
        let row = &stored[code];
        let got = row["value"].as_f64().unwrap();
        assert!((got - value).abs() < 1e-9, "{code}: stored {got}, laid out {value}");
        assert_eq!(row["unit"].as_str().unwrap_or_default(), unit, "{code}");
        let stored_at: DateTime<Utc> = row["captured_at"]
            .as_str()
            .unwrap_or_else(|| panic!("{code} has no capture time"))
            .parse()
            .unwrap();
        assert_eq!(stored_at, captured_at, "{code} capture time");
    }

    // The device page shows them in a section of their own, with the time.
    let (_, page) = app.request("GET", &format!("/devices/{id}"), Some(&token), None).await;
    let page = page.as_str().unwrap();
    let start = page.find("Maxima and minima").expect("the section");
    let section = &page[start..start + page[start..].find("</table>").unwrap()];
    assert!(section.contains("241.8 V"), "L1 voltage maximum");
    assert!(section.contains("2026-11-19 13:05"), "its time");
    assert!(section.contains("-10.000 kW"), "active power minimum");
    assert!(section.contains("49.91 Hz"), "frequency minimum");
    app.stop().await;
}
