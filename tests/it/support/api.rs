//! Typed helpers over the REST API, so a test says what it sets up or
//! fetches and the JSON plumbing stays here. Each asserts the status it
//! expects, naming the answer when it differs.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use ohmnibus::device::reading::Reading;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::{BusId, DeviceId};
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::unit::Unit;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::iec62056::SharedMeter;
use ohmnibus::store::readings::insert_readings;
use serde_json::{Value, json};

use super::app::TestApp;
use super::sim::{quick_iec_line, serve_iec_tcp};
use super::wait::{WAIT, eventually};

impl TestApp {
    /// Adds a bus named `name` on `transport` (the API's transport object).
    pub(crate) async fn create_bus(&self, token: &str, name: &str, transport: Value) -> BusId {
        let body = json!({"name": name, "transport": transport});
        let (status, bus) = self.request("POST", "/api/v1/buses", Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{bus}");
        BusId(bus["id"].as_i64().unwrap())
    }

    /// Adds `device` (the request body without `bus_id`) on `bus`.
    pub(crate) async fn create_device(&self, token: &str, bus: BusId, mut device: Value) -> DeviceId {
        device["bus_id"] = json!(bus.0);
        let (status, created) = self.request("POST", "/api/v1/devices", Some(token), Some(device)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        DeviceId(created["id"].as_i64().unwrap())
    }

    /// The device as `GET /api/v1/devices/{id}` serves it.
    pub(crate) async fn device(&self, token: &str, id: DeviceId) -> Value {
        let (status, device) = self
            .request("GET", &format!("/api/v1/devices/{id}"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{device}");
        device
    }

    /// The device's communication state (`online`, `unreachable`, …).
    pub(crate) async fn device_state(&self, token: &str, id: DeviceId) -> Value {
        self.device(token, id).await["status"]["state"].clone()
    }

    /// The bus as `GET /api/v1/buses/{id}` serves it, statistics included.
    pub(crate) async fn bus(&self, token: &str, id: BusId) -> Value {
        let (status, bus) = self
            .request("GET", &format!("/api/v1/buses/{id}"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{bus}");
        bus
    }

    /// Reads the device on demand and waits until the read is done; returns
    /// the finished job.
    pub(crate) async fn read_now(&self, token: &str, id: DeviceId) -> Value {
        let (status, job) = self
            .request("POST", &format!("/api/v1/devices/{id}/read"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        let job_path = format!("/api/v1/reads/{}", job["id"]);
        let done = eventually(WAIT, || async {
            self.request("GET", &job_path, Some(token), None).await.1["state"] == "succeeded"
        })
        .await;
        let (_, job) = self.request("GET", &job_path, Some(token), None).await;
        assert!(done, "the read at {} did not finish: {job}", self.app.state.clock.now());
        job
    }
}

/// Serves `device` alone on a simulated Modbus TCP line and adds it through
/// the API (bus "b", device "m" at unit 1 with `profile` and `schedule`).
/// Returns the device id and the line's stop switch: the line serves while
/// the switch is kept.
pub(crate) async fn serve_one_modbus_tcp_device(
    app: &TestApp,
    engineer: &str,
    device: ohmnibus::sim::device::SimDevice,
    profile: &str,
    schedule: Value,
) -> (i64, Trigger) {
    use ohmnibus::sim::bus::SimBus;
    use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
    let (stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::ModbusTcp,
        shutdown,
    )
    .await
    .unwrap();
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": line.port()});
    let bus = app.create_bus(engineer, "b", transport).await;
    let body = json!({"name": "m", "profile": profile, "address": 1, "schedule": schedule});
    (app.create_device(engineer, bus, body).await.0, stop)
}

/// Adds a bus of transport `kind` ("modbus_tcp", "iec62056_tcp") named
/// `name` at `port` on 127.0.0.1 through the API; returns its id.
pub(crate) async fn add_bus(app: &TestApp, engineer: &str, name: &str, kind: &str, port: u16) -> Value {
    let transport = json!({"kind": kind, "host": "127.0.0.1", "port": port});
    json!(app.create_bus(engineer, name, transport).await.0)
}

/// Adds `device` (the request body without `bus_id`) on `bus_id` through
/// the API; returns its id.
pub(crate) async fn add_device(app: &TestApp, engineer: &str, bus_id: &Value, device: Value) -> i64 {
    let bus = BusId(bus_id.as_i64().expect("a bus id"));
    app.create_device(engineer, bus, device).await.0
}

/// Adds `device` on a bus of transport `kind` nobody answers on (port 1),
/// so what is stored for it is what the test puts there; returns its id.
pub(crate) async fn add_unpolled_device(app: &TestApp, engineer: &str, kind: &str, device: Value) -> i64 {
    let name = if kind == "modbus_tcp" { "line" } else { "iec" };
    let bus = add_bus(app, engineer, name, kind, 1).await;
    add_device(app, engineer, &bus, device).await
}

/// Stores `reads` (instant, kWh) of `obis` for `device` through the ingest
/// statement at server time `now`: a register laid out by hand.
pub(crate) async fn insert_energy_reads(
    app: &TestApp,
    device: DeviceId,
    obis: &str,
    reads: &[(DateTime<Utc>, f64)],
    now: DateTime<Utc>,
) {
    let batch: Vec<(DeviceId, Reading)> = reads
        .iter()
        .map(|&(read_at, value)| {
            let reading = Reading {
                obis: obis.parse().unwrap(),
                value,
                unit: Unit::KWh,
                read_at,
                captured_at: None,
                quality: Quality::GOOD,
            };
            (device, reading)
        })
        .collect();
    insert_readings(&app.pool, &batch, now).await.unwrap();
}

/// Serves `meter` alone on a quick IEC line over TCP on `clock` and adds it
/// through the API: bus "iec", then `device` (the request body without
/// `bus_id`). Returns the device id and the line's stop switch.
pub(crate) async fn serve_one_iec_tcp_device(
    app: &TestApp,
    engineer: &str,
    meter: &SharedMeter,
    clock: &Clock,
    device: Value,
) -> (i64, Trigger) {
    let (port, stop) = serve_iec_tcp(quick_iec_line(vec![Arc::clone(meter)], clock.clone())).await;
    let bus = add_bus(app, engineer, "iec", "iec62056_tcp", port).await;
    (add_device(app, engineer, &bus, device).await, stop)
}

/// The device's intervals of `obis` in `[from, to)` as the load-profile API
/// serves them (JSON objects, by start).
pub(crate) async fn fetch_load_profile(
    app: &TestApp,
    token: &str,
    id: i64,
    obis: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let stamp = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = format!(
        "/api/v1/devices/{id}/load-profile?obis={obis}&from={}&to={}",
        stamp(from),
        stamp(to)
    );
    let (status, body) = app.request("GET", &path, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["intervals"].as_array().unwrap().clone()
}

/// Reads the device on demand and waits until the read is done.
pub(crate) async fn read_now(app: &TestApp, token: &str, id: i64) {
    app.read_now(token, DeviceId(id)).await;
}

/// A TH40C ("Main", Modbus unit 1) on a bus nobody answers on; returns its id.
pub(crate) async fn add_unpolled_th40c(app: &TestApp, engineer: &str) -> i64 {
    add_unpolled_device(
        app,
        engineer,
        "modbus_tcp",
        json!({"name": "Main", "profile": "th40c", "address": 1}),
    )
    .await
}

/// How many readings of `obis` are stored for device `id`.
pub(crate) async fn count_readings(app: &TestApp, id: i64, obis: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM readings WHERE device_id = $1 AND obis = $2")
        .bind(id)
        .bind(obis)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}
