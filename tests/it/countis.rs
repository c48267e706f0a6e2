//! Socomec COUNTIS E33/E43/E44: the simulators seen from the wire (tariff
//! writes, totals, partial resets, broadcast, CT, firmware without the V201
//! registers, identification), `ohmnibus simulate` with a mixed bus, and the
//! poller storing what they served, end to end.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{TestApp, WAIT, count_readings, eventually, spawn_app};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ohmnibus::device::decode::decode;
use ohmnibus::device::identify::{self, TextEncoding, decode_text};
use ohmnibus::device::profile::RegisterGroup;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::protocol::modbus::frame::crc16;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::catalog::model_for;
use ohmnibus::sim::device::{Served, SimDevice};
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_modbus::client::{Context, Reader, Writer, rtu, tcp};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};

const ANSWER: Duration = crate::support::WAIT;

fn start() -> DateTime<Utc> {
    "2026-06-09T08:00:00Z".parse().unwrap()
}

/// A simulated device of `profile` at `unit` on `clock`.
fn device(profile: &str, unit: u8, clock: &Clock) -> (SimDevice, Served) {
    let model = model_for(profile, u64::from(unit) + 70, Tz::UTC, clock.now()).unwrap();
    let device = SimDevice::with_model(ProfileSet::builtin().get(profile).unwrap(), unit, model, clock.clone());
    let served = device.served();
    (device, served)
}

async fn serve(devices: Vec<SimDevice>, framing: TcpFraming) -> (std::net::SocketAddr, Trigger) {
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", framing, shutdown)
        .await
        .unwrap();
    (address, stop)
}

/// An E43 at 3, an E44 at 4 and an E33 at 5 on one Modbus TCP server.
async fn countis_line(clock: &Clock) -> (Context, Trigger) {
    let devices = [("countis-e43", 3), ("countis-e44", 4), ("countis-e33", 5)]
        .into_iter()
        .map(|(profile, unit)| device(profile, unit, clock).0)
        .collect();
    let (address, stop) = serve(devices, TcpFraming::ModbusTcp).await;
    (tcp::connect_slave(address, Slave(3)).await.unwrap(), stop)
}

fn u32s(words: &[u16]) -> Vec<u32> {
    words
        .chunks(2)
        .map(|pair| (u32::from(pair[0]) << 16) | u32::from(pair[1]))
        .collect()
}

/// 0xC800..0xC809: number of tariffs, current tariff, Ea+ T1–T4 in 10 Wh.
async fn tariffs(client: &mut Context) -> (u16, u16, Vec<u32>) {
    let words = client.read_holding_registers(0xC800, 10).await.unwrap().unwrap();
    (words[0], words[1], u32s(&words[2..]))
}

async fn read_u32(client: &mut Context, address: u16) -> u32 {
    u32s(&client.read_holding_registers(address, 2).await.unwrap().unwrap())[0]
}

#[tokio::test]
async fn the_written_tariff_is_the_one_that_grows_and_totals_add_up() {
    let clock = Clock::manual(start());
    let (mut client, _stop) = countis_line(&clock).await;
    for unit in [3, 4, 5] {
        client.set_slave(Slave(unit));
        let (count, current, _) = tariffs(&mut client).await;
        assert_eq!((count, current), (4, 1), "unit {unit} starts in T1 of 4");
        // Ea+ tariff meters count import only: step over the site's export
        // around noon, to 17:00–05:00 UTC.
        let hour = i64::from(chrono::Timelike::hour(&clock.now()));
        clock.advance(chrono::Duration::hours((17 - hour).rem_euclid(24)));
        for tariff in [3u16, 2, 4, 1] {
            client.write_single_register(0x9E21, tariff).await.unwrap().unwrap();
            let (_, current, before) = tariffs(&mut client).await;
            assert_eq!(current, tariff);
            clock.advance(chrono::Duration::hours(3));
            let (_, _, after) = tariffs(&mut client).await;
            for t in 0..4 {
                assert_eq!(
                    after[t] > before[t],
                    t + 1 == usize::from(tariff),
                    "unit {unit}: T{} while T{tariff} is in force: {before:?} -> {after:?}",
                    t + 1
                );
            }
            // Ea+ total = T1+…+T4, each register rounded to 10 Wh on its own.
            let total = read_u32(&mut client, 0xC702).await;
            let sum: u32 = after.iter().sum();
            assert!(total.abs_diff(sum) <= 2, "unit {unit}: total {total} vs {sum}");
        }
        assert_eq!(
            client.write_single_register(0x9E21, 5).await.unwrap(),
            Err(ExceptionCode::IllegalDataValue),
            "there are four tariffs"
        );
    }
}

