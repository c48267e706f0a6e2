//! Billing periods from a meter's own history: the simulated A1000's
//! history sets whose reset time (`0-0:0.1.2*1NN`) its readout carries
//! become periods the API lists, with the reset times and registers the
//! simulated meter holds; a later reset adds a period and an event.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use common::{TestApp, eventually, spawn_app, spawn_app_with_clock};
use ohmnibus::device::reading::Quality;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::metering::billing::{BillingPeriod, BillingRegister, BillingSource};
use ohmnibus::sim::iec62056::{IecKind, IecLine, IecMeter, IecMeterConfig, SharedMeter, spawn_iec_tcp};
use ohmnibus::store::billing::{fetch_billing_periods, insert_billing_periods};
use serde_json::{Value, json};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(60);

async fn add(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, created) = app.request("POST", path, Some(token), Some(body.clone())).await;
    assert_eq!(status.as_u16(), 201, "{body}: {created}");
    created
}

async fn billing_resets(app: &TestApp, device: i64) -> Vec<DateTime<Utc>> {
    sqlx::query_scalar(
        "SELECT started_at FROM events WHERE device_id = $1 AND code = 'billing_reset' ORDER BY started_at",
    )
    .bind(device)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The device's periods once there are at least `want`.
async fn list_until(app: &TestApp, token: &str, device: i64, want: usize) -> Vec<Value> {
    let path = format!("/api/v1/devices/{device}/billing-periods");
    let listed = eventually(WAIT, || async {
        let (_, body) = app.request("GET", &path, Some(token), None).await;
        body["periods"].as_array().is_some_and(|p| p.len() >= want)
    })
    .await;
    let (status, body) = app.request("GET", &path, Some(token), None).await;
    assert!(listed, "fewer than {want} periods: {status} {body}");
    body["periods"].as_array().unwrap().clone()
}

fn reset_times(periods: &[Value]) -> Vec<DateTime<Utc>> {
    periods
        .iter()
        .map(|p| p["reset_at"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn an_a1000s_history_sets_become_billing_periods() {
    let at = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let clock = Clock::manual(at);
    let app = spawn_app_with_clock(clock.clone()).await;
    let token = app.token(Role::Engineer).await;
    let mut config = IecMeterConfig::new(IecKind::A1000, 11);
    config.address = "12345678".into();
    let meter: SharedMeter = Arc::new(Mutex::new(IecMeter::new(config, at)));
    let mut line = IecLine::new(vec![Arc::clone(&meter)], clock.clone());
    line.reaction = Duration::from_millis(5);
    let (_stop, shutdown) = watch::channel(false);
    let (address, _) = spawn_iec_tcp(line, "127.0.0.1:0", shutdown).await.unwrap();
    let bus = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "iec-tcp", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": address.port()}}),
    )
    .await;
    let device = add(
        &app,
        &token,
        "/api/v1/devices",
        json!({"name": "A1000", "bus_id": bus["id"], "profile": "a1000", "iec_address": "12345678",
               "schedule": {"energy_seconds": 1}}),
    )
    .await;
    let id = device["id"].as_i64().unwrap();

    // What the simulated meter holds: its resets, latest first, and the
    // sets whose reset time its readout carries (those become periods).
    let in_readout: Vec<u32> = IecKind::A1000
        .readout_addresses()
        .iter()
        .filter_map(|a| a.strip_prefix("0-0:0.1.2*"))
        .map(|suffix| suffix.parse::<u32>().unwrap() - 100)
        .collect();
    assert!(!in_readout.is_empty(), "the readout carries no reset time");
    let (resets, import_latest) = {
        let mut meter = meter.lock().unwrap();
        (meter.resets(at, 16), meter.register_at("1-1:1.8.0*101", at).unwrap())
    };
    let expected: Vec<DateTime<Utc>> = in_readout.iter().map(|k| resets[*k as usize - 1]).collect();

    let viewer = app.token(Role::Viewer).await;
    let listed = list_until(&app, &viewer, id, expected.len()).await;
    assert_eq!(reset_times(&listed), expected, "{listed:?}");
    let latest = &listed[0];
    assert_eq!(latest["source"], "meter");
    assert_eq!(latest["flags"], json!([]));
    let total = latest["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["obis"] == "1-1:1.8.0")
        .unwrap_or_else(|| panic!("no total import in {latest}"));
    assert_eq!(total["unit"], "kWh");
    assert!(
        (total["value"].as_f64().unwrap() - import_latest).abs() < 1e-6,
        "{total}"
    );

    // The device page shows the newest periods with their totals.
    let (status, page) = app.request("GET", &format!("/devices/{id}"), Some(&viewer), None).await;
    assert_eq!(status.as_u16(), 200);
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(page.contains("<h2>Billing periods</h2>"), "{page}");
    assert!(
        page.contains(&resets[0].format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "{page}"
    );
    assert!(page.contains(&format!("{import_latest:.3} kWh")), "{page}");

    // The first backfill announces only the latest reset.
    let announced = eventually(WAIT, || async { !billing_resets(&app, id).await.is_empty() }).await;
    assert!(announced, "no billing_reset event");
    assert_eq!(billing_resets(&app, id).await, [resets[0]]);

    // Past the meter's next reset: a new period, newest first, the earlier
    // ones kept, and one more event for the new reset.
    let next = meter
        .lock()
        .unwrap()
        .resets(at + TimeDelta::days(32), 2)
        .into_iter()
        .filter(|r| *r > at)
        .min()
        .unwrap();
    clock.advance(next - at + TimeDelta::minutes(1));
    let listed = list_until(&app, &viewer, id, expected.len() + 1).await;
    let mut want = vec![next];
    want.extend(&expected);
    assert_eq!(reset_times(&listed), want);
    let announced = eventually(WAIT, || async { billing_resets(&app, id).await.len() == 2 }).await;
    assert!(announced, "{:?}", billing_resets(&app, id).await);
    assert_eq!(billing_resets(&app, id).await, [resets[0], next]);

    // Unknown device: 404 with the error body.
    let (status, body) = app
        .request("GET", "/api/v1/devices/999999/billing-periods", Some(&viewer), None)
        .await;
    assert_eq!(status.as_u16(), 404);
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn the_same_periods_inserted_twice_are_stored_once() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let bus = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "iec-tcp", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": 9}}),
    )
    .await;
    let device = add(
        &app,
        &token,
        "/api/v1/devices",
        json!({"name": "A1000", "bus_id": bus["id"], "profile": "a1000", "iec_address": "1"}),
    )
    .await;
    let device = DeviceId(device["id"].as_i64().unwrap());
    let period = |month: u32, kwh: f64| BillingPeriod {
        reset_at: Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap(),
        source: BillingSource::Meter,
        reset_count: Some(month as i32),
        registers: vec![BillingRegister {
            obis: "1-1:1.8.0".into(),
            value: kwh,
            unit: "kWh".into(),
            captured_at: None,
        }],
        quality: Quality::GOOD,
    };
    let periods = vec![period(10, 100.0), period(11, 200.0)];
    let first = insert_billing_periods(&app.pool, device, &periods).await.unwrap();
    assert_eq!(first.len(), 2);
    // Again, with a different value for November: nothing new, nothing changed.
    let again = vec![period(10, 100.0), period(11, 999.0)];
    let second = insert_billing_periods(&app.pool, device, &again).await.unwrap();
    assert!(second.is_empty());
    let stored = fetch_billing_periods(&app.pool, device).await.unwrap();
    assert_eq!(stored, vec![period(11, 200.0), period(10, 100.0)]);
    app.stop().await;
}
