//! Every simulated device type, over every transport the head-end speaks:
//! what PostgreSQL holds equals what each simulator served.

use std::collections::HashMap;

use crate::support::{TestApp, WAIT, eventually, eventually_some, spawn_app};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::catalog::{SIMULATED, model_for};
use ohmnibus::sim::device::{Served, SimDevice};
use ohmnibus::sim::server::{TcpFraming, spawn_pty, spawn_tcp};
use serde_json::{Value, json};

/// One device of every simulated type, units 1, 2, 3…, on a frozen clock a
/// day after the simulation began (so counters and demands have moved).
fn fleet() -> (Vec<SimDevice>, Vec<(&'static str, u8, Served)>) {
    let start = Utc.with_ymd_and_hms(2026, 11, 19, 12, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let profiles = ProfileSet::builtin();
    let mut devices = Vec::new();
    let mut expected = Vec::new();
    for (index, name) in SIMULATED.iter().enumerate() {
        let unit = index as u8 + 1;
        let model = model_for(name, u64::from(unit) + 30, Tz::UTC, start).unwrap();
        let device = SimDevice::with_model(profiles.get(name).unwrap(), unit, model, clock.clone());
        expected.push((*name, unit, device.served()));
        devices.push(device);
    }
    clock.advance(chrono::Duration::hours(24));
    (devices, expected)
}

async fn stored(app: &TestApp, token: &str, device: i64) -> HashMap<String, f64> {
    let (_, body) = app
        .request("GET", &format!("/api/v1/devices/{device}/registers"), Some(token), None)
        .await;
    body["registers"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| (r["obis"].as_str().unwrap().to_owned(), r["value"].as_f64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

async fn check_transport(transport: Value, expected: Vec<(&'static str, u8, Served)>) {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let bus = app.create_bus(&token, "mixed", transport).await;
    for (profile, unit, served) in &expected {
        let body = json!({"name": profile, "profile": profile, "address": unit,
                          "schedule": {"realtime_seconds": 2, "energy_seconds": 2}});
        let id = app.create_device(&token, bus, body).await.0;
        // Wait until everything served so far is stored (every group read).
        let complete = eventually(WAIT, || async {
            let stored = stored(&app, &token, id).await;
            let served = served.lock().unwrap().clone();
            // The energy group (energy registers, pulse counters) has been read too.
            let energy = served
                .keys()
                .any(|code| code.contains(".8.") || code.contains(":96.129."));
            energy && served.keys().all(|code| stored.contains_key(code))
        })
        .await;
        assert!(complete, "{profile} was not fully read in time");
        // What was served so far, then what is stored of it: a read served
        // after the check above is stored a moment after it was served.
        let served = served.lock().unwrap().clone();
        let stored = eventually_some(WAIT, || async {
            let stored = stored(&app, &token, id).await;
            served.keys().all(|code| stored.contains_key(code)).then_some(stored)
        })
        .await
        .unwrap_or_else(|| panic!("{profile}: what was served is not all stored"));
        for (code, (value, _)) in &served {
            let got = stored[code];
            // Values cross the wire as IEEE 754 singles or scaled integers.
            assert!(
                (got - value).abs() <= 1e-6 * value.abs().max(1.0),
                "{profile} {code}: stored {got}, served {value}"
            );
        }
        // The status goes through the outbox as the readings do, and may be
        // written in the batch after the last of them.
        let online = eventually(WAIT, || async {
            app.device(&token, DeviceId(id)).await["status"]["state"] == "online"
        })
        .await;
        let device = app.device(&token, DeviceId(id)).await;
        assert!(online, "{profile}: {device}");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_simulator_over_modbus_tcp() {
    let (devices, expected) = fleet();
    let (_stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", TcpFraming::ModbusTcp, shutdown)
        .await
        .unwrap();
    check_transport(
        json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": address.port()}),
        expected,
    )
    .await;
}

#[tokio::test]
async fn every_simulator_over_rtu_over_tcp() {
    let (devices, expected) = fleet();
    let (_stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    check_transport(
        json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": address.port()}),
        expected,
    )
    .await;
}

#[tokio::test]
async fn every_simulator_over_a_pseudo_terminal() {
    let (devices, expected) = fleet();
    let (_stop, shutdown) = shutdown::channel();
    let (path, _) = spawn_pty(SimBus::new(devices), 115_200, shutdown).unwrap();
    let transport = json!({"kind": "serial_rtu", "path": path.display().to_string(), "baud": 115200, "parity": "even", "stop_bits": 1});
    check_transport(transport, expected).await;
}
