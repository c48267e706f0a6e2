//! Device faults injected by the simulators (`ohmnibus::sim::fault`,
//! `ohmnibus::sim::iec62056::fault`), each on its own device of a bus that
//! also holds a healthy meter: every fault ends in retries counted in the
//! bus statistics and a `comm_lost` event naming it (or, where the answer
//! still arrives, in readings), never a panic; and the healthy meter
//! keeps its schedule: no read of it starts a whole period late.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{TestApp, eventually, iec_meter, quick_iec_line, serve_iec_tcp, spawn_app_with_deadline};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::protocol::modbus::frame::Exception;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::fault::{self, ModbusFault};
use ohmnibus::sim::iec62056::{IecFault, IecKind};
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_pty, spawn_tcp};
use serde_json::{Value, json};

/// How long a device has to answer one Modbus request here: short, yet
/// long enough for a loaded machine's simulator to answer in time.
const TIMEOUT: Duration = Duration::from_millis(400);
/// The same on the pseudo-terminal, where a request written after a
/// timeout reaches the simulator some 100 ms late (more on a loaded
/// machine): the exchange after a slow answer must still get its own
/// answer in time.
const PTY_TIMEOUT: Duration = Duration::from_millis(600);
/// Longest wait for the faulty devices to be given up on (a bound: they
/// are given up on after three attempts, a few seconds).
const GIVE_UP: Duration = Duration::from_secs(40);
/// The healthy meters' period of real-time values: longer than the
/// timeouts two silent meters cost the line in one round of attempts.
const HEALTHY_PERIOD_S: u64 = 3;
/// Their period of energy registers. Real-time reads go first on a bus,
/// the faulty meters' retries of theirs included (docs/ARCHITECTURE.md,
/// "Priority on a bus"), so while three meters use their attempts an
/// energy read waits some seconds: an energy period shorter than that
/// would be a bus over its capacity, not a fault's doing.
const HEALTHY_ENERGY_PERIOD_S: u64 = 15;
/// The faulty meters' periods: each read of theirs costs the line three
/// attempts, so they are polled as a real line's meters are, not every
/// two seconds, and the test sees their first poll fail.
const FAULTY_PERIOD_S: u64 = 60;

/// TH40Cs at `units` on one line, each with its switch of faults.
fn th40cs(units: &[u8]) -> (Vec<SimDevice>, Vec<fault::FaultSwitch>) {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 34, 56).unwrap();
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    units
        .iter()
        .map(|&unit| {
            let model = Th40cModel::new(u64::from(unit), Tz::UTC, at);
            let device = SimDevice::new(profile.clone(), unit, model, Clock::System);
            let switch = device.fault_switch();
            (device, switch)
        })
        .unzip()
}

/// A bus of `transport` with a TH40C at each of `units` (named "meter
/// UNIT"): those in `healthy` read every [`HEALTHY_PERIOD_S`] (energy
/// every [`HEALTHY_ENERGY_PERIOD_S`]), the others every
/// [`FAULTY_PERIOD_S`]; history registers once an hour. Returns the
/// bus id and the device ids.
async fn th40c_bus(app: &TestApp, token: &str, transport: Value, units: &[u8], healthy: &[u8]) -> (i64, Vec<i64>) {
    let bus = app.create_bus(token, "faults", transport).await;
    let mut ids = Vec::new();
    for unit in units {
        let (realtime, energy) = if healthy.contains(unit) {
            (HEALTHY_PERIOD_S, HEALTHY_ENERGY_PERIOD_S)
        } else {
            (FAULTY_PERIOD_S, FAULTY_PERIOD_S)
        };
        let schedule = json!({"realtime_seconds": realtime, "energy_seconds": energy, "history_seconds": 3600});
        let body = json!({"name": format!("meter {unit}"), "profile": "th40c", "address": unit, "schedule": schedule});
        ids.push(app.create_device(token, bus, body).await.0);
    }
    (bus.0, ids)
}

/// The bus statistics of `device` (`GET /api/v1/buses/{id}`).
async fn device_statistics(app: &TestApp, token: &str, bus: i64, device: i64) -> Value {
    let (_, body) = app
        .request("GET", &format!("/api/v1/buses/{bus}"), Some(token), None)
        .await;
    body["statistics"]["devices"]
        .as_array()
        .and_then(|devices| devices.iter().find(|d| d["device_id"] == device).cloned())
        .unwrap_or(Value::Null)
}

