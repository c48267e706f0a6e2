//! The TH40C simulator, driven by tokio-modbus's client over real sockets:
//! the manual's register map, exceptions and write rules (TH40C App. E).

use std::time::Duration;

use chrono::{Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::clock::SimClock;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_pty, spawn_tcp};
use tokio::sync::watch;
use tokio_modbus::client::{Context, Reader, Writer, rtu, tcp};
use tokio_modbus::{ExceptionCode, Slave};
use tokio_serial::SerialPortBuilderExt;

fn start_instant() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 10, 20, 30).unwrap()
}

fn bus(clock: &SimClock, units: &[u8]) -> SimBus {
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    SimBus::new(
        units
            .iter()
            .map(|&unit| {
                SimDevice::new(
                    profile.clone(),
                    unit,
                    Th40cModel::new(u64::from(unit), Tz::UTC, clock.now()),
                    clock.clone(),
                )
            })
            .collect(),
    )
}

async fn rtu_client(clock: &SimClock, units: &[u8]) -> (Context, watch::Sender<bool>) {
    let (stop, shutdown) = watch::channel(false);
    let (address, _) = spawn_tcp(bus(clock, units), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    (rtu::attach_slave(stream, Slave(units[0])), stop)
}

fn f32_at(words: &[u16], index: usize) -> f64 {
    f64::from(f32::from_bits(
        (u32::from(words[index]) << 16) | u32::from(words[index + 1]),
    ))
}

#[tokio::test]
async fn serves_the_map_and_refuses_unmapped_addresses() {
    let clock = SimClock::manual(start_instant());
    let (mut client, _stop) = rtu_client(&clock, &[1]).await;
    let energy = client.read_holding_registers(0x8010, 10).await.unwrap().unwrap();
    let total = f32_at(&energy, 0);
    let rates: f64 = (1..=4).map(|r| f32_at(&energy, 2 * r)).sum();
    assert!(total > 0.0);
    assert!(
        (total - rates).abs() < 1e-5 * total,
        "rates {rates} sum to total {total}"
    );
    // 0x801A-0x801F are not in App. G: any read touching them gets exception 02.
    let refused = client.read_holding_registers(0x8018, 4).await.unwrap();
    assert_eq!(refused, Err(ExceptionCode::IllegalDataAddress));
    assert_eq!(
        client.read_holding_registers(0x0000, 1).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
    // Phase powers add up to the total (0xA630 total, 0xA632-0xA636 phases).
    let power = client.read_holding_registers(0xA630, 8).await.unwrap().unwrap();
    let phases: f64 = (1..=3).map(|k| f32_at(&power, 2 * k)).sum();
    assert!((f32_at(&power, 0) - phases).abs() < 1e-4);
    // Power factors within [-1, 1].
    let factors = client.read_holding_registers(0xA650, 8).await.unwrap().unwrap();
    assert!((0..4).all(|k| f32_at(&factors, 2 * k).abs() <= 1.0));
    // The clock registers follow the simulated clock.
    let clock_words = client.read_holding_registers(0x1040, 6).await.unwrap().unwrap();
    assert_eq!(clock_words, vec![26, 3, 14, 10, 20, 30]);
}

#[tokio::test]
async fn energies_never_go_backwards_as_time_passes() {
    let clock = SimClock::manual(start_instant());
    let (mut client, _stop) = rtu_client(&clock, &[1]).await;
    let mut previous = client.read_holding_registers(0x8010, 10).await.unwrap().unwrap();
    for _ in 0..12 {
        clock.advance(chrono::Duration::minutes(47));
        let now = client.read_holding_registers(0x8010, 10).await.unwrap().unwrap();
        for k in 0..5 {
            assert!(f32_at(&now, 2 * k) >= f32_at(&previous, 2 * k));
        }
        previous = now;
    }
}

#[tokio::test]
async fn clock_writes_follow_the_manual() {
    let clock = SimClock::manual(start_instant());
    let (mut client, _stop) = rtu_client(&clock, &[1]).await;
    let write = |at: chrono::DateTime<Utc>| {
        let bytes = [
            (at.year() % 100) as u8,
            at.month() as u8,
            at.day() as u8,
            at.hour() as u8,
            at.minute() as u8,
            at.second() as u8,
        ];
        [
            u16::from_be_bytes([bytes[0], bytes[1]]),
            u16::from_be_bytes([bytes[2], bytes[3]]),
            u16::from_be_bytes([bytes[4], bytes[5]]),
        ]
    };
    // Six minutes away: refused.
    let far = start_instant() + chrono::Duration::minutes(6);
    assert_eq!(
        client.write_multiple_registers(0x7000, &write(far)).await.unwrap(),
        Err(ExceptionCode::IllegalDataValue)
    );
    // Four minutes: accepted, and the clock registers show it.
    let near = start_instant() + chrono::Duration::minutes(4);
    assert_eq!(
        client.write_multiple_registers(0x7000, &write(near)).await.unwrap(),
        Ok(())
    );
    let words = client.read_holding_registers(0x1043, 3).await.unwrap().unwrap();
    assert_eq!(words, vec![10, 24, 30]);
    // A second set the same day: refused.
    let again = near + chrono::Duration::minutes(1);
    assert_eq!(
        client.write_multiple_registers(0x7000, &write(again)).await.unwrap(),
        Err(ExceptionCode::IllegalFunction)
    );
    // The next day it may be set again.
    clock.advance(chrono::Duration::days(1));
    let next_day = near + chrono::Duration::days(1) + chrono::Duration::minutes(2);
    assert_eq!(
        client.write_multiple_registers(0x7000, &write(next_day)).await.unwrap(),
        Ok(())
    );
}

#[tokio::test]
async fn a_broadcast_clock_set_gets_no_answer_but_takes_effect() {
    let clock = SimClock::manual(start_instant());
    let (_stop, shutdown) = watch::channel(false);
    let (address, _) = spawn_tcp(bus(&clock, &[1, 2]), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    let mut client = rtu::attach_slave(tokio::net::TcpStream::connect(address).await.unwrap(), Slave(0));
    // App. E layout: YY MM DD hh mm ss, here 26-03-14 10:22:00.
    let words = [0x1A03, 0x0E0A, 0x1600];
    let answer = tokio::time::timeout(
        Duration::from_millis(300),
        client.write_multiple_registers(0x7000, &words),
    )
    .await;
    assert!(answer.is_err(), "nothing answers a broadcast");
    for unit in [1, 2] {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut client = rtu::attach_slave(stream, Slave(unit));
        let time = client.read_holding_registers(0x1043, 3).await.unwrap().unwrap();
        assert_eq!(time, vec![10, 22, 0], "unit {unit} took the broadcast");
    }
}

#[tokio::test]
async fn address_change_answers_from_the_new_address() {
    let clock = SimClock::manual(start_instant());
    let (stop, shutdown) = watch::channel(false);
    let (address, _) = spawn_tcp(bus(&clock, &[1]), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    // Raw bytes from App. E: 01 06 C0 35 00 02 24 05.
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(&[0x01, 0x06, 0xC0, 0x35, 0x00, 0x02, 0x24, 0x05])
        .await
        .unwrap();
    let mut answer = [0u8; 8];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[..6], [0x02, 0x06, 0xC0, 0x35, 0x00, 0x02]);
    // Unit 1 is gone; unit 2 answers.
    let mut client = rtu::attach_slave(stream, Slave(2));
    assert!(client.read_holding_registers(0x1040, 3).await.unwrap().is_ok());
    // An address out of range is refused.
    assert_eq!(
        client.write_single_register(0xC035, 248).await.unwrap(),
        Err(ExceptionCode::IllegalDataValue)
    );
    drop(stop);
}

#[tokio::test]
async fn modbus_tcp_and_the_pseudo_terminal_serve_the_same_meter() {
    let clock = SimClock::manual(start_instant());
    let (_stop, shutdown) = watch::channel(false);
    let (address, _) = spawn_tcp(
        bus(&clock, &[1]),
        "127.0.0.1:0",
        TcpFraming::ModbusTcp,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let mut tcp_client = tcp::connect_slave(address, Slave(1)).await.unwrap();
    let over_tcp = tcp_client.read_holding_registers(0x8010, 10).await.unwrap().unwrap();

    let (path, _) = spawn_pty(bus(&clock, &[1]), 115_200, shutdown).unwrap();
    let port = tokio_serial::new(path.to_str().unwrap(), 115_200)
        .open_native_async()
        .unwrap();
    let mut serial_client = rtu::attach_slave(port, Slave(1));
    let over_pty = serial_client.read_holding_registers(0x8010, 10).await.unwrap().unwrap();
    assert_eq!(over_tcp, over_pty, "same seed, same clock, same registers");
    assert_eq!(
        serial_client.read_holding_registers(0x9000, 2).await.unwrap(),
        Err(ExceptionCode::IllegalDataAddress)
    );
}
