//! One command to many devices (`/api/v1/commands/bulk`), against three
//! simulated Countis E43s on one line: each device's command checked and
//! queued on its own, a refusal that holds up no other, a broadcast sent
//! as one frame to unit 0, the progress, and who may send it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::support::{TestApp, WAIT, eventually, spawn_app};
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::protocol::modbus::frame::{ModbusRequest, parse_pdu, parse_rtu};
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::countis::{CountisModel, Firmware, Variant};
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The E43s' unit addresses.
const UNITS: [u8; 3] = [5, 6, 7];
/// E43/E44 manual §8.3: the current tariff, written with FC06.
const TARIFF_REGISTER: u16 = 0x9E21;

type Requests = Arc<Mutex<Vec<(u8, ModbusRequest)>>>;

/// Serves `devices` as RTU over TCP behind a gateway that records every
/// request (unit and request) in the order it reaches the line.
async fn serve_recorded(devices: Vec<SimDevice>) -> (SimBus, SocketAddr, Requests, Trigger) {
    let bus = SimBus::new(devices);
    let (stop, shutdown) = shutdown::channel();
    let (upstream, _) = spawn_tcp(bus.clone(), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let requests: Requests = Arc::default();
    let recorded = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                let (mut buffer, mut chunk) = (Vec::new(), [0u8; 512]);
                while let Ok(n @ 1..) = client_read.read(&mut chunk).await {
                    buffer.extend_from_slice(&chunk[..n]);
                    while let Ok((unit, pdu, len)) = parse_rtu(&buffer) {
                        buffer.drain(..len);
                        recorded.lock().unwrap().push((unit, parse_pdu(&pdu).unwrap()));
                    }
                    if server_write.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
        }
    });
    (bus, address, requests, stop)
}

fn e43(unit: u8, at: chrono::DateTime<Utc>, clock: &Clock) -> SimDevice {
    let profile = ProfileSet::builtin().get("countis-e43").unwrap();
    let model = CountisModel::new(Variant::E43, Firmware::V201, u64::from(unit), Tz::UTC, at);
    SimDevice::new(profile, unit, model, clock.clone())
}

async fn add_line(app: &TestApp, engineer: &str, name: &str, port: u16) -> i64 {
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": port});
    app.create_bus(engineer, name, transport).await.0
}

async fn add_meter(app: &TestApp, engineer: &str, bus: i64, profile: &str, unit: u8) -> i64 {
    let body = json!({"name": format!("{profile}@{unit}"), "profile": profile, "address": unit,
                      "schedule": {"realtime_seconds": 3600, "energy_seconds": 3600}});
    app.create_device(engineer, ohmnibus::domain::ids::BusId(bus), body)
        .await
        .0
}

/// Waits until the bus's worker has read each device once: it has them in
/// its device list (a command for a device it does not poll fails).
async fn polled(app: &TestApp, devices: &[i64]) {
    let read = eventually(WAIT, || async {
        let count: i64 =
            sqlx::query_scalar("SELECT count(DISTINCT device_id) FROM latest_readings WHERE device_id = ANY($1)")
                .bind(devices)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        count == devices.len() as i64
    })
    .await;
    assert!(read, "every device read once");
}

async fn bulk(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.request("POST", "/api/v1/commands/bulk", Some(token), Some(body))
        .await
}

/// Waits until no device's command of the bulk is queued or running.
async fn settled(app: &TestApp, token: &str, id: &Value) -> Value {
    let path = format!("/api/v1/commands/bulk/{id}");
    let done = eventually(WAIT, || async {
        let counts = app.request("GET", &path, Some(token), None).await.1["counts"].clone();
        counts.get("queued").is_none() && counts.get("running").is_none()
    })
    .await;
    let bulk = app.request("GET", &path, Some(token), None).await.1;
    assert!(done, "{bulk}");
    bulk
}