/// The events of `device`: code, message, still open.
async fn events(app: &TestApp, device: i64) -> Vec<(String, String, bool)> {
    sqlx::query_as("SELECT code, message, cleared_at IS NULL FROM events WHERE device_id = $1 ORDER BY id")
        .bind(device)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn state(app: &TestApp, token: &str, device: i64) -> Value {
    app.request("GET", &format!("/api/v1/devices/{device}"), Some(token), None)
        .await
        .1["status"]
        .clone()
}

/// Waits until every one of `devices` is unreachable.
async fn wait_unreachable(app: &TestApp, token: &str, devices: &[i64]) {
    let all = eventually(GIVE_UP, || async {
        for &device in devices {
            if state(app, token, device).await["state"] != "unreachable" {
                return false;
            }
        }
        true
    })
    .await;
    let mut states = Vec::new();
    for &device in devices {
        states.push(state(app, token, device).await);
    }
    assert!(all, "not all given up on: {states:?}");
}

/// What a faulty device must show: unreachable after its retries, the
/// failures counted under `counter` (every one of its requests), one open
/// `comm_lost` whose message contains `says`.
async fn assert_given_up(app: &TestApp, token: &str, bus: i64, device: i64, counter: &str, says: &str) {
    assert_given_up_as(app, token, bus, device, &[counter], says).await;
}

/// [`assert_given_up`] where each failure counts under one of `counters`
/// (the first of them at least once).
async fn assert_given_up_as(app: &TestApp, token: &str, bus: i64, device: i64, counters: &[&str], says: &str) {
    let stats = device_statistics(app, token, bus, device).await;
    let stats = json!({"statistics": stats, "status": state(app, token, device).await});
    let (stats, status) = (&stats["statistics"], &stats["status"]);
    let failed: u64 = counters.iter().map(|c| stats[*c].as_u64().unwrap_or(0)).sum();
    // One read's three attempts at least: the first try and two retries.
    assert!(failed >= 3, "device {device}: {counters:?} {stats} {status}");
    assert!(
        stats[counters[0]].as_u64().unwrap_or(0) >= 1,
        "device {device}: {stats}"
    );
    assert_eq!(
        json!(failed),
        stats["requests"],
        "device {device}: every request failed so: {stats} {status}"
    );
    let events = events(app, device).await;
    let lost: Vec<_> = events.iter().filter(|(code, _, _)| code == "comm_lost").collect();
    assert_eq!(lost.len(), 1, "device {device}: {events:?}");
    assert!(lost[0].2, "still open: {events:?}");
    assert!(
        lost[0].1.contains(says),
        "device {device}: {:?} names {says:?}",
        lost[0].1
    );
}

/// What the healthy meter must show: answered every request, every read
/// started within its period (`read_lateness_max_periods` below 1: no
/// reading missed), and read again and again while its neighbours failed.
async fn assert_kept_its_schedule(app: &TestApp, token: &str, bus: i64, device: i64, at_least: u64) {
    assert_kept_its_schedule_through_a_gateway(app, token, bus, device, at_least, 0).await;
}

/// [`assert_kept_its_schedule`] on a TCP line that is dropped after each of
/// the faulty neighbours' failures: the reconnect is made for whichever
/// request comes next, bounded by the request timeout, and on a loaded
/// machine one may fail, counted as that request's transport error. Up to
/// `reconnects` of those are let pass (never a comm_lost).
async fn assert_kept_its_schedule_through_a_gateway(
    app: &TestApp,
    token: &str,
    bus: i64,
    device: i64,
    at_least: u64,
    reconnects: u64,
) {
    let stats = device_statistics(app, token, bus, device).await;
    let events = events(app, device).await;
    for counter in ["timeouts", "crc_errors", "exceptions"] {
        assert_eq!(stats[counter], 0, "healthy meter: {counter} in {stats} {events:?}");
    }
    let transport = stats["transport_errors"].as_u64().unwrap();
    assert!(transport <= reconnects, "healthy meter: {stats} {events:?}");
    assert!(stats["requests"].as_u64().unwrap() >= at_least, "{stats}");
    let late = stats["read_lateness_max_periods"].as_f64().unwrap();
    assert!(late < 1.0, "the healthy meter missed a reading: {stats}");
    assert_eq!(state(app, token, device).await["state"], "online");
    assert!(events.is_empty(), "{events:?}");
}

/// Pseudo-terminal line at 115200 baud: TH40C 1 healthy, 2 silent, 3 too
/// slow (its answer after the timeout, then late on the line, where the
/// next request's answer must not be taken for it), 4 slow but in time,
/// 5 with a bad CRC.
#[tokio::test]
async fn silence_slowness_and_bad_crcs_on_an_rtu_line_end_in_retries_while_the_healthy_meter_keeps_its_rate() {
    let app = spawn_app_with_deadline(
        PTY_TIMEOUT,
        Duration::from_secs(120),
        Clock::System,
        ProfileSet::builtin(),
    )
    .await;
    let token = app.token(Role::Engineer).await;
    let units = [1, 2, 3, 4, 5];
    let (devices, switches) = th40cs(&units);
    fault::set(&switches[1], Some(ModbusFault::NoAnswer));
    // 20 ms turnaround + 600 ms: just past the timeout, so its answer
    // arrives while the next exchange (another meter's) is under way.
    fault::set(&switches[2], Some(ModbusFault::Slow(PTY_TIMEOUT)));
    // 20 ms turnaround + well under 1 ms of wire + 40 ms: well inside 600 ms.
    fault::set(&switches[3], Some(ModbusFault::Slow(Duration::from_millis(40))));
    fault::set(&switches[4], Some(ModbusFault::BadCrc));
    let (_stop, shutdown) = shutdown::channel();
    let (path, _) = spawn_pty(SimBus::new(devices), 115_200, shutdown).unwrap();
    let transport = json!({"kind": "serial_rtu", "path": path.display().to_string(), "baud": 115200, "parity": "none", "stop_bits": 1});
    let (bus, ids) = th40c_bus(&app, &token, transport, &units, &[1, 4]).await;

    wait_unreachable(&app, &token, &[ids[1], ids[2], ids[4]]).await;
    assert_given_up(&app, &token, bus, ids[1], "timeouts", "no answer within 600ms").await;
    assert_given_up(&app, &token, bus, ids[2], "timeouts", "no answer within 600ms").await;
    assert_given_up(&app, &token, bus, ids[4], "crc_errors", "bad CRC").await;
    // Read on for two more periods of the healthy meter.
    tokio::time::sleep(Duration::from_secs(2 * HEALTHY_PERIOD_S)).await;
    assert_kept_its_schedule(&app, &token, bus, ids[0], 10).await;
    // The slow meter that answers in time is a healthy one.
    assert_kept_its_schedule(&app, &token, bus, ids[3], 10).await;
    app.stop().await;
}

/// RTU over TCP (a gateway): TH40C 1 healthy, 2 cut short, 3 noise before
/// its answer (skipped: read), 4 noise instead of it, 5 answering from
/// unit 30.
#[tokio::test]
async fn cut_noisy_and_misaddressed_answers_end_in_retries_while_the_healthy_meter_keeps_its_rate() {
    let app = spawn_app_with_deadline(TIMEOUT, Duration::from_secs(120), Clock::System, ProfileSet::builtin()).await;
    let token = app.token(Role::Engineer).await;
    let units = [1, 2, 3, 4, 5];
    let (devices, switches) = th40cs(&units);
    fault::set(&switches[1], Some(ModbusFault::Truncated));
    fault::set(&switches[2], Some(ModbusFault::GarbageBefore));
    fault::set(&switches[3], Some(ModbusFault::GarbageInstead));
    fault::set(&switches[4], Some(ModbusFault::OtherUnit(30)));
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": address.port()});
    let (bus, ids) = th40c_bus(&app, &token, transport, &units, &[1, 3]).await;

    wait_unreachable(&app, &token, &[ids[1], ids[3], ids[4]]).await;
    // Half of a 5 + 2n byte answer: at least 4 bytes came, then nothing
    // (on a loaded machine an attempt may see none of them in time: a
    // timeout).
    assert_given_up_as(
        &app,
        &token,
        bus,
        ids[1],
        &["transport_errors", "timeouts"],
        "answer within 400ms",
    )
    .await;
    // The simulator's six noise bytes, none of which can start an answer.
    assert_given_up(
        &app,
        &token,
        bus,
        ids[3],
        "transport_errors",
        "6 bytes of noise and no answer",
    )
    .await;
    assert_given_up(
        &app,
        &token,
        bus,
        ids[4],
        "transport_errors",
        "only an answer from unit 30 came, asked unit 5",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2 * HEALTHY_PERIOD_S)).await;
    assert_kept_its_schedule_through_a_gateway(&app, &token, bus, ids[0], 10, 1).await;
    // Noise before a whole answer is skipped: that meter is read.
    assert_kept_its_schedule_through_a_gateway(&app, &token, bus, ids[2], 10, 1).await;

    // Switched back at run time, the meter answers again: an operator's
    // read brings it back without waiting for its next poll.
    fault::set(&switches[1], None);
    let operator = app.token(Role::Operator).await;
    app.read_now(&operator, ohmnibus::domain::ids::DeviceId(ids[1])).await;
    assert_eq!(state(&app, &token, ids[1]).await["state"], "online");
    let codes: Vec<String> = events(&app, ids[1])
        .await
        .into_iter()
        .map(|(code, _, _)| code)
        .collect();
    assert_eq!(codes, ["comm_lost", "comm_restored"]);
    drop(stop);
    app.stop().await;
}