#[tokio::test]
async fn partial_counters_follow_the_totals_and_reset_when_told() {
    let clock = Clock::manual(start());
    let (mut client, _stop) = countis_line(&clock).await;
    client.set_slave(Slave(4));
    let total = read_u32(&mut client, 0xC702).await;
    let partial = read_u32(&mut client, 0xC70C).await;
    clock.advance(chrono::Duration::hours(5));
    let grown = read_u32(&mut client, 0xC702).await - total;
    assert!(grown > 0);
    assert!((read_u32(&mut client, 0xC70C).await - partial).abs_diff(grown) <= 1);
    // 0xE222 bit 0x01: partial Ea+ only.
    client.write_single_register(0xE222, 0x01).await.unwrap().unwrap();
    assert_eq!(read_u32(&mut client, 0xC70C).await, 0);
    assert!(read_u32(&mut client, 0xC70E).await > 0, "partial Er+ kept");
    assert!(
        read_u32(&mut client, 0xC702).await >= total + grown,
        "the total is not reset"
    );
    // 13:00 to 19:00 UTC: the site exports around noon, imports after.
    clock.advance(chrono::Duration::hours(6));
    assert!(read_u32(&mut client, 0xC70C).await > 0, "it counts again");
    // 0x9E40 = 0x20 (V201): every partial energy.
    client.write_single_register(0x9E40, 0x20).await.unwrap().unwrap();
    let words = client.read_holding_registers(0xC70C, 10).await.unwrap().unwrap();
    assert!(words.iter().all(|&w| w == 0), "{words:?}");
    // The E33 runs V200.53: no 0x9E40, but 0xE222 works.
    client.set_slave(Slave(5));
    assert_eq!(
        client.write_single_register(0x9E40, 0x20).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
    client.write_single_register(0xE222, 0x1F).await.unwrap().unwrap();
    assert_eq!(read_u32(&mut client, 0xC70C).await, 0);
    assert_eq!(read_u32(&mut client, 0xC712).await, 0);
}

#[tokio::test]
async fn network_and_ct_settings_on_the_e4x_and_no_ct_on_the_e33() {
    let clock = Clock::manual(start());
    let (mut client, _stop) = countis_line(&clock).await;
    client.set_slave(Slave(3));
    assert_eq!(
        client.read_holding_registers(0xE001, 2).await.unwrap().unwrap(),
        [5, 800]
    );
    // 0xE000, the network type, before them: 5 is 4NBL, three phases with
    // neutral (the reference table's codes; E43/E44 manual 6.2).
    assert_eq!(
        client.read_holding_registers(0xE000, 3).await.unwrap().unwrap(),
        [5, 5, 800]
    );
    let current = read_u32(&mut client, 0xC560).await;
    let volts = read_u32(&mut client, 0xC558).await;
    client.write_single_register(0xE002, 400).await.unwrap().unwrap();
    assert_eq!(client.read_holding_registers(0xE002, 1).await.unwrap().unwrap(), [400]);
    // Instantaneous values are multiplied by the configured ratio.
    assert!(read_u32(&mut client, 0xC560).await.abs_diff(current / 2) <= 1);
    assert_eq!(read_u32(&mut client, 0xC558).await, volts);
    assert_eq!(
        client.write_single_register(0xE001, 2).await.unwrap(),
        Err(ExceptionCode::IllegalDataValue),
        "a CT secondary is 1 or 5 A"
    );
    client.set_slave(Slave(5));
    for address in [0xE001, 0xE002] {
        assert_eq!(
            client.read_holding_registers(address, 1).await.unwrap(),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            client.write_single_register(address, 100).await.unwrap(),
            Err(ExceptionCode::IllegalDataAddress)
        );
    }
}

#[tokio::test]
async fn a_v200_firmware_answers_02_to_the_v201_registers_only() {
    let clock = Clock::manual(start());
    let (mut client, _stop) = countis_line(&clock).await;
    let v201 = [0xC706u16, 0xC70A, 0xC710, 0xC714, 0xC812];
    client.set_slave(Slave(5));
    for address in v201 {
        assert_eq!(
            client.read_holding_registers(address, 2).await.unwrap(),
            Err(ExceptionCode::IllegalDataAddress),
            "E33 0x{address:04X}"
        );
    }
    assert!(client.read_holding_registers(0xC702, 4).await.unwrap().is_ok());
    assert!(client.read_holding_registers(0xC552, 54).await.unwrap().is_ok());
    client.set_slave(Slave(4));
    for address in v201 {
        assert!(
            client.read_holding_registers(address, 2).await.unwrap().is_ok(),
            "E44 0x{address:04X}"
        );
    }
    assert!(client.read_holding_registers(0xC702, 20).await.unwrap().is_ok());
    assert_eq!(
        client.read_holding_registers(0xC552, 126).await.unwrap(),
        Err(ExceptionCode::IllegalDataValue)
    );
}

fn rtu(frame: &[u8]) -> Vec<u8> {
    let mut frame = frame.to_vec();
    let crc = crc16(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

async fn exchange(stream: &mut TcpStream, request: &[u8], len: usize) -> Vec<u8> {
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0u8; len];
    tokio::time::timeout(ANSWER, stream.read_exact(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    answer
}

/// A broadcast tariff write (unit 0) reaches every COUNTIS on the line and
/// none answers; a TH40C on the same line has no such register and ignores it.
#[tokio::test]
async fn a_broadcast_tariff_reaches_every_countis_on_the_line() {
    let clock = Clock::manual(start());
    let devices = vec![
        device("countis-e43", 3, &clock).0,
        device("countis-e44", 4, &clock).0,
        device("countis-e33", 5, &clock).0,
        device("th40c", 7, &clock).0,
    ];
    let (address, _stop) = serve(devices, TcpFraming::RtuOverTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(&rtu(&[0x00, 0x06, 0x9E, 0x21, 0x00, 0x02]))
        .await
        .unwrap();
    for unit in [3, 4, 5] {
        // The first answer is the read's: the broadcast got none.
        let answer = exchange(&mut stream, &rtu(&[unit, 0x03, 0xC8, 0x01, 0x00, 0x01]), 7).await;
        assert_eq!(answer[..5], [unit, 0x03, 2, 0, 2], "unit {unit} is in T2");
    }
    let answer = exchange(&mut stream, &rtu(&[7, 0x03, 0x10, 0x40, 0x00, 0x03]), 11).await;
    assert_eq!(answer[..3], [7, 0x03, 6], "the TH40C still answers");
}

/// Identification read over the wire picks the right profile, and only it.
#[tokio::test]
async fn identification_over_the_wire_tells_each_model() {
    let clock = Clock::manual(start());
    let units = [
        ("countis-e43", 3u8),
        ("countis-e44", 4),
        ("countis-e33", 5),
        ("th40c", 7),
    ];
    let devices = units
        .iter()
        .map(|(profile, unit)| device(profile, *unit, &clock).0)
        .collect();
    let (address, _stop) = serve(devices, TcpFraming::ModbusTcp).await;
    let mut client = tcp::connect_slave(address, Slave(3)).await.unwrap();
    let profiles = ProfileSet::builtin();
    let names: Vec<String> = profiles.names().map(str::to_owned).collect();
    for (expected, unit) in units {
        client.set_slave(Slave(unit));
        // What a scanner does: read every entry of every profile, then match.
        let mut answers: HashMap<(u16, u16), Option<Vec<u16>>> = HashMap::new();
        for name in &names {
            for entry in &profiles.get(name).unwrap().identification {
                let words = client
                    .read_holding_registers(entry.address, entry.count)
                    .await
                    .unwrap()
                    .ok();
                answers.insert((entry.address, entry.count), words);
            }
        }
        let fitting: Vec<&String> = names
            .iter()
            .filter(|name| {
                let profile = profiles.get(name).unwrap();
                identify::matches(&profile.identification, |address, count| {
                    answers[&(address, count)].clone()
                })
            })
            .collect();
        assert_eq!(fitting, [expected], "unit {unit}");
    }
    client.set_slave(Slave(4));
    let words = client.read_holding_registers(0xC350, 8).await.unwrap().unwrap();
    assert_eq!(words[..4], [0x53, 0x4F, 0x43, 0x4F], "SOCO, one character a register");
    assert_eq!(words[4], 100, "product order id of a COUNTIS");
    let name = client.read_holding_registers(0xC38A, 8).await.unwrap().unwrap();
    assert_eq!(decode_text(&name, TextEncoding::HighLow), "countis e44");
}

/// What each simulator records as served equals what the head-end's decoder
/// makes of its answers; blocks a V200.53 E33 refuses are simply absent.
#[tokio::test]
async fn the_served_record_matches_the_decoded_readings() {
    let clock = Clock::manual(start());
    for profile_name in ["countis-e33", "countis-e43", "countis-e44"] {
        let (sim, served) = device(profile_name, 1, &clock);
        let (address, _stop) = serve(vec![sim], TcpFraming::ModbusTcp).await;
        let mut client = tcp::connect_slave(address, Slave(1)).await.unwrap();
        clock.advance(chrono::Duration::hours(7));
        let profile = ProfileSet::builtin().get(profile_name).unwrap();
        let mut answers = Vec::new();
        for group in RegisterGroup::ALL {
            for block in profile.blocks(group) {
                match client.read_holding_registers(block.start, block.count).await.unwrap() {
                    Ok(words) => answers.push((block, words)),
                    Err(ExceptionCode::IllegalDataAddress) if block.optional && profile_name == "countis-e33" => {}
                    Err(error) => panic!("{profile_name} 0x{:04X}: {error:?}", block.start),
                }
            }
        }
        let answers: Vec<_> = answers.iter().map(|(block, words)| (block, words.as_slice())).collect();
        let decoded = decode(&profile, &answers, clock.now(), Tz::UTC);
        assert!(
            decoded.invalid.is_empty() && decoded.not_available.is_empty(),
            "{decoded:?}"
        );
        let served = served.lock().unwrap().clone();
        assert_eq!(decoded.readings.len(), served.len(), "{profile_name}");
        for reading in &decoded.readings {
            let code = reading.obis.to_string();
            let (value, _) = served[&code];
            assert!(
                (reading.value - value).abs() <= 1e-9 * value.abs().max(1.0),
                "{profile_name} {code}: decoded {}, served {value}",
                reading.value
            );
        }
        assert_eq!(served.len(), served_codes(profile_name), "{profile_name}");
    }
}

/// `ohmnibus simulate --rtu-tcp ADDR --device countis-e44:3 --device th40c:7`:
/// one gateway serving a mixed bus.
#[tokio::test]
async fn simulate_serves_a_mixed_bus_over_rtu_over_tcp() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ohmnibus"))
        .args([
            "simulate",
            "--rtu-tcp",
            &address,
            "--device",
            "countis-e44:3",
            "--device",
            "th40c:7",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(crate::support::WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(line.contains("countis-e44 unit 3, th40c unit 7"), "{line}");
    let stream = TcpStream::connect(&address).await.unwrap();
    let mut client = rtu::attach_slave(stream, Slave(3));
    let words = client.read_holding_registers(0xC350, 4).await.unwrap().unwrap();
    assert_eq!(decode_text(&words, TextEncoding::LowByte), "SOCO");
    client.set_slave(Slave(7));
    assert!(client.read_holding_registers(0x8010, 10).await.unwrap().is_ok());
    assert_eq!(
        client.read_holding_registers(0xC350, 4).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
}

async fn create_devices(app: &TestApp, token: &str, port: u16, devices: &[(&str, u8)]) -> Vec<i64> {
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": port});
    let bus = app.create_bus(token, "countis line", transport).await;
    let mut ids = Vec::new();
    for (profile, unit) in devices {
        let body = json!({"name": format!("{profile} at {unit}"), "profile": profile,
                          "address": unit, "schedule": {"realtime_seconds": 1, "energy_seconds": 1}});
        ids.push(app.create_device(token, bus, body).await.0);
    }
    ids
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

/// The poller reads an E33 (V200.53), an E43 and an E44 on one RTU-over-TCP
/// line and stores exactly what they served. The E33's V201-only blocks are
/// probed once (exception 02), then skipped: it is online, with no failures.
#[tokio::test]
async fn the_poller_stores_what_each_countis_served() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let clock = Clock::manual(start());
    let line = [("countis-e33", 1u8), ("countis-e43", 2), ("countis-e44", 3)];
    let (devices, served): (Vec<SimDevice>, Vec<Served>) = line
        .iter()
        .map(|(profile, unit)| device(profile, *unit, &clock))
        .unzip();
    let (address, _stop) = serve(devices, TcpFraming::RtuOverTcp).await;
    let ids = create_devices(&app, &token, address.port(), &line).await;
    for ((id, served), (profile, _)) in ids.iter().zip(&served).zip(&line) {
        let expected = served_codes(profile);
        let complete = eventually(WAIT, || async { stored(&app, &token, *id).await.len() >= expected }).await;
        assert!(complete, "{profile} was not fully read in time");
        let stored = stored(&app, &token, *id).await;
        let served = served.lock().unwrap().clone();
        assert_eq!(served.len(), expected, "{profile}: every mapped value was served");
        assert_eq!(
            stored.len(),
            served.len(),
            "{profile}: nothing stored that was not served"
        );
        for (code, (value, _)) in &served {
            let got = stored
                .get(code)
                .unwrap_or_else(|| panic!("{profile}: {code} served but not stored"));
            assert!(
                (got - value).abs() <= 1e-9 * value.abs().max(1.0),
                "{profile} {code}: {got} vs {value}"
            );
        }
    }
    let e33 = stored(&app, &token, ids[0]).await;
    assert!(
        !e33.contains_key("1-1:9.8.0") && !e33.contains_key("1-1:3.8.1"),
        "no V201 values"
    );
    assert!(e33.contains_key("1-1:1.8.4") && !e33.contains_key("1-0:0.4.2"));

    // Several more energy reads later, the E33's V201 blocks were asked once.
    let energy_reads = || count_readings(&app, ids[0], "1-1:1.8.4");
    let before = energy_reads().await;
    let read_on = eventually(WAIT, || async { energy_reads().await >= before + 3 }).await;
    assert!(read_on, "the E33's energy was not read again");
    let (_, e33_device) = app
        .request("GET", &format!("/api/v1/devices/{}", ids[0]), Some(&token), None)
        .await;
    assert_eq!(e33_device["status"]["state"], "online", "{e33_device}");
    assert_eq!(e33_device["status"]["consecutive_failures"], 0);
    let (_, bus) = app
        .request(
            "GET",
            &format!("/api/v1/buses/{}", e33_device["bus_id"]),
            Some(&token),
            None,
        )
        .await;
    let exceptions = |id: i64| -> Value {
        bus["statistics"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_id"] == id)
            .map(|d| d["exceptions"].clone())
            .unwrap_or(Value::Null)
    };
    let e33 = ProfileSet::builtin().get("countis-e33").unwrap();
    let optional_blocks: usize = [RegisterGroup::Realtime, RegisterGroup::Energy, RegisterGroup::History]
        .into_iter()
        .map(|group| e33.blocks(group).iter().filter(|b| b.optional).count())
        .sum();
    assert_eq!(
        exceptions(ids[0]),
        json!(optional_blocks),
        "one probe per optional block"
    );
    assert_eq!(exceptions(ids[1]), json!(0));
    for id in &ids[1..] {
        let device = app.device(&token, DeviceId(*id)).await;
        assert_eq!(device["status"]["state"], "online");
        assert_eq!(device["status"]["consecutive_failures"], 0);
    }
    app.stop().await;
}

/// How many OBIS codes a device of `profile` serves as the simulator runs it
/// (the E33 without its optional registers); signed registers give two.
fn served_codes(profile: &str) -> usize {
    ProfileSet::builtin()
        .get(profile)
        .unwrap()
        .registers
        .iter()
        .filter(|r| profile != "countis-e33" || !r.optional)
        .map(|r| 1 + usize::from(r.obis_negative.is_some()))
        .sum()
}
