//! What a meter is set to count its energies in: a TH40C programmed for
//! MWh is not read 1000× low, and a COUNTIS E33's register rolls over past
//! 999999.9 kWh (its manual's range) as a rollover, not a reset.

use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::obis::ObisCode;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::protocol::modbus::frame::Exception;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::model::MeterModel;
use ohmnibus::store::profile_derivation::fetch_derived_intervals;
use serde_json::{Value, json};

use crate::support::{
    TestApp, WAIT, add_unpolled_device, eventually, insert_energy_reads, serve_one_modbus_tcp_device, spawn_app,
    spawn_app_with_clock,
};

/// A TH40C programmed for MWh: its total import register shows 12.5 (MWh).
struct InMegawattHours(Th40cModel);

impl MeterModel for InMegawattHours {
    fn advance(&mut self, now: DateTime<Utc>) {
        self.0.advance(now);
    }

    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        if code.to_string() == "1-1:1.8.0" {
            return Some((12.5, None));
        }
        self.0.value(code, now)
    }

    fn command(&mut self, name: &str, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        self.0.command(name, values, now)
    }
}

async fn patch(app: &TestApp, token: &str, device: i64, body: Value) -> (StatusCode, Value) {
    app.request("PATCH", &format!("/api/v1/devices/{device}"), Some(token), Some(body))
        .await
}

async fn latest(app: &TestApp, device: i64, code: &str) -> Option<f64> {
    sqlx::query_scalar("SELECT value FROM latest_readings WHERE device_id = $1 AND obis = $2")
        .bind(device)
        .bind(code)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_th40c_set_to_mwh_is_stored_in_kwh() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let model = InMegawattHours(Th40cModel::new(3, Tz::UTC, Utc::now()));
    let device = SimDevice::new(ProfileSet::builtin().get("th40c").unwrap(), 1, model, Clock::System);
    let schedule = json!({"realtime_seconds": 1, "energy_seconds": 1});
    let (id, _line) = serve_one_modbus_tcp_device(&app, &engineer, device, "th40c", schedule).await;

    // Settings the TH40C cannot have are refused, naming the field.
    let (status, body) = patch(&app, &engineer, id, json!({"energy_unit": "GWh"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("energy_unit"),
        "{body}"
    );
    let (status, body) = patch(&app, &engineer, id, json!({"energy_decimals": 4})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("energy_decimals"),
        "{body}"
    );

    let (status, body) = patch(&app, &engineer, id, json!({"energy_unit": "MWh", "energy_decimals": 3})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["energy_unit"].clone(), body["energy_decimals"].clone()),
        (json!("MWh"), json!(3))
    );
    // 12.5 MWh is 12500 kWh, once the poller follows the change.
    let in_kwh = eventually(WAIT, || async { latest(&app, id, "1-1:1.8.0").await == Some(12_500.0) }).await;
    assert!(in_kwh, "stored {:?}", latest(&app, id, "1-1:1.8.0").await);
    let unit: String =
        sqlx::query_scalar("SELECT unit FROM latest_readings WHERE device_id = $1 AND obis = '1-1:1.8.0'")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(unit, "kWh");
    // The page says what the meter counts in: 8 digits, 3 of them decimals.
    let (_, page) = app
        .request("GET", &format!("/devices/{id}"), Some(&engineer), None)
        .await;
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(
        page.contains("MWh, 3 decimals (as set for this device); registers roll over past 99999.999 MWh"),
        "{page}"
    );

    // Back to the profile's default: the register is taken as kWh again.
    let (status, body) = patch(&app, &engineer, id, json!({"energy_unit": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["energy_unit"].is_null());
    let as_kwh = eventually(WAIT, || async { latest(&app, id, "1-1:1.8.0").await == Some(12.5) }).await;
    assert!(as_kwh);
}

/// A meter type that counts in kWh only takes no MWh.
#[tokio::test]
async fn a_countis_e43_takes_no_energy_display_setting() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let body = json!({"name": "E43", "profile": "countis-e43", "address": 2});
    let id = DeviceId(add_unpolled_device(&app, &engineer, "modbus_tcp", body).await);
    let (status, body) = patch(&app, &engineer, id.0, json!({"energy_unit": "MWh"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("energy_unit"),
        "{body}"
    );
}

/// Laid out by hand, a COUNTIS E33's total import: 999999.0 kWh at 10:00,
/// 999999.5 at 10:15, 0.4 at 10:30, 0.9 at 10:45. Its range ends at
/// 999999.9 kWh (E33 manual), so 10:15–10:30 is a rollover of
/// 1000000 − 999999.5 + 0.4 = 0.9 kWh, not a reset; its u32 register in
/// 10 Wh alone would wrap only at 42949672.96 kWh.
#[tokio::test]
async fn a_countis_e33_rolls_over_past_its_range() {
    let at = |hour: u32, minute: u32| Utc.with_ymd_and_hms(2026, 11, 20, hour, minute, 0).unwrap();
    let app = spawn_app_with_clock(Clock::manual(at(12, 0))).await;
    let engineer = app.token(Role::Engineer).await;
    let body = json!({"name": "E33", "profile": "countis-e33", "address": 3});
    let id = DeviceId(add_unpolled_device(&app, &engineer, "modbus_tcp", body).await);
    let code: ObisCode = "1-1:1.8.0".parse().unwrap();
    let reads = [
        (at(10, 0), 999_999.0),
        (at(10, 15), 999_999.5),
        (at(10, 30), 0.4),
        (at(10, 45), 0.9),
    ];
    insert_energy_reads(&app, id, "1-1:1.8.0", &reads, at(12, 0)).await;

    app.derive_now().await;
    let derived = fetch_derived_intervals(&app.pool, id, &code).await.unwrap();
    let expected = [
        (at(10, 0), 0.5, Quality::GOOD),
        (at(10, 15), 0.9, Quality::ROLLOVER),
        (at(10, 30), 0.5, Quality::GOOD),
    ];
    assert_eq!(derived.len(), expected.len(), "{derived:?}");
    for ((start, minutes, value, quality), (want_start, want_value, want_quality)) in derived.iter().zip(expected) {
        assert_eq!(
            (*start, *minutes, *quality),
            (want_start, 15, want_quality),
            "{derived:?}"
        );
        assert!((value - want_value).abs() < 1e-6, "{derived:?}");
    }
    let events: Vec<String> = sqlx::query_scalar("SELECT code FROM events WHERE device_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(events.contains(&"register_rollover".to_owned()), "{events:?}");
    assert!(!events.contains(&"register_decreased".to_owned()), "{events:?}");
}