/// Modbus TCP (tokio-modbus, which frames by the MBAP header): TH40C 1
/// healthy, 2 cut short, 3 noise before its answer, 4 noise instead, 5
/// answering from unit 30. A cut answer is waited for to the timeout; a
/// header that is not Modbus TCP, or an answer from another unit, fails the
/// connection: either way every request of theirs fails and is counted.
#[tokio::test]
async fn cut_noisy_and_misaddressed_answers_over_modbus_tcp_end_in_retries_while_the_healthy_meter_keeps_its_rate() {
    let app = spawn_app_with_deadline(TIMEOUT, Duration::from_secs(120), Clock::System, ProfileSet::builtin()).await;
    let token = app.token(Role::Engineer).await;
    let units = [1, 2, 3, 4, 5];
    let (devices, switches) = th40cs(&units);
    fault::set(&switches[1], Some(ModbusFault::Truncated));
    fault::set(&switches[2], Some(ModbusFault::GarbageBefore));
    fault::set(&switches[3], Some(ModbusFault::GarbageInstead));
    fault::set(&switches[4], Some(ModbusFault::OtherUnit(30)));
    let (_stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", TcpFraming::ModbusTcp, shutdown)
        .await
        .unwrap();
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": address.port()});
    let (bus, ids) = th40c_bus(&app, &token, transport, &units, &[1]).await;

    wait_unreachable(&app, &token, &ids[1..]).await;
    assert_given_up(&app, &token, bus, ids[1], "timeouts", "no answer within 400ms").await;
    for &device in &ids[2..] {
        let stats = device_statistics(&app, &token, bus, device).await;
        let failed = stats["timeouts"].as_u64().unwrap() + stats["transport_errors"].as_u64().unwrap();
        assert!(failed >= 3, "device {device}: {stats}");
        assert_eq!(
            json!(failed),
            stats["requests"],
            "device {device}: every request failed: {stats}"
        );
        let codes: Vec<String> = events(&app, device)
            .await
            .into_iter()
            .map(|(code, _, _)| code)
            .collect();
        assert_eq!(codes, ["comm_lost"], "device {device}");
    }
    tokio::time::sleep(Duration::from_secs(2 * HEALTHY_PERIOD_S)).await;
    assert_kept_its_schedule_through_a_gateway(&app, &token, bus, ids[0], 10, 1).await;
    app.stop().await;
}

/// Modbus TCP: TH40C 1 healthy, the others answering every request with
/// one exception each, every code the Modbus application protocol
/// (v1.1b3, 7) defines.
#[tokio::test]
async fn every_exception_code_is_counted_and_named_while_the_healthy_meter_keeps_its_rate() {
    let app = spawn_app_with_deadline(TIMEOUT, Duration::from_secs(120), Clock::System, ProfileSet::builtin()).await;
    let token = app.token(Role::Engineer).await;
    let codes = Exception::ALL;
    let units: Vec<u8> = (1..=codes.len() as u8 + 1).collect();
    let (devices, switches) = th40cs(&units);
    for (switch, code) in switches[1..].iter().zip(codes) {
        fault::set(switch, Some(ModbusFault::Exception(code)));
    }
    let (_stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", TcpFraming::ModbusTcp, shutdown)
        .await
        .unwrap();
    let transport = json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": address.port()});
    let (bus, ids) = th40c_bus(&app, &token, transport, &units, &[1]).await;

    wait_unreachable(&app, &token, &ids[1..]).await;
    // The codes as the protocol numbers them, in hexadecimal.
    let named = ["01", "02", "03", "04", "05", "06", "08", "0A", "0B"];
    for (device, code) in ids[1..].iter().zip(named) {
        let says = format!("device answered Modbus exception {code} (");
        assert_given_up(&app, &token, bus, *device, "exceptions", &says).await;
    }
    tokio::time::sleep(Duration::from_secs(2 * HEALTHY_PERIOD_S)).await;
    assert_kept_its_schedule(&app, &token, bus, ids[0], 10).await;
    app.stop().await;
}

/// An IEC 62056-21 line over TCP: an A1000 at "11111111", healthy, and
/// one at each of `faulty` showing its fault. Returns the app (one IEC
/// exchange may take `deadline` in all), its token, the line's stop
/// switch, the bus id and the device ids, the healthy meter's first.
async fn iec_line(faulty: &[(&str, IecFault)], deadline: Duration) -> (TestApp, String, Trigger, i64, Vec<i64>) {
    let app = spawn_app_with_deadline(TIMEOUT, deadline, Clock::System, ProfileSet::builtin()).await;
    let token = app.token(Role::Engineer).await;
    let at = Utc::now();
    let mut addresses = vec!["11111111"];
    let mut meters = vec![iec_meter(IecKind::A1000, 1, "11111111", at)];
    for (index, (address, fault)) in faulty.iter().enumerate() {
        let meter = iec_meter(IecKind::A1000, index as u64 + 2, address, at);
        meter.lock().unwrap().fault = Some(*fault);
        addresses.push(address);
        meters.push(meter);
    }
    let (port, stop) = serve_iec_tcp(quick_iec_line(meters.iter().map(Arc::clone).collect(), Clock::System)).await;
    let transport = json!({"kind": "iec62056_tcp", "host": "127.0.0.1", "port": port});
    let bus = app.create_bus(&token, "iec", transport).await;
    let mut ids = Vec::new();
    for address in addresses {
        let body = json!({"name": format!("A1000 {address}"), "profile": "a1000", "iec_address": address,
            "schedule": {"energy_seconds": 5}});
        ids.push(app.create_device(&token, bus, body).await.0);
    }
    (app, token, stop, bus.0, ids)
}

/// The healthy A1000 of [`iec_line`]: read without a failure, online, and
/// never a whole period late.
async fn assert_iec_meter_read(app: &TestApp, token: &str, bus: i64, device: i64) {
    let healthy = device_statistics(app, token, bus, device).await;
    for counter in ["timeouts", "crc_errors", "exceptions", "transport_errors"] {
        assert_eq!(healthy[counter], 0, "healthy meter: {counter} in {healthy}");
    }
    assert!(healthy["requests"].as_u64().unwrap() >= 2, "{healthy}");
    assert!(
        healthy["read_lateness_max_periods"].as_f64().unwrap() < 1.0,
        "{healthy}"
    );
    assert_eq!(state(app, token, device).await["state"], "online");
}

/// A meter that stops mid-block (ended by the inter-character timeout,
/// 1.5 s) and one whose every block has a bad BCC (NAK three times).
#[tokio::test]
async fn iec_meters_that_stop_mid_block_or_garble_their_blocks_are_given_up_while_the_healthy_one_is_read() {
    let faulty = [("22222222", IecFault::StopsMidBlock), ("44444444", IecFault::BadBcc)];
    let (app, token, _stop, bus, ids) = iec_line(&faulty, ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE).await;
    wait_unreachable(&app, &token, &ids[1..]).await;
    assert_given_up(
        &app,
        &token,
        bus,
        ids[1],
        "timeouts",
        "no answer from the meter while waiting for the data readout",
    )
    .await;
    // NAK three times, then given up: counted as a CRC (block check) error.
    assert_given_up(&app, &token, bus, ids[2], "crc_errors", "block check failed 4 times").await;
    assert_iec_meter_read(&app, &token, bus, ids[0]).await;
    app.stop().await;
}

/// A meter that never stops talking: a data line every 20 ms, inside the
/// inter-character timeout, never an ETX. The exchange deadline (3 s here)
/// ends each attempt.
#[tokio::test]
async fn an_iec_meter_that_never_stops_talking_is_cut_off_at_the_deadline_while_the_healthy_one_is_read() {
    let faulty = [("33333333", IecFault::NeverStops)];
    let (app, token, _stop, bus, ids) = iec_line(&faulty, Duration::from_secs(3)).await;
    wait_unreachable(&app, &token, &ids[1..]).await;
    assert_given_up(
        &app,
        &token,
        bus,
        ids[1],
        "timeouts",
        "the exchange took longer than 3s while waiting for the data readout",
    )
    .await;
    assert_iec_meter_read(&app, &token, bus, ids[0]).await;
    app.stop().await;
}
