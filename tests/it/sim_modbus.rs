//! The simulator seen from the wire: the TH40C manual's byte examples
//! (App. E), exceptions, physics invariants, the served-values record against
//! the head-end's decoder, over Modbus TCP, RTU over TCP and a pseudo-terminal.
//! Time moves only when a test moves the manual clock.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::decode::decode_blocks;
use ohmnibus::device::profile::RegisterGroup;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::device::value_type::{ValueType, WordOrder};
use ohmnibus::domain::clock::Clock;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::device::{Served, SimDevice};
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_pty, spawn_tcp};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_modbus::client::{Context, Reader, tcp};
use tokio_modbus::{ExceptionCode, Slave};
use tokio_serial::SerialPortBuilderExt;

/// Long enough for any answer on a loaded machine; only a failing test waits it out.
const ANSWER: Duration = crate::support::WAIT;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// One simulated TH40C per unit, all on `clock`, in `zone`.
fn bus(clock: &Clock, zone: Tz, units: &[u8], setup: impl Fn(&mut Th40cModel)) -> (SimBus, Vec<Served>) {
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let devices: Vec<SimDevice> = units
        .iter()
        .map(|&unit| {
            let mut model = Th40cModel::new(u64::from(unit) + 40, zone, clock.now());
            setup(&mut model);
            SimDevice::new(profile.clone(), unit, model, clock.clone())
        })
        .collect();
    let served = devices.iter().map(SimDevice::served).collect();
    (SimBus::new(devices), served)
}

async fn serve(bus: SimBus, framing: TcpFraming) -> (std::net::SocketAddr, Trigger) {
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(bus, "127.0.0.1:0", framing, shutdown).await.unwrap();
    (address, stop)
}

async fn modbus_tcp(bus: SimBus, unit: u8) -> (Context, Trigger) {
    let (address, stop) = serve(bus, TcpFraming::ModbusTcp).await;
    (tcp::connect_slave(address, Slave(unit)).await.unwrap(), stop)
}