fn tariff(sim: &SimBus, unit: u8, at: chrono::DateTime<Utc>) -> f64 {
    sim.with_device(unit, |device| {
        device.model.advance(at);
        device.model.value(&"0-0:96.14.0".parse().unwrap(), at).unwrap().0
    })
    .unwrap()
}

fn tariff_writes(requests: &Requests) -> Vec<(u8, u16)> {
    requests
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(unit, request)| match request {
            ModbusRequest::WriteSingle { address, value } if *address == TARIFF_REGISTER => Some((*unit, *value)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_bulk_over_a_bus_queues_each_device_and_refuses_one_alone() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap();
    let clock = Clock::manual(at);
    let th40c = ProfileSet::builtin().get("th40c").unwrap();
    let mut devices: Vec<SimDevice> = UNITS.iter().map(|&unit| e43(unit, at, &clock)).collect();
    devices.push(SimDevice::new(th40c, 1, Th40cModel::new(1, Tz::UTC, at), clock.clone()));
    let (sim, line, requests, _stop) = serve_recorded(devices).await;
    let bus = add_line(&app, &engineer, "line", line.port()).await;
    let mut ids = Vec::new();
    for unit in UNITS {
        ids.push(add_meter(&app, &engineer, bus, "countis-e43", unit).await);
    }
    let clock_meter = add_meter(&app, &engineer, bus, "th40c", 1).await;
    polled(&app, &ids).await;

    // A broadcast would reach the TH40C too, which has no tariff register.
    let (status, refused) = bulk(
        &app,
        &engineer,
        json!({"kind": "set_tariff", "tariff": 3, "bus_id": bus,
        "broadcast": true}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        format!(
            "broadcast: bus {bus} (line): th40c@1 (device {clock_meter}) cannot take it: \
             kind: th40c has no set_tariff over Modbus in its profile"
        )
    );

    let (status, started) = bulk(
        &app,
        &engineer,
        json!({"kind": "set_tariff", "tariff": 3, "bus_id": bus}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["kind"], "set_tariff");
    assert_eq!(started["parameters"], json!({"tariff": 3}));
    assert_eq!(started["target"], json!({"bus_id": bus}));
    let devices = started["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 4, "{started}");
    for (result, id) in devices.iter().zip(&ids) {
        assert_eq!(result["device_id"], *id);
        assert!(result["command_id"].is_i64(), "{result}");
        assert_eq!(result["error"], Value::Null);
    }
    assert_eq!(devices[3]["device_id"], clock_meter);
    assert_eq!(devices[3]["command_id"], Value::Null);
    assert_eq!(
        devices[3]["error"],
        json!({"code": "invalid_field", "message": "kind: th40c has no set_tariff over Modbus in its profile"})
    );
    assert_eq!(started["counts"]["refused"], 1);

    let done = settled(&app, &engineer, &started["id"]).await;
    assert_eq!(done["counts"], json!({"succeeded": 3, "refused": 1}), "{done}");
    for unit in UNITS {
        assert_eq!(tariff(&sim, unit, clock.now()), 3.0, "unit {unit}");
    }
    let mut writes = tariff_writes(&requests);
    writes.sort();
    assert_eq!(writes, vec![(5, 3), (6, 3), (7, 3)]);
    // Each command is a job of its own, with its own audit entry, and the
    // bulk has one.
    let command: Value = app
        .request(
            "GET",
            &format!("/api/v1/commands/{}", devices[0]["command_id"]),
            Some(&engineer),
            None,
        )
        .await
        .1;
    assert_eq!(command["state"], "succeeded");
    let audits: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, target FROM audit_log WHERE action IN ('command_bulk', 'command_device') ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(audits.len(), 4, "{audits:?}");
    assert_eq!(
        audits[3],
        ("command_bulk".to_owned(), format!("bulk/{}", started["id"]))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bulk_broadcast_is_one_frame_to_unit_0() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap();
    let clock = Clock::manual(at);
    let (sim, line, requests, _stop) = serve_recorded(UNITS.iter().map(|&unit| e43(unit, at, &clock)).collect()).await;
    let bus = add_line(&app, &engineer, "line", line.port()).await;
    let mut ids = Vec::new();
    for unit in UNITS {
        ids.push(add_meter(&app, &engineer, bus, "countis-e43", unit).await);
    }
    polled(&app, &ids).await;

    // Two of three: the third would be switched too.
    let (status, refused) = bulk(
        &app,
        &engineer,
        json!({"kind": "set_tariff", "tariff": 4,
        "device_ids": [ids[0], ids[1]], "broadcast": true}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        format!(
            "broadcast: a broadcast reaches every device of bus {bus} (line); countis-e43@7 (device {}) is on it \
             but not in the target",
            ids[2]
        )
    );

    let body = json!({"kind": "set_tariff", "tariff": 4, "device_ids": ids, "broadcast": true});
    let (status, started) = bulk(&app, &engineer, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["broadcast"], true);
    let command = started["devices"][0]["command_id"].clone();
    for result in started["devices"].as_array().unwrap() {
        assert_eq!(result["command_id"], command, "one command for the bus: {started}");
    }
    let done = settled(&app, &engineer, &started["id"]).await;
    assert_eq!(done["counts"], json!({"succeeded": 3}), "{done}");
    // One FC06 to unit 0 writing 4 into 0x9E21; none to a unit of its own.
    assert_eq!(tariff_writes(&requests), vec![(0, 4)]);
    for unit in UNITS {
        assert_eq!(tariff(&sim, unit, clock.now()), 4.0, "unit {unit}");
    }
    app.stop().await;
}

#[tokio::test]
async fn only_engineers_send_a_bulk_and_a_repeated_key_queues_nothing() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    // Nothing listens on the line: what is queued fails there, which is
    // not what this test looks at.
    let bus = add_line(&app, &engineer, "line", 9).await;
    let mut ids = Vec::new();
    for unit in UNITS {
        ids.push(add_meter(&app, &engineer, bus, "countis-e43", unit).await);
    }
    let jobs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM jobs WHERE kind = 'command'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let body = json!({"kind": "set_tariff", "tariff": 2, "device_ids": ids});
    for role in [Role::Viewer, Role::Operator] {
        let token = app.token(role).await;
        let (status, answer) = bulk(&app, &token, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {answer}");
    }
    assert_eq!(jobs().await, 0);
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM command_batches")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(batches, 0);

    let (status, refused) = bulk(&app, &engineer, json!({"kind": "set_tariff", "tariff": 2})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["error"]["message"],
        "device_ids: name exactly one of device_ids, site_id and bus_id"
    );
    let (status, refused) = bulk(
        &app,
        &engineer,
        json!({"kind": "set_tariff", "tariff": 5, "bus_id": bus}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(refused["counts"], json!({"refused": 3}), "{refused}");
    assert_eq!(
        refused["devices"][0]["error"]["message"],
        "tariff: countis-e43 takes 1-4, not 5"
    );

    let mut retried = Vec::new();
    for _ in 0..2 {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/api/v1/commands/bulk")
            .header("authorization", format!("Bearer {engineer}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "tariff-2-evening")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        retried.push(serde_json::from_slice::<Value>(&bytes).unwrap());
    }
    assert_eq!(retried[0]["id"], retried[1]["id"]);
    assert_eq!(jobs().await, 3);
    // A viewer may follow it.
    let viewer = app.token(Role::Viewer).await;
    let (status, shown) = app
        .request(
            "GET",
            &format!("/api/v1/commands/bulk/{}", retried[0]["id"]),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let counted: i64 = shown["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(counted, 3, "{shown}");
    assert!(shown["counts"].get("refused").is_none(), "{shown}");
    app.stop().await;
}
