//! End to end: the poller reads simulated TH40Cs over Modbus TCP, RTU over
//! TCP and a pseudo-terminal, and what PostgreSQL holds equals what the
//! simulators served.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::support::{SILENT_METER_TIMEOUT, TestApp, WAIT, eventually, spawn_app, spawn_app_with_timeout};
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use futures_util::FutureExt;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::device::{Served, SimDevice};
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_pty, spawn_tcp};
use serde_json::{Value, json};

/// A TH40C on a frozen clock, so its values hold still while they are compared.
fn frozen_th40c(unit: u8, seed: u64) -> (SimDevice, Served) {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 34, 56).unwrap();
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let device = SimDevice::new(profile, unit, Th40cModel::new(seed, Tz::UTC, at), Clock::manual(at));
    let served = device.served();
    (device, served)
}

/// Serves simulated devices on a fresh TCP port; they stop when the sender drops.
async fn serve_tcp(devices: Vec<SimDevice>, framing: TcpFraming) -> (std::net::SocketAddr, Trigger) {
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", framing, shutdown)
        .await
        .unwrap();
    (address, stop)
}

/// Poll periods for one device alone on its line: every second.
fn alone() -> Value {
    json!({"realtime_seconds": 1, "energy_seconds": 1})
}

/// Short periods, yet below what two TH40Cs fill on one line: a due history
/// read waits for every due real-time and energy read, so on a saturated
/// line it would never be sent.
fn shared() -> Value {
    json!({"realtime_seconds": 2, "energy_seconds": 5})
}

async fn create(app: &TestApp, token: &str, transport: Value, units: &[u8], schedule: Value) -> Vec<i64> {
    let bus = app.create_bus(token, "bus", transport).await;
    let mut ids = Vec::new();
    for unit in units {
        let body = json!({"name": format!("meter {unit}"), "profile": "th40c", "address": unit, "schedule": schedule});
        ids.push(app.create_device(token, bus, body).await.0);
    }
    ids
}

/// Waits until the device has stored every register group (real-time, energy,
/// history), then checks every stored value against the simulator's record.
async fn assert_stored_equals_served(app: &TestApp, token: &str, device: i64, served: &Served) {
    let path = format!("/api/v1/devices/{device}/registers");
    let complete = eventually(WAIT, || async {
        let (_, body) = app.request("GET", &path, Some(token), None).await;
        let codes: Vec<&str> = body["registers"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x["obis"].as_str()).collect())
            .unwrap_or_default();
        codes.contains(&"1-1:1.8.0") && codes.contains(&"1-1:32.7.0") && codes.contains(&"1-1:4.6.3*2")
    })
    .await;
    assert!(complete, "device {device} was not fully read in time");
    let (_, body) = app.request("GET", &path, Some(token), None).await;
    let stored: HashMap<String, &Value> = body["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["obis"].as_str().unwrap().to_owned(), r))
        .collect();
    let served = served.lock().unwrap().clone();
    // 6 energies × 5 rates × 3 periods, 60 demands, 34 instantaneous codes
    // (V, I, PF: 10; P, Q, S: 12 signed registers split in two), date, time,
    // 11 maxima and 11 minima.
    assert_eq!(served.len(), 90 + 60 + 34 + 2 + 22, "every mapped value was served");
    for (code, (value, captured)) in &served {
        let row = stored
            .get(code)
            .unwrap_or_else(|| panic!("{code} served but not stored"));
        let got = row["value"].as_f64().unwrap();
        // Values cross the wire as IEEE 754 single precision.
        let tolerance = 1e-6 * value.abs().max(1.0);
        assert!((got - value).abs() <= tolerance, "{code}: stored {got}, served {value}");
        if let Some(captured) = captured {
            let stored_at = row["captured_at"]
                .as_str()
                .unwrap_or_else(|| panic!("{code} has no capture time"));
            assert_eq!(
                stored_at.parse::<chrono::DateTime<Utc>>().unwrap(),
                *captured,
                "{code} capture time"
            );
        }
    }
    assert_eq!(stored.len(), served.len(), "nothing stored that was not served");
    let device_body = app.device(token, DeviceId(device)).await;
    assert_eq!(device_body["status"]["state"], "online");
    assert_eq!(device_body["status"]["consecutive_failures"], 0);
}