/// Sends raw bytes and reads exactly `len` bytes back.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &[u8], len: usize) -> Vec<u8> {
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0u8; len];
    tokio::time::timeout(ANSWER, stream.read_exact(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    answer
}

fn f32_at(words: &[u16], index: usize) -> f64 {
    ValueType::F32
        .decode(&words[index..index + 2], WordOrder::HighFirst)
        .unwrap()
}

/// Reads `count` registers at `start` and decodes them as consecutive f32s.
async fn floats(client: &mut Context, start: u16, count: u16) -> Vec<f64> {
    let words = client.read_holding_registers(start, count).await.unwrap().unwrap();
    (0..words.len() / 2).map(|k| f32_at(&words, 2 * k)).collect()
}

/// App. E: `01 03 80 10 00 02` + CRC reads total import energy; the meter
/// answers `01 03 04 3E C7 AE 14` + CRC, 0.39 kWh. (The manual prints the
/// CRCs as `EC` and `3A 0E 49`: the request's second CRC byte 0E slipped into
/// the answer. The standard CRC-16/MODBUS gives EC 0E and 3A 49.)
#[tokio::test]
async fn the_manuals_read_example_byte_for_byte() {
    let clock = Clock::manual(at("2026-05-11T09:00:00Z"));
    let (bus, served) = bus(&clock, Tz::UTC, &[1], |model| {
        model.set_energy(1, [0.39, 0.0, 0.0, 0.0]);
    });
    let (address, _stop) = serve(bus, TcpFraming::RtuOverTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let answer = exchange(&mut stream, &[0x01, 0x03, 0x80, 0x10, 0x00, 0x02, 0xEC, 0x0E], 9).await;
    assert_eq!(answer, [0x01, 0x03, 0x04, 0x3E, 0xC7, 0xAE, 0x14, 0x3A, 0x49]);
    let record = served[0].lock().unwrap()["1-1:1.8.0"];
    assert_eq!(record, (0.39, None), "the record holds the model's value");
}

#[tokio::test]
async fn exceptions_for_unmapped_addresses_bad_counts_and_functions() {
    let clock = Clock::manual(at("2026-05-11T09:00:00Z"));
    let (mut client, _stop) = modbus_tcp(bus(&clock, Tz::UTC, &[1], |_| {}).0, 1).await;
    // 0x801A is not in App. G, nor is 0x2000.
    assert_eq!(
        client.read_holding_registers(0x8018, 4).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
    assert_eq!(
        client.read_holding_registers(0x2000, 1).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
    // Reading the second word of a float alone is still inside the map.
    assert!(client.read_holding_registers(0x8011, 1).await.unwrap().is_ok());
    assert_eq!(
        client.read_holding_registers(0x8010, 126).await.unwrap(),
        Err(ExceptionCode::IllegalDataValue)
    );
    // Only FC03 reads: FC04 is an illegal function.
    assert_eq!(
        client.read_input_registers(0x8010, 2).await.unwrap(),
        Err(ExceptionCode::IllegalFunction)
    );
    // A write to a register that is not a command: illegal data address.
    use tokio_modbus::client::Writer;
    assert_eq!(
        client.write_single_register(0x8010, 1).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
}

/// Count 0 cannot be sent through tokio-modbus; raw Modbus TCP instead.
#[tokio::test]
async fn a_read_of_zero_registers_is_an_illegal_value() {
    let clock = Clock::manual(at("2026-05-11T09:00:00Z"));
    let (address, _stop) = serve(bus(&clock, Tz::UTC, &[1], |_| {}).0, TcpFraming::ModbusTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = [0x00, 0x07, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x80, 0x10, 0x00, 0x00];
    let answer = exchange(&mut stream, &request, 9).await;
    assert_eq!(answer, [0x00, 0x07, 0x00, 0x00, 0x00, 0x03, 0x01, 0x83, 0x03]);
}

#[tokio::test]
async fn physics_invariants_hold_on_the_wire_as_time_passes() {
    // Midnight in Rome; the day's run crosses every tariff and the midday export.
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let clock = Clock::manual(at("2026-06-09T22:00:00Z"));
    let (mut client, _stop) = modbus_tcp(bus(&clock, zone, &[1], |_| {}).0, 1).await;
    let energy_blocks = [0x8010u16, 0x8020, 0x8110, 0x8120, 0x8210, 0x8220];
    let mut previous: Vec<Vec<Vec<f64>>> = Vec::new();
    for step in 0..25 {
        let mut now = Vec::new();
        for start in energy_blocks {
            let values = floats(&mut client, start, 10).await;
            let rates: f64 = values[1..].iter().sum();
            // Each register is rounded to f32 on the wire.
            assert!(
                (values[0] - rates).abs() <= 4.0 * f64::from(f32::EPSILON) * values[0].max(1.0),
                "0x{start:04X}: total {} vs rates {rates}",
                values[0]
            );
            now.push(values);
        }
        if let Some(before) = previous.last() {
            for (block, (a, b)) in before.iter().zip(&now).enumerate() {
                for (x, y) in a.iter().zip(b) {
                    assert!(y >= x, "block {block} went backwards at step {step}: {x} -> {y}");
                }
            }
        }
        previous.push(now);
        // Phase powers sum to the totals, PF is bounded, S² = P² + Q² per phase.
        let p = floats(&mut client, 0xA630, 8).await;
        let q = floats(&mut client, 0xA640, 8).await;
        let s = floats(&mut client, 0xA660, 8).await;
        let pf = floats(&mut client, 0xA650, 8).await;
        assert!((p[0] - (p[1] + p[2] + p[3])).abs() < 1e-3 * p[0].abs().max(1.0));
        assert!((q[0] - (q[1] + q[2] + q[3])).abs() < 1e-3 * q[0].abs().max(1.0));
        assert!(pf.iter().all(|pf| pf.abs() <= 1.0), "{pf:?}");
        for k in 1..=3 {
            let apparent = (p[k] * p[k] + q[k] * q[k]).sqrt();
            assert!((s[k].abs() - apparent).abs() < 1e-3 * apparent.max(1.0));
            assert_eq!(s[k].signum(), p[k].signum(), "apparent power carries the direction");
        }
        let volts = floats(&mut client, 0xA612, 6).await;
        assert!(volts.iter().all(|v| (215.0..245.0).contains(v)), "{volts:?}");
        clock.advance(chrono::Duration::hours(1));
    }
    let (first, last) = (&previous[0], &previous[previous.len() - 1]);
    for (block, (a, b)) in first.iter().zip(last).enumerate() {
        assert!(b[0] > a[0], "energy block {block} grew over a day");
    }
}

/// What the simulator records as served (its model's values) equals what the
/// head-end's decoder makes of the same answers, within the precision of an
/// IEEE 754 single, and capture time for capture time.
#[tokio::test]
async fn the_served_record_matches_the_decoded_readings() {
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let clock = Clock::manual(at("2026-11-20T11:34:56Z"));
    let (bus, served) = bus(&clock, zone, &[1], |_| {});
    let (mut client, _stop) = modbus_tcp(bus, 1).await;
    clock.advance(chrono::Duration::hours(30));
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let mut blocks = Vec::new();
    for group in RegisterGroup::ALL {
        for block in profile.blocks(group) {
            let words = client
                .read_holding_registers(block.start, block.count)
                .await
                .unwrap()
                .unwrap();
            blocks.push((block, words));
        }
    }
    let answers: Vec<_> = blocks.iter().map(|(block, words)| (block, words.as_slice())).collect();
    let (readings, invalid) = decode_blocks(&profile, &answers, clock.now(), zone);
    assert!(invalid.is_empty(), "{invalid:?}");
    let served = served[0].lock().unwrap().clone();
    assert_eq!(readings.len(), served.len());
    for reading in &readings {
        let code = reading.obis.to_string();
        let (value, captured) = served[&code];
        let tolerance = 1e-6 * value.abs().max(1.0);
        assert!(
            (reading.value - value).abs() <= tolerance,
            "{code}: decoded {}, served {value}",
            reading.value
        );
        assert_eq!(reading.captured_at, captured, "{code} capture time");
    }
    // The demand of the last 30 hours is stamped on a quarter hour.
    let (_, stamp) = served["1-1:1.6.0"];
    assert_eq!(stamp.unwrap().timestamp() % 900, 0);
}

#[tokio::test]
async fn clock_registers_follow_the_sim_clock_in_the_meters_zone() {
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let clock = Clock::manual(at("2026-12-31T22:59:30Z"));
    let (mut client, _stop) = modbus_tcp(bus(&clock, zone, &[1], |_| {}).0, 1).await;
    let words = client.read_holding_registers(0x1040, 6).await.unwrap().unwrap();
    assert_eq!(words, [26, 12, 31, 23, 59, 30]);
    clock.advance(chrono::Duration::seconds(45));
    let words = client.read_holding_registers(0x1040, 6).await.unwrap().unwrap();
    assert_eq!(
        words,
        [27, 1, 1, 0, 0, 15],
        "two-digit year rolls over at local midnight"
    );
}

fn clock_write(unit: u8, local: [u8; 6]) -> Vec<u8> {
    let mut pdu = vec![unit, 0x10, 0x70, 0x00, 0x00, 0x03, 0x06];
    pdu.extend_from_slice(&local);
    let crc = crc16(&pdu);
    pdu.extend_from_slice(&crc.to_le_bytes());
    pdu
}

fn crc16(bytes: &[u8]) -> u16 {
    ohmnibus::protocol::modbus::frame::crc16(bytes)
}

fn read_clock(unit: u8) -> Vec<u8> {
    let mut frame = vec![unit, 0x03, 0x10, 0x40, 0x00, 0x06];
    let crc = crc16(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

/// App. E's broadcast `00 10 70 00 00 03 06 05 07 14 0F 0A 28 C8 18` sets
/// 05-07-20 15:10:40 on every meter and none answers. The read sent right
/// after it on the same line gets the first answer, which proves the
/// broadcast got none, without waiting for a timeout.
#[tokio::test]
async fn the_manuals_broadcast_clock_set_takes_effect_silently() {
    let clock = Clock::manual(at("2005-07-20T15:06:00Z"));
    let (address, _stop) = serve(bus(&clock, Tz::UTC, &[1, 2], |_| {}).0, TcpFraming::RtuOverTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let broadcast = [
        0x00, 0x10, 0x70, 0x00, 0x00, 0x03, 0x06, 0x05, 0x07, 0x14, 0x0F, 0x0A, 0x28, 0xC8, 0x18,
    ];
    stream.write_all(&broadcast).await.unwrap();
    for unit in [1, 2] {
        let answer = exchange(&mut stream, &read_clock(unit), 17).await;
        assert_eq!(answer[..3], [unit, 0x03, 12], "the first answer is the read's");
        assert_eq!(answer[3..15], [0, 5, 0, 7, 0, 20, 0, 15, 0, 10, 0, 40]);
    }
}

#[tokio::test]
async fn clock_writes_within_five_minutes_once_a_day() {
    let clock = Clock::manual(at("2026-04-02T08:00:00Z"));
    let (address, _stop) = serve(bus(&clock, Tz::UTC, &[1], |_| {}).0, TcpFraming::RtuOverTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    // 6 minutes ahead: exception 03 (the manual: at most 5 minutes of change).
    let answer = exchange(&mut stream, &clock_write(1, [26, 4, 2, 8, 6, 0]), 5).await;
    assert_eq!(answer[..3], [0x01, 0x90, 0x03]);
    // Exactly 5 minutes: accepted, echoing address and count.
    let answer = exchange(&mut stream, &clock_write(1, [26, 4, 2, 8, 5, 0]), 8).await;
    assert_eq!(answer[..6], [0x01, 0x10, 0x70, 0x00, 0x00, 0x03]);
    let answer = exchange(&mut stream, &read_clock(1), 17).await;
    assert_eq!(answer[9..15], [0, 8, 0, 5, 0, 0]);
    // A second set the same day: exception 01 (write protect).
    let answer = exchange(&mut stream, &clock_write(1, [26, 4, 2, 8, 5, 30]), 5).await;
    assert_eq!(answer[..3], [0x01, 0x90, 0x01]);
    // A date that does not exist: exception 03.
    clock.advance(chrono::Duration::days(1));
    let answer = exchange(&mut stream, &clock_write(1, [26, 2, 30, 8, 5, 0]), 5).await;
    assert_eq!(answer[..3], [0x01, 0x90, 0x03]);
    // The next day, a set is allowed again.
    let answer = exchange(&mut stream, &clock_write(1, [26, 4, 3, 8, 6, 0]), 8).await;
    assert_eq!(answer[1], 0x10);
}

/// App. E: `01 06 C0 35 00 02 24 05` moves meter 1 to address 2, and the
/// answer comes from address 2. The manual prints it as `02 06 C0 24 36 35 00 02`;
/// the CRC (24 36 by CRC-16/MODBUS) slipped into the middle in extraction.
#[tokio::test]
async fn the_manuals_address_change_answers_from_the_new_address() {
    let clock = Clock::manual(at("2026-04-02T08:00:00Z"));
    let (bus, _) = bus(&clock, Tz::UTC, &[1, 5], |_| {});
    let (address, _stop) = serve(bus.clone(), TcpFraming::RtuOverTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let answer = exchange(&mut stream, &[0x01, 0x06, 0xC0, 0x35, 0x00, 0x02, 0x24, 0x05], 8).await;
    assert_eq!(answer, [0x02, 0x06, 0xC0, 0x35, 0x00, 0x02, 0x24, 0x36]);
    // Unit 1 is silent now: the read sent after it is the first answered.
    stream.write_all(&read_clock(1)).await.unwrap();
    let answer = exchange(&mut stream, &read_clock(2), 17).await;
    assert_eq!(answer[..2], [0x02, 0x03]);
    // Address 248 is out of range; address 5 belongs to another device.
    let mut change = vec![0x02, 0x06, 0xC0, 0x35, 0x00, 0xF8];
    change.extend_from_slice(&crc16(&change).to_le_bytes());
    assert_eq!(exchange(&mut stream, &change, 5).await[..3], [0x02, 0x86, 0x03]);
    let mut change = vec![0x02, 0x06, 0xC0, 0x35, 0x00, 0x05];
    change.extend_from_slice(&crc16(&change).to_le_bytes());
    assert_eq!(exchange(&mut stream, &change, 5).await[..3], [0x02, 0x86, 0x03]);
    // A broadcast address change is ignored (it would renumber every meter).
    let mut change = vec![0x00, 0x06, 0xC0, 0x35, 0x00, 0x09];
    change.extend_from_slice(&crc16(&change).to_le_bytes());
    stream.write_all(&change).await.unwrap();
    assert_eq!(exchange(&mut stream, &read_clock(2), 17).await[0], 2);
    let mut units = bus.units();
    units.sort_unstable();
    assert_eq!(units, [2, 5]);
}

/// A request to an absent unit gets no answer on Modbus TCP either: the
/// next request's answer (transaction 2) is the first to arrive.
#[tokio::test]
async fn an_absent_unit_never_answers() {
    let clock = Clock::manual(at("2026-04-02T08:00:00Z"));
    let (address, _stop) = serve(bus(&clock, Tz::UTC, &[1], |_| {}).0, TcpFraming::ModbusTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(&[0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x09, 0x03, 0x10, 0x40, 0x00, 0x03])
        .await
        .unwrap();
    let answer = exchange(
        &mut stream,
        &[0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x10, 0x40, 0x00, 0x03],
        15,
    )
    .await;
    assert_eq!(answer[..2], [0x00, 0x02]);
    assert_eq!(answer[6], 0x01);
}

/// A garbled frame is dropped silently, like a real device does; the
/// following good frame is answered.
#[tokio::test]
async fn a_garbled_frame_is_dropped_over_rtu_and_the_pty() {
    let clock = Clock::manual(at("2026-04-02T08:00:00Z"));
    let mut garbled = read_clock(1);
    garbled[3] ^= 0x5A;
    let good = read_clock(1);

    let (address, _stop) = serve(bus(&clock, Tz::UTC, &[1], |_| {}).0, TcpFraming::RtuOverTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(&garbled).await.unwrap();
    let answer = exchange(&mut stream, &good, 17).await;
    assert_eq!(answer[3..15], [0, 26, 0, 4, 0, 2, 0, 8, 0, 0, 0, 0]);

    let (_stop_pty, shutdown) = shutdown::channel();
    let (path, _) = spawn_pty(bus(&clock, Tz::UTC, &[1], |_| {}).0, 115_200, shutdown).unwrap();
    let mut port = tokio_serial::new(path.to_str().unwrap(), 115_200)
        .open_native_async()
        .unwrap();
    port.write_all(&garbled).await.unwrap();
    let answer = exchange(&mut port, &good, 17).await;
    assert_eq!(answer[..3], [0x01, 0x03, 12]);
    // And tokio-modbus's RTU client reads the manual's register through the pty.
    let mut client = tokio_modbus::client::rtu::attach_slave(port, Slave(1));
    let words = client.read_holding_registers(0x8010, 2).await.unwrap().unwrap();
    assert!(f32_at(&words, 0) > 0.0);
}

/// Shutting the server down (or dropping the sender) closes its connections.
#[tokio::test]
async fn servers_stop_on_the_shutdown_signal() {
    let clock = Clock::manual(Utc.with_ymd_and_hms(2026, 4, 2, 8, 0, 0).unwrap());
    let (address, stop) = serve(bus(&clock, Tz::UTC, &[1], |_| {}).0, TcpFraming::ModbusTcp).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    drop(stop);
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(ANSWER, stream.read(&mut byte))
        .await
        .expect("closed");
    assert!(matches!(read, Ok(0) | Err(_)));
}
