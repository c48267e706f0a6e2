//! Commands to devices, through the API to the simulators over a real
//! socket: what the meter does with them, who may send them, how they are
//! checked, and that they go ahead of every read waiting on the bus.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{SILENT_METER_TIMEOUT, TestApp, WAIT, eventually, spawn_app, spawn_app_with_timeout};
use axum::http::StatusCode;
use chrono::{Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use ohmnibus::device::profile::RegisterGroup;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::{BusId, DeviceId};
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
use tokio::sync::watch;

pub(crate) const COUNTIS_UNIT: u8 = 5;

/// Serves `devices` as RTU over TCP (a transparent gateway).
pub(crate) async fn serve(devices: Vec<SimDevice>) -> (SimBus, SocketAddr, Trigger) {
    let bus = SimBus::new(devices);
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(bus.clone(), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    (bus, address, stop)
}

pub(crate) fn countis(at: chrono::DateTime<Utc>, clock: &Clock) -> SimDevice {
    let profile = ProfileSet::builtin().get("countis-e43").unwrap();
    let model = CountisModel::new(Variant::E43, Firmware::V201, 5, Tz::UTC, at);
    SimDevice::new(profile, COUNTIS_UNIT, model, clock.clone())
}

pub(crate) async fn add_bus(app: &TestApp, engineer: &str, port: u16) -> BusId {
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": port});
    app.create_bus(engineer, "line", transport).await
}

/// A device read once an hour (only its first reads happen during a test)
/// unless `realtime_seconds` says otherwise.
pub(crate) async fn add_device(
    app: &TestApp,
    engineer: &str,
    bus: BusId,
    profile: &str,
    address: u8,
    realtime: u32,
) -> i64 {
    let body = json!({"name": format!("{profile}@{address}"), "profile": profile,
                      "address": address, "schedule": {"realtime_seconds": realtime, "energy_seconds": 3600}});
    app.create_device(engineer, bus, body).await.0
}

pub(crate) async fn command(app: &TestApp, token: &str, device: i64, body: Value) -> (StatusCode, Value) {
    app.request(
        "POST",
        &format!("/api/v1/devices/{device}/commands"),
        Some(token),
        Some(body),
    )
    .await
}

/// Sends a command and waits for its outcome.
pub(crate) async fn run_command(app: &TestApp, token: &str, device: i64, body: Value) -> Value {
    let (status, job) = command(app, token, device, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    finished(app, token, &format!("/api/v1/commands/{}", job["id"])).await
}

pub(crate) async fn finished(app: &TestApp, token: &str, path: &str) -> Value {
    let ended = eventually(WAIT, || async {
        let state = app.request("GET", path, Some(token), None).await.1["state"].clone();
        state == "succeeded" || state == "failed"
    })
    .await;
    let job = app.request("GET", path, Some(token), None).await.1;
    assert!(ended, "{job}");
    job
}

async fn read_now(app: &TestApp, token: &str, device: i64) -> Value {
    let (status, job) = app
        .request("POST", &format!("/api/v1/devices/{device}/read"), Some(token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job = finished(app, token, &format!("/api/v1/reads/{}", job["id"])).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    job
}

/// Values stored for `code`, oldest first.
async fn stored(app: &TestApp, device: i64, code: &str) -> Vec<f64> {
    sqlx::query_scalar("SELECT value FROM readings WHERE device_id = $1 AND obis = $2 ORDER BY read_at")
        .bind(device)
        .bind(code)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// Waits until `code` has been stored `count` times; returns the latest.
async fn stored_nth(app: &TestApp, device: i64, code: &str, count: usize) -> f64 {
    assert!(
        eventually(WAIT, || async { stored(app, device, code).await.len() >= count }).await,
        "{code} stored {count} times"
    );
    *stored(app, device, code).await.last().unwrap()
}

fn model_value(bus: &SimBus, unit: u8, code: &str, at: chrono::DateTime<Utc>) -> f64 {
    bus.with_device(unit, |device| {
        device.model.advance(at);
        device.model.value(&code.parse().unwrap(), at).unwrap().0
    })
    .unwrap()
}

#[tokio::test]
async fn a_countis_obeys_tariff_and_reset_commands_and_refusals_are_named() {
    let app = spawn_app_with_timeout(SILENT_METER_TIMEOUT).await;
    let engineer = app.token(Role::Engineer).await;
    // Evening: the simulated site imports (around noon its solar exports).
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap();
    let clock = Clock::manual(at);
    let (sim, line, _stop) = serve(vec![countis(at, &clock)]).await;
    let bus = add_bus(&app, &engineer, line.port()).await;
    let id = add_device(&app, &engineer, bus, "countis-e43", COUNTIS_UNIT, 3600).await;
    let tariffs = ["1-1:1.8.1", "1-1:1.8.2", "1-1:1.8.3", "1-1:1.8.4"];
    let mut before = Vec::new();
    for code in tariffs {
        before.push(stored_nth(&app, id, code, 1).await);
    }

    // Tariff 3 in force: over two hours only its counter grows.
    let job = run_command(&app, &engineer, id, json!({"kind": "set_tariff", "tariff": 3})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "set_tariff");
    assert_eq!(job["parameters"], json!({"tariff": 3}));
    assert_eq!(job["written"][0]["register"], 0x9E21);
    assert_eq!(job["written"][0]["values"], json!([3]));
    assert_eq!(job["requested_by"], "test-engineer");
    assert_eq!(model_value(&sim, COUNTIS_UNIT, "0-0:96.14.0", clock.now()), 3.0);
    clock.advance(chrono::Duration::hours(2));
    read_now(&app, &engineer, id).await;
    for (index, code) in tariffs.iter().enumerate() {
        let after = stored_nth(&app, id, code, 2).await;
        let meter = model_value(&sim, COUNTIS_UNIT, code, clock.now());
        assert!((after - meter).abs() <= 0.01, "{code}: stored {after}, meter {meter}");
        if index == 2 {
            assert!(after > before[index] + 1.0, "{code} grew: {} -> {after}", before[index]);
        } else {
            assert_eq!(after, before[index], "{code} stood still");
        }
    }

    // Resetting partial Ea+ (bit 0x01 of register 0xE222, a raw write:
    // no kind resets one partial counter) zeroes it on the meter and in
    // what is read next.
    let partial = "1-1:129.8.0";
    assert!(model_value(&sim, COUNTIS_UNIT, partial, clock.now()) > 0.0);
    let raw = json!({"kind": "write_registers", "register": 0xE222, "values": [1]});
    let job = run_command(&app, &engineer, id, raw).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(model_value(&sim, COUNTIS_UNIT, partial, clock.now()), 0.0);
    assert!(
        model_value(&sim, COUNTIS_UNIT, "1-1:131.8.0", clock.now()) > 0.0,
        "partial Er+ kept"
    );
    read_now(&app, &engineer, id).await;
    assert_eq!(stored_nth(&app, id, partial, 3).await, 0.0);

    // A value the meter refuses: the Modbus exception, named.
    let job = run_command(
        &app,
        &engineer,
        id,
        json!({"kind": "write_registers", "register": 0xE001, "values": [2]}),
    )
    .await;
    assert_eq!(job["state"], "failed");
    assert_eq!(job["error"]["code"], "device");
    assert_eq!(
        job["error"]["message"],
        "device answered Modbus exception 03 (Illegal data value)"
    );

    // A broadcast: every device acts, none answers.
    let body = json!({"kind": "set_tariff", "tariff": 2, "broadcast": true});
    let job = run_command(&app, &engineer, id, body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["outcome"], "sent to all devices (no answer expected)");
    assert_eq!(model_value(&sim, COUNTIS_UNIT, "0-0:96.14.0", clock.now()), 2.0);

    // A device that is not there: no answer.
    let absent = add_device(&app, &engineer, bus, "countis-e43", 9, 3600).await;
    assert!(
        eventually(WAIT, || async {
            let device = app.device(&engineer, DeviceId(absent)).await;
            !device["status"]["last_error"].is_null()
        })
        .await,
        "the worker polls the absent device"
    );
    let job = run_command(&app, &engineer, absent, json!({"kind": "set_tariff", "tariff": 1})).await;
    assert_eq!(job["state"], "failed");
    // The tariff register is read before the write (to verify it): that
    // read gets no answer, so nothing is written.
    assert_eq!(
        job["error"],
        json!({"code": "device", "message": "countis-e43@9: reading set_tariff before the write: no answer; nothing was written"})
    );

    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'command_device'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(audited, 5);
    // Each command's end is audited too: who asked, the state, what was
    // written and why it failed.
    let results: Vec<(String, Value)> =
        sqlx::query_as("SELECT actor, detail FROM audit_log WHERE action = 'command_device.result' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let states: Vec<&str> = results
        .iter()
        .map(|(_, detail)| detail["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["succeeded", "succeeded", "failed", "succeeded", "failed"]);
    assert!(results.iter().all(|(actor, _)| actor == "test-engineer"));
    assert_eq!(results[0].1["command"], json!({"kind": "set_tariff", "tariff": 3}));
    assert_eq!(results[0].1["written"][0]["values"], json!([3]));
    assert_eq!(results[2].1["error"]["code"], "device");
    app.stop().await;
}

#[tokio::test]
async fn a_th40c_takes_a_new_address_and_the_time_of_its_site() {
    let app = spawn_app_with_timeout(SILENT_METER_TIMEOUT).await;
    let engineer = app.token(Role::Engineer).await;
    // The meter keeps local time in Rome (UTC+1 in November): a clock set in
    // UTC would be an hour off, which the meter refuses (App. E: at most 5 minutes).
    sqlx::query("UPDATE sites SET time_zone = 'Europe/Rome'")
        .execute(&app.pool)
        .await
        .unwrap();
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let model = Th40cModel::new(1, Tz::Europe__Rome, Utc::now());
    let (sim, line, _stop) = serve(vec![SimDevice::new(profile, 1, model, Clock::System)]).await;
    let bus = add_bus(&app, &engineer, line.port()).await;
    let id = add_device(&app, &engineer, bus, "th40c", 1, 3600).await;
    stored_nth(&app, id, "1-0:0.9.2", 1).await;

    let job = run_command(&app, &engineer, id, json!({"kind": "set_clock"})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["written"][0]["register"], 0x7000);
    assert_eq!(job["written"][0]["function"], 16);
    let words: Vec<u16> = serde_json::from_value(job["written"][0]["values"].clone()).unwrap();
    let bytes: Vec<u32> = words.iter().flat_map(|w| w.to_be_bytes()).map(u32::from).collect();
    let sent = Tz::Europe__Rome
        .with_ymd_and_hms(2000 + bytes[0] as i32, bytes[1], bytes[2], bytes[3], bytes[4], bytes[5])
        .unwrap();
    let now = Utc::now().with_timezone(&Tz::Europe__Rome);
    assert!((now - sent).num_seconds().abs() < 60, "sent {sent}, now {now}");
    assert_eq!((sent.year(), sent.hour()), (now.year(), now.hour()));
    // App. E: once a day. The head-end knows the clock was set today and
    // refuses a second set itself (the meter would answer exception 01).
    let job = run_command(&app, &engineer, id, json!({"kind": "set_clock"})).await;
    assert_eq!(job["error"]["code"], "clock_set_today", "{job}");
    assert!(job["written"].as_array().unwrap().is_empty(), "{job}");

    let (status, refused) = command(&app, &engineer, id, json!({"kind": "set_address", "address": 248})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["error"]["message"], "address: th40c accepts addresses 1-247");
    let job = run_command(&app, &engineer, id, json!({"kind": "set_address", "address": 7})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(sim.units(), vec![7], "the simulator answers at the new address");
    let device = app.device(&engineer, DeviceId(id)).await;
    assert_eq!(device["address"], 7);
    let read = read_now(&app, &engineer, id).await;
    assert_eq!(read["readings"], 36 + 172, "read at the new address: {read}");
    app.stop().await;
}

#[tokio::test]
async fn only_engineers_command_and_mistakes_name_the_field() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let operator = app.token(Role::Operator).await;
    let viewer = app.token(Role::Viewer).await;
    // Nothing listens: every refusal here comes before the bus.
    let bus = add_bus(&app, &engineer, 1).await;
    let id = add_device(&app, &engineer, bus, "countis-e43", COUNTIS_UNIT, 3600).await;
    let path = format!("/api/v1/devices/{id}/commands");
    let good = json!({"kind": "set_tariff", "tariff": 2});
    for token in [&viewer, &operator] {
        let (status, body) = command(&app, token, id, good.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = app.request_raw("POST", &path, token, "{not json").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "the role is checked before the body");
    }
    let jobs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM jobs WHERE kind = 'command'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(jobs().await, 0);

    let cases = [
        (
            json!({"kind": "set_tarif", "tariff": 2}),
            "kind: \"set_tarif\" is not one of set_clock, set_address, set_tariff, reset_partial, reset_counters, \
             set_ct_ratio, configure_channel, billing_reset, demand_reset, push_tou, start_partial, stop_partial, \
             set_baud_rate, write_registers",
        ),
        (json!({"kind": "set_tariff"}), "tariff: set_tariff needs tariff"),
        (
            json!({"kind": "set_tariff", "tariff": 2, "address": 3}),
            "address: set_tariff takes no address",
        ),
        (
            json!({"kind": "set_tariff", "tariff": 0}),
            "tariff: countis-e43 takes 1-4, not 0",
        ),
        (
            json!({"kind": "set_ct_ratio", "primary_a": 400, "secondary_a": 2}),
            "secondary_a: countis-e43 takes 1 or 5, not 2",
        ),
        (
            json!({"kind": "set_ct_ratio", "primary_a": 0, "secondary_a": 5}),
            "primary_a: countis-e43 takes 1-12000, not 0",
        ),
        (
            json!({"kind": "write_registers", "register": 0xE222, "values": [-1]}),
            "values[0]: must be 0-65535",
        ),
        (
            json!({"kind": "set_ct_ratio", "primary_a": 400, "secondary_a": 5, "broadcast": true}),
            "broadcast: set_ct_ratio of countis-e43 may not be broadcast (set_ct_primary)",
        ),
        (
            json!({"kind": "set_address", "address": COUNTIS_UNIT + 1, "broadcast": true}),
            "broadcast: set_address of countis-e43 may not be broadcast (set_address)",
        ),
        (
            json!({"kind": "set_address", "address": 248}),
            "address: countis-e43 accepts addresses 1-247",
        ),
        (
            json!({"kind": "billing_reset"}),
            "kind: countis-e43 has no billing_reset over Modbus in its profile",
        ),
    ];
    for (body, message) in cases {
        let (status, error) = command(&app, &engineer, id, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(error["error"]["code"], "invalid_field");
        assert_eq!(error["error"]["message"], message, "{body}");
    }
    // Front panel only: refused with the manual's reason.
    let (status, error) = command(&app, &engineer, id, json!({"kind": "start_partial"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("front panel only") && message.contains("10.6.1"),
        "{message}"
    );
    let (status, error) = command(&app, &engineer, id, json!({"kind": "set_tariff", "tarif": 2})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error["error"]["message"].as_str().unwrap().contains("tarif"), "{error}");
    assert_eq!(command(&app, &engineer, 9999, good).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.request("GET", "/api/v1/commands/9999", Some(&viewer), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(jobs().await, 0, "no job for a refused command");

    // A dry run shows the exact frame and sends and queues nothing: unit 5,
    // FC6, register 0x9E21, value 2, CRC 0x6D76 sent low byte first
    // (computed by hand with the Modbus CRC-16, polynomial 0xA001).
    let dry = json!({"kind": "set_tariff", "tariff": 2, "dry_run": true});
    let (status, shown) = command(&app, &engineer, id, dry).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["dry_run"], true);
    assert_eq!(shown["parameters"], json!({"tariff": 2}));
    assert_eq!(shown["frames"].as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown["frames"][0]["hex"], "05069E210002766D");
    assert_eq!(jobs().await, 0, "a dry run queues nothing");

    // The device page offers the form to engineers only, and shows the outcome.
    let page = |token: String| {
        let path = format!("/devices/{id}");
        let app = &app;
        async move {
            app.request("GET", &path, Some(&token), None)
                .await
                .1
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let form = format!("action=\"/devices/{id}/commands\"");
    assert!(!page(operator.clone()).await.contains(&form));
    assert!(page(engineer.clone()).await.contains(&form));
    let polled = eventually(WAIT, || async {
        let (_, line) = app
            .request("GET", &format!("/api/v1/buses/{bus}"), Some(&engineer), None)
            .await;
        !line["statistics"].is_null()
    })
    .await;
    assert!(polled, "the bus has its worker");
    let post = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/devices/{id}/commands"))
        .header("authorization", format!("Bearer {engineer}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("kind=set_tariff&tariff=0x2&confirm=1"))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), post).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(jobs().await, 1);
    // Nothing listens on the bus: the command fails, and the page says why.
    let shown = eventually(WAIT, || async {
        page(engineer.clone())
            .await
            .contains("set_tariff tariff=2 by test-engineer: failed: countis-e43@5: reading set_tariff before the write: cannot open")
    })
    .await;
    assert!(shown, "{}", page(engineer.clone()).await);
    app.stop().await;
}

/// A gateway in front of the simulated line that records every request in
/// the order it reaches the line, and holds back the answer to the first
/// request for `hold` once armed, until released.
struct Recorder {
    requests: Arc<Mutex<Vec<(u8, ModbusRequest)>>>,
    armed: Arc<Mutex<Option<u16>>>,
    held: Arc<Mutex<Option<usize>>>,
    release: watch::Sender<bool>,
}

async fn recording_gateway(upstream: SocketAddr) -> (SocketAddr, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (release, released) = watch::channel(false);
    let recorder = Recorder {
        requests: Arc::default(),
        armed: Arc::default(),
        held: Arc::default(),
        release,
    };
    let (requests, armed, held) = (
        Arc::clone(&recorder.requests),
        Arc::clone(&recorder.armed),
        Arc::clone(&recorder.held),
    );
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream).await.unwrap();
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let (requests, armed, held_in) = (Arc::clone(&requests), Arc::clone(&armed), Arc::clone(&held));
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 512];
                while let Ok(n @ 1..) = client_read.read(&mut chunk).await {
                    buffer.extend_from_slice(&chunk[..n]);
                    while let Ok((unit, pdu, len)) = parse_rtu(&buffer) {
                        buffer.drain(..len);
                        let request = parse_pdu(&pdu).unwrap();
                        let mut list = requests.lock().unwrap();
                        let mut armed = armed.lock().unwrap();
                        if matches!(request, ModbusRequest::ReadHolding { start, .. } if Some(start) == *armed) {
                            *armed = None;
                            *held_in.lock().unwrap() = Some(list.len());
                        }
                        list.push((unit, request));
                    }
                    if server_write.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
            });
            let (held, mut released) = (Arc::clone(&held), released.clone());
            tokio::spawn(async move {
                let mut chunk = [0u8; 512];
                while let Ok(n @ 1..) = server_read.read(&mut chunk).await {
                    if held.lock().unwrap().is_some() {
                        let _ = released.wait_for(|released| *released).await;
                    }
                    if client_write.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, recorder)
}

#[tokio::test]
async fn a_command_goes_ahead_of_a_queued_read_now_and_the_scheduled_read_under_way() {
    // Answers are held on purpose: wait long for them.
    let app = spawn_app_with_timeout(Duration::from_secs(30)).await;
    let engineer = app.token(Role::Engineer).await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
    let clock = Clock::manual(at);
    let (_sim, line, _stop) = serve(vec![countis(at, &clock)]).await;
    let (gateway, recorder) = recording_gateway(line).await;
    let profile = ProfileSet::builtin().get("countis-e43").unwrap();
    let realtime = profile.blocks(RegisterGroup::Realtime);
    let energy = profile.blocks(RegisterGroup::Energy);
    assert!(energy.len() >= 2, "a scheduled energy read takes several requests");
    // Hold the first answer of the first scheduled energy read: the read is under way.
    *recorder.armed.lock().unwrap() = Some(energy[0].start);
    let bus = add_bus(&app, &engineer, gateway.port()).await;
    let id = add_device(&app, &engineer, bus, "countis-e43", COUNTIS_UNIT, 3600).await;
    assert!(
        eventually(WAIT, || async { recorder.held.lock().unwrap().is_some() }).await,
        "a scheduled read started"
    );
    let (status, read) = app
        .request("POST", &format!("/api/v1/devices/{id}/read"), Some(&engineer), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, write) = command(&app, &engineer, id, json!({"kind": "set_tariff", "tariff": 4})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Both jobs wait in the database until the bus's worker claims them.
    let claimed = eventually(Duration::from_secs(10), || async {
        let mut running = true;
        for path in [
            format!("/api/v1/reads/{}", read["id"]),
            format!("/api/v1/commands/{}", write["id"]),
        ] {
            running &= app.request("GET", &path, Some(&engineer), None).await.1["state"] == "running";
        }
        running
    })
    .await;
    assert!(claimed, "the worker claimed the jobs");
    recorder.release.send(true).unwrap();

    let write = finished(&app, &engineer, &format!("/api/v1/commands/{}", write["id"])).await;
    let read = finished(&app, &engineer, &format!("/api/v1/reads/{}", read["id"])).await;
    assert_eq!(
        (write["state"].as_str(), read["state"].as_str()),
        (Some("succeeded"), Some("succeeded"))
    );
    let held = recorder.held.lock().unwrap().unwrap();
    let requests = recorder.requests.lock().unwrap().clone();
    // Right after the held request: the command, before the rest of the
    // scheduled read: the tariff in force read (0xC801), the write, the
    // tariff read back…
    let tariff_read = (
        COUNTIS_UNIT,
        ModbusRequest::ReadHolding {
            start: 0xC801,
            count: 1,
        },
    );
    assert_eq!(
        requests[held + 1..held + 4],
        [
            tariff_read.clone(),
            (
                COUNTIS_UNIT,
                ModbusRequest::WriteSingle {
                    address: 0x9E21,
                    value: 4
                }
            ),
            tariff_read,
        ]
    );
    // …then the read-now, whole, from its first request.
    let expected: Vec<(u8, ModbusRequest)> = realtime
        .iter()
        .chain(&energy)
        .map(|block| {
            (
                COUNTIS_UNIT,
                ModbusRequest::ReadHolding {
                    start: block.start,
                    count: block.count,
                },
            )
        })
        .collect();
    assert_eq!(requests[held + 4..held + 4 + expected.len()], expected[..]);
    let finished_at: chrono::DateTime<Utc> = serde_json::from_value(write["finished_at"].clone()).unwrap();
    let started_at: chrono::DateTime<Utc> = serde_json::from_value(read["started_at"].clone()).unwrap();
    assert!(
        finished_at <= started_at,
        "command {finished_at} before read {started_at}"
    );
    app.stop().await;
}

#[tokio::test]
async fn push_tou_compiles_the_calendar_to_the_meters_tables_or_names_the_limit() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let calendar = |preset: &'static str| {
        let app = &app;
        let engineer = engineer.clone();
        async move {
            let body = json!({"preset": preset, "effective_from": "2020-01-01T00:00:00Z"});
            let (status, created) = app
                .request("POST", "/api/v1/tariff-calendars", Some(&engineer), Some(body))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            created["id"].as_i64().unwrap()
        }
    };
    let italian = calendar("it-arera-f123").await;
    let four_rate = calendar("a1000-4-rate").await;
    // Nothing listens: every answer here comes before the line.
    let transport = json!({"kind": "iec62056_tcp", "host": "127.0.0.1", "port": 1});
    let bus = app.create_bus(&engineer, "iec", transport).await;
    let a1000 = app
        .create_device(
            &engineer,
            bus,
            json!({"name": "a1000", "profile": "a1000", "iec_address": "1"}),
        )
        .await
        .0;
    let refused = |device: i64, body: Value| {
        let app = &app;
        let engineer = engineer.clone();
        async move {
            let (status, error) = command(app, &engineer, device, body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
            error["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    // The Italian bands give Saturday and Sunday different day profiles;
    // the A1000 has one for all weekend days (manual §1.4).
    let message = refused(a1000, json!({"kind": "push_tou", "calendar_id": italian})).await;
    assert!(
        message.starts_with(&format!(
            "calendar_id: tariff calendar {italian} does not fit the a1000 tables: the weekend days take different day profiles"
        )),
        "{message}"
    );
    let message = refused(a1000, json!({"kind": "push_tou", "calendar_id": 999})).await;
    assert_eq!(message, "calendar_id: no tariff calendar 999");
    // A calendar that fits goes on to the meter's programming mode.
    let message = refused(a1000, json!({"kind": "push_tou", "calendar_id": four_rate})).await;
    assert!(message.starts_with("kind: "), "{message}");
    assert!(!message.contains("does not fit"), "{message}");
    // A meter with no TOU tables of its own.
    let modbus = add_bus(&app, &engineer, 1).await;
    let countis = add_device(&app, &engineer, modbus, "countis-e43", COUNTIS_UNIT, 3600).await;
    let message = refused(countis, json!({"kind": "push_tou", "calendar_id": four_rate})).await;
    assert_eq!(
        message,
        "kind: countis-e43 keeps no time-of-use tables this server can program"
    );
    app.stop().await;
}