#[tokio::test]
async fn reads_a_th40c_over_modbus_tcp() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let (device, served) = frozen_th40c(1, 5);
    let (address, _stop) = serve_tcp(vec![device], TcpFraming::ModbusTcp).await;
    let ids = create(
        &app,
        &token,
        json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": address.port()}),
        &[1],
        alone(),
    )
    .await;
    assert_stored_equals_served(&app, &token, ids[0], &served).await;
    // The time series holds the same value the registers endpoint shows.
    let (status, page) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{}/readings?obis=1-1:1.8.0&limit=1", ids[0]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let first = &page["readings"][0];
    let expected = served.lock().unwrap()["1-1:1.8.0"].0;
    assert!((first["value"].as_f64().unwrap() - expected).abs() < 1e-6 * expected);
    app.stop().await;
}

#[tokio::test]
async fn reads_two_th40cs_over_rtu_over_tcp() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let (a, served_a) = frozen_th40c(3, 8);
    let (b, served_b) = frozen_th40c(4, 9);
    let (address, _stop) = serve_tcp(vec![a, b], TcpFraming::RtuOverTcp).await;
    let ids = create(
        &app,
        &token,
        json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": address.port()}),
        &[3, 4],
        shared(),
    )
    .await;
    assert_stored_equals_served(&app, &token, ids[0], &served_a).await;
    assert_stored_equals_served(&app, &token, ids[1], &served_b).await;
    app.stop().await;
}

#[tokio::test]
async fn reads_a_th40c_over_a_pseudo_terminal() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let (device, served) = frozen_th40c(7, 21);
    let (_stop, shutdown) = shutdown::channel();
    // Paced as a 115200-baud line, so the test stays quick.
    let (path, _) = spawn_pty(SimBus::new(vec![device]), 115_200, shutdown).unwrap();
    let transport = json!({"kind": "serial_rtu", "path": path.display().to_string(), "baud": 115200, "parity": "none", "stop_bits": 1});
    let ids = create(&app, &token, transport, &[7], alone()).await;
    assert_stored_equals_served(&app, &token, ids[0], &served).await;
    app.stop().await;
}

#[tokio::test]
async fn a_silent_device_turns_unreachable_without_stopping_its_neighbour() {
    let app = spawn_app_with_timeout(SILENT_METER_TIMEOUT).await;
    let token = app.token(Role::Engineer).await;
    let (device, served) = frozen_th40c(1, 5);
    let (address, _stop) = serve_tcp(vec![device], TcpFraming::RtuOverTcp).await;
    // Unit 2 is configured but nothing answers at that address.
    let ids = create(
        &app,
        &token,
        json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": address.port()}),
        &[1, 2],
        shared(),
    )
    .await;
    let silent = format!("/api/v1/devices/{}", ids[1]);
    let unreachable = eventually(WAIT, || async {
        let (_, body) = app.request("GET", &silent, Some(&token), None).await;
        body["status"]["state"] == "unreachable"
    })
    .await;
    assert!(unreachable, "the silent device is marked unreachable");
    let (_, body) = app.request("GET", &silent, Some(&token), None).await;
    assert!(body["status"]["consecutive_failures"].as_i64().unwrap() >= 3);
    assert!(body["status"]["last_success_at"].is_null());
    assert!(
        body["status"]["last_error"].as_str().unwrap().contains("no answer"),
        "{body}"
    );
    let events: Vec<(String, Option<chrono::DateTime<Utc>>)> =
        sqlx::query_as("SELECT code, cleared_at FROM events WHERE device_id = $1")
            .bind(ids[1])
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(events, vec![("comm_lost".to_owned(), None)]);
    // Its neighbour is read completely all the same.
    assert_stored_equals_served(&app, &token, ids[0], &served).await;

    // The bus statistics tell the two apart.
    let (_, device) = app
        .request("GET", &format!("/api/v1/devices/{}", ids[0]), Some(&token), None)
        .await;
    let (status, bus) = app
        .request(
            "GET",
            &format!("/api/v1/buses/{}", device["bus_id"]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let statistics = &bus["statistics"];
    let per_device = |id: i64| {
        statistics["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_id"] == id)
            .unwrap()
            .clone()
    };
    let (healthy, dead) = (per_device(ids[0]), per_device(ids[1]));
    assert_eq!(healthy["timeouts"], 0);
    assert!(healthy["requests"].as_u64().unwrap() >= 50, "{healthy}");
    assert!(healthy["latency_p95_ms"].as_f64().unwrap() >= healthy["latency_mean_ms"].as_f64().unwrap() * 0.5);
    assert!(dead["timeouts"].as_u64().unwrap() >= 3, "{dead}");
    assert_eq!(
        dead["timeouts"], dead["requests"],
        "every request to the silent device timed out"
    );
    assert!(dead["latency_mean_ms"].is_null(), "no answer, no latency");
    let total = healthy["requests"].as_u64().unwrap() + dead["requests"].as_u64().unwrap();
    assert_eq!(statistics["requests"].as_u64().unwrap(), total);
    let utilisation = statistics["utilisation"].as_f64().unwrap();
    assert!(utilisation > 0.0 && utilisation <= 1.0, "{utilisation}");
    let (_, metrics) = app.request("GET", "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap();
    let line = format!(
        "ohmnibus_modbus_timeouts_total{{bus=\"{}\",bus_name=\"bus\",device=\"{}\",device_name=\"meter 2\"}}",
        device["bus_id"], ids[1]
    );
    assert!(metrics.contains(&line), "{metrics}");
    let (status, page) = app
        .request("GET", &format!("/buses/{}", device["bus_id"]), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(
        page.contains("meter 2 (address 2)") && page.contains("p95 latency"),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn readings_taken_while_the_database_is_away_are_stored_when_it_returns() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let (device, _) = frozen_th40c(1, 5);
    let (address, _stop) = serve_tcp(vec![device], TcpFraming::ModbusTcp).await;
    let ids = create(
        &app,
        &token,
        json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": address.port()}),
        &[1],
        alone(),
    )
    .await;
    let count = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM readings WHERE obis = '1-1:32.7.0'")
            .fetch_one(&pool)
            .await
            .unwrap_or(-1)
    };
    assert!(eventually(WAIT, || count(app.pool.clone()).map(|n| n > 0)).await);

    // Take the database away: refuse new connections and end the open ones.
    let database = app.db.name().to_owned();
    let admin = ohmnibus::store::database::connect(&crate::support::server_url())
        .await
        .unwrap();
    let outage_start = Utc::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
    )))
    .execute(&admin)
    .await
    .unwrap();
    // Keep it away until the poller has read on, so that at least two
    // real-time reads fall within the outage. A cycle is a real-time and an
    // energy read (36 and 172 values), both due every second, real-time
    // first: with one real-time read there are at most two energy reads and
    // a history read (at most a cycle's values), 36 + 2 × 172 + 208 = 588
    // values, fewer than three cycles' worth.
    let queued = || app.app.state.stats.readings_queued.load(Ordering::Relaxed);
    let before = queued();
    let read_on = eventually(WAIT, || async { queued() >= before + 3 * (36 + 172) }).await;
    assert!(read_on, "the poller stopped reading while the database was away");
    let outage_end = Utc::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS true"
    )))
    .execute(&admin)
    .await
    .unwrap();

    // The poller kept reading; what it read during the outage arrives.
    let stored = eventually(WAIT, || async {
        let during: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM readings WHERE obis = '1-1:32.7.0' AND read_at > $1 AND read_at < $2",
        )
        .bind(outage_start)
        .bind(outage_end)
        .fetch_one(&app.pool)
        .await
        .unwrap_or(0);
        during >= 2
    })
    .await;
    assert!(stored, "readings taken during the outage were stored after it");
    let _ = ids;
    app.stop().await;
}
