//! The IEC 62056-21 simulators over real sockets and a pseudo-terminal,
//! spoken to with raw bytes; and the laws of their energy history.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::protocol::iec62056::{
    Command, CommandKind, DataSet, Decoded, FrameError, MeterMessage, ProfileRequest, ProfileTime, decode_from_meter,
    parse_data_sets, parse_load_profile,
};
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::iec62056::history::{INTERVAL_SECONDS, Quantity};
use ohmnibus::sim::iec62056::session::readout_sets;
use ohmnibus::sim::iec62056::{
    EnergyDigits, Faults, IecKind, IecMeter, IecMeterConfig, ServedLine, SharedMeter, spawn_iec_tcp,
};
use proptest::prelude::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const NOW: &str = "2026-03-14T10:20:30Z";
const ACK: u8 = 0x06;
const NAK: u8 = 0x15;

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn meter(kind: IecKind, seed: u64, address: &str) -> SharedMeter {
    let mut config = IecMeterConfig::new(kind, seed);
    config.address = address.into();
    config.password = "12345678".into();
    config.billing_day = 5;
    config.billing_hour = 6;
    Arc::new(Mutex::new(IecMeter::new(config, now())))
}

async fn serve(meters: Vec<SharedMeter>, faults: Faults) -> (TcpStream, Trigger) {
    let mut line = ServedLine::new(meters, Clock::manual(now()));
    line.faults = faults;
    line.reaction = Duration::from_millis(1);
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_iec_tcp(line, "127.0.0.1:0", shutdown).await.unwrap();
    (TcpStream::connect(address).await.unwrap(), stop)
}

/// Reads one meter message; the raw bytes it took come along.
async fn receive<S: AsyncRead + Unpin>(stream: &mut S) -> (Result<MeterMessage, FrameError>, Vec<u8>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match decode_from_meter(&buffer) {
            Ok(Decoded::Complete(message, _)) => return (Ok(message), buffer),
            Ok(Decoded::Incomplete) => {}
            Err(error) => return (Err(error), buffer),
        }
        let n = tokio::time::timeout(crate::support::WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "connection closed");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

async fn ask<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> MeterMessage {
    stream.write_all(bytes).await.unwrap();
    receive(stream).await.0.expect("a valid message")
}

/// Nothing arrives within a generous reaction time.
async fn silent(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte))
        .await
        .is_err()
}

fn command(kind: CommandKind, data: &str) -> Vec<u8> {
    Command::new(kind, data).encode().unwrap()
}

fn text(message: MeterMessage) -> String {
    match message {
        MeterMessage::Data(block) => block.text,
        other => panic!("expected data, got {other:?}"),
    }
}

fn number(sets: &[DataSet], address: &str) -> f64 {
    sets.iter().find(|set| set.address == address).unwrap().values[0]
        .number()
        .unwrap()
}

#[tokio::test]
async fn the_readout_verifies_and_equals_the_model() {
    let a1000 = meter(IecKind::A1000, 7, "000000004711");
    let (mut stream, _stop) = serve(vec![a1000.clone()], Faults::default()).await;
    let ident = ask(&mut stream, b"/?000000004711!\r\n").await;
    let MeterMessage::Identification(ident) = ident else {
        panic!("{ident:?}")
    };
    assert_eq!(
        (
            ident.manufacturer.as_str(),
            ident.baud_char,
            ident.identification.as_str()
        ),
        ("BSE", b'5', "A1000")
    );
    // decode_from_meter checks the BCC.
    let sets = parse_data_sets(&text(ask(&mut stream, b"\x06050\r\n").await)).unwrap();
    let mut model = a1000.lock().unwrap();
    assert_eq!(sets, readout_sets(&mut model, now()));
    let total = number(&sets, "1-1:1.8.0");
    assert_eq!(total, model.register_at("1-1:1.8.0", now()).unwrap());
    let rates: f64 = (1..=4).map(|e| number(&sets, &format!("1-1:1.8.{e}"))).sum();
    assert!((rates - total).abs() < 1e-6, "{rates} vs {total}");
    assert!(number(&sets, "1-1:1.8.0*101") <= total);
    assert!(number(&sets, "1-1:1.8.0*102") <= number(&sets, "1-1:1.8.0*101"));
    let demand = sets.iter().find(|set| set.address == "1-1:1.6.0").unwrap();
    assert_eq!(demand.values[0].unit.as_deref(), Some("kW"));
    assert_eq!(demand.values[1].value.len(), 10, "YYMMDDhhmm");
}

#[tokio::test]
async fn only_the_addressed_meter_answers_on_a_shared_line() {
    let meters = vec![meter(IecKind::A1000, 1, "111111"), meter(IecKind::Th40c, 2, "222222")];
    let (mut stream, _stop) = serve(meters, Faults::default()).await;
    let MeterMessage::Identification(ident) = ask(&mut stream, b"/?222222!\r\n").await else {
        panic!()
    };
    assert_eq!(ident.identification, "TH40C");
    let MeterMessage::Identification(ident) = ask(&mut stream, b"/?111111!\r\n").await else {
        panic!()
    };
    assert_eq!(ident.identification, "A1000");
    stream.write_all(b"/?333333!\r\n").await.unwrap();
    assert!(silent(&mut stream).await, "an absent address gets no answer");
    stream.write_all(b"/?!\r\n").await.unwrap();
    assert!(silent(&mut stream).await, "no address on a shared line: nobody answers");
}

#[tokio::test]
async fn programming_mode_needs_the_password() {
    let th40c = meter(IecKind::Th40c, 3, "42");
    let (mut stream, _stop) = serve(vec![th40c.clone()], Faults::default()).await;
    ask(&mut stream, b"/?42!\r\n").await;
    let p0 = ask(&mut stream, b"\x06051\r\n").await;
    assert_eq!(p0, MeterMessage::Command(Command::new(CommandKind::P0, "(42)")));
    assert_eq!(
        ask(&mut stream, &command(CommandKind::P1, "(wrong)")).await,
        MeterMessage::Nak
    );
    let refused = text(ask(&mut stream, &command(CommandKind::R5, "1-1:1.8.0()")).await);
    assert_eq!(refused, "(ERROR)");
    assert_eq!(
        ask(&mut stream, &command(CommandKind::P1, "(12345678)")).await,
        MeterMessage::Ack
    );
    let read = parse_data_sets(&text(
        ask(&mut stream, &command(CommandKind::R5, "1-1:2.8.0*3()")).await,
    ))
    .unwrap();
    let expected = th40c.lock().unwrap().register_at("1-1:2.8.0*3", now()).unwrap();
    assert_eq!(read[0].values[0].number(), Some(expected));
    // Outside field programming ("PRG") a write is refused and changes nothing.
    let refused = text(ask(&mut stream, &command(CommandKind::W1, "0.9.1(103000)")).await);
    assert_eq!(refused, "(ERROR)");
    assert_eq!(th40c.lock().unwrap().clock_offset, TimeDelta::zero());
    th40c.lock().unwrap().open_field_programming(now());
    assert_eq!(
        ask(&mut stream, &command(CommandKind::W1, "0.9.1(103000)")).await,
        MeterMessage::Ack
    );
    let clock = text(ask(&mut stream, &command(CommandKind::R1, "0.9.1()")).await);
    assert_eq!(clock, "0.9.1(103000)");
    stream
        .write_all(&Command::break_session().encode().unwrap())
        .await
        .unwrap();
    assert!(silent(&mut stream).await);
}

#[tokio::test]
async fn a_load_profile_range_returns_exactly_its_intervals() {
    let a1000 = meter(IecKind::A1000, 5, "9");
    let (mut stream, _stop) = serve(vec![a1000.clone()], Faults::default()).await;
    ask(&mut stream, b"/?9!\r\n").await;
    ask(&mut stream, b"\x06051\r\n").await;
    ask(&mut stream, &command(CommandKind::P1, "(12345678)")).await;
    let at = |s: &str| ProfileTime {
        season: 0,
        time: s.parse().unwrap(),
    };
    let request = ProfileRequest {
        profile: 1,
        from: Some(at("2026-02-01T00:00:00")),
        to: Some(at("2026-02-01T02:00:00")),
    };
    let answer = text(ask(&mut stream, &command(CommandKind::R5, &request.encode().unwrap())).await);
    let blocks = parse_load_profile(&answer).unwrap();
    assert_eq!(blocks.len(), 1);
    let block = &blocks[0];
    // Rows are stamped with their interval's end: 00:00 to 02:00 inclusive.
    assert_eq!(block.rows.len(), 9);
    assert_eq!(block.start, "2026-02-01T00:00:00".parse().unwrap());
    assert_eq!(block.channels[0], ("1.29.0".to_owned(), "kWh".to_owned()));
    let mut model = a1000.lock().unwrap();
    let from: DateTime<Utc> = "2026-02-01T00:00:00Z".parse().unwrap();
    let to: DateTime<Utc> = "2026-02-01T02:00:00Z".parse().unwrap();
    let intervals = model.history().intervals(from, to, now());
    for (row, interval) in block.rows.iter().zip(&intervals) {
        let wh = interval.get(Quantity::ImportActive);
        assert_eq!(row[0], Some(wh as f64 / 1000.0));
    }
    // The first row's +A is the register's growth over its quarter hour.
    let delta = model.register_at("1-1:1.8.0", from).unwrap()
        - model.register_at("1-1:1.8.0", from - TimeDelta::minutes(15)).unwrap();
    assert!((block.rows[0][0].unwrap() - delta).abs() < 1e-9);
}

#[tokio::test]
async fn a_bad_bcc_is_right_after_nak() {
    let faults = Faults {
        bad_bcc_once: true,
        ..Faults::default()
    };
    let (mut stream, _stop) = serve(vec![meter(IecKind::A1000, 1, "1")], faults).await;
    ask(&mut stream, b"/?1!\r\n").await;
    stream.write_all(b"\x06050\r\n").await.unwrap();
    assert!(matches!(receive(&mut stream).await.0, Err(FrameError::BadBcc { .. })));
    let repeated = ask(&mut stream, &[NAK]).await;
    assert!(text(repeated).ends_with("!\r\n"));
}

#[tokio::test]
async fn partial_blocks_follow_ack_and_repeat_after_nak() {
    let faults = Faults {
        partial_lines: Some(10),
        ..Faults::default()
    };
    let model = meter(IecKind::A1000, 1, "1");
    let (mut stream, _stop) = serve(vec![model.clone()], faults).await;
    ask(&mut stream, b"/?1!\r\n").await;
    let MeterMessage::Data(first) = ask(&mut stream, b"\x06050\r\n").await else {
        panic!()
    };
    assert!(!first.last);
    assert_eq!(first.text.lines().count(), 10);
    let MeterMessage::Data(again) = ask(&mut stream, &[NAK]).await else {
        panic!()
    };
    assert_eq!(again, first);
    let mut text = first.text;
    loop {
        let MeterMessage::Data(block) = ask(&mut stream, &[ACK]).await else {
            panic!()
        };
        text.push_str(&block.text);
        if block.last {
            break;
        }
    }
    let sets = parse_data_sets(&text).unwrap();
    assert_eq!(sets, readout_sets(&mut model.lock().unwrap(), now()));
}

#[tokio::test]
async fn garbage_comes_before_the_answer_and_silence_is_silent() {
    let faults = Faults {
        garbage: b"\x00\x7f~~".to_vec(),
        ..Faults::default()
    };
    let (mut stream, _stop) = serve(vec![meter(IecKind::Th40c, 1, "1")], faults).await;
    stream.write_all(b"/?1!\r\n").await.unwrap();
    let (message, raw) = receive(&mut stream).await;
    assert!(raw.starts_with(b"\x00\x7f~~/THM5TH40C"), "{raw:?}");
    assert!(matches!(message, Ok(MeterMessage::Identification(_))));

    let faults = Faults {
        silent: true,
        ..Faults::default()
    };
    let (mut stream, _stop) = serve(vec![meter(IecKind::Th40c, 1, "1")], faults).await;
    stream.write_all(b"/?1!\r\n").await.unwrap();
    assert!(silent(&mut stream).await);
}

#[tokio::test]
async fn the_readout_works_over_a_pseudo_terminal() {
    let model = meter(IecKind::Th40c, 4, "77");
    let mut line = ServedLine::new(vec![model.clone()], Clock::manual(now()));
    line.reaction = Duration::from_millis(1);
    let (_stop, shutdown) = shutdown::channel();
    let (path, _) = ohmnibus::sim::iec62056::spawn_iec_pty(line, shutdown).unwrap();
    let mut port = tokio_serial::SerialStream::open(&tokio_serial::new(path.to_string_lossy(), 9600)).unwrap();
    // One meter on the line: a sign-on without address reaches it.
    ask(&mut port, b"/?!\r\n").await;
    let sets = parse_data_sets(&text(ask(&mut port, b"\x06050\r\n").await)).unwrap();
    assert_eq!(
        number(&sets, "1-1:1.8.0"),
        model.lock().unwrap().register_at("1-1:1.8.0", now()).unwrap()
    );
}

#[test]
fn billing_sets_are_the_registers_at_the_resets_and_never_exceed_now() {
    let shared = meter(IecKind::A1000, 9, "1");
    let mut model = shared.lock().unwrap();
    let resets = model.resets(now(), 16);
    assert_eq!(resets[0], "2026-03-05T06:00:00Z".parse::<DateTime<Utc>>().unwrap());
    for (k, reset) in resets.iter().enumerate() {
        for c in [1, 2, 5, 6, 7, 8] {
            for e in 0..=4 {
                let set = model.register_at(&format!("1-1:{c}.8.{e}*{}", 101 + k), now()).unwrap();
                assert_eq!(set, model.energy_at(c, e, *reset).unwrap());
                assert!(set <= model.register_at(&format!("1-1:{c}.8.{e}"), now()).unwrap());
            }
        }
    }
}

#[test]
fn an_a1000_register_on_seven_digits_rolls_over_past_99999_99_kwh() {
    // A meter whose import register shows 99 998.00 kWh at a quarter hour:
    // within a day it passes 99 999.99 and starts again from 00000.00
    // (A1000 manual 1.1, item 5), having counted the energy of its
    // intervals since.
    let start: DateTime<Utc> = "2026-03-14T10:15:00Z".parse().unwrap();
    let mut config = IecMeterConfig::new(IecKind::A1000, 9);
    config.energy_digits = Some(EnergyDigits::a1000(99_998.0));
    let mut model = IecMeter::new(config, start);
    let shown = |model: &mut IecMeter, at| model.value("1-1:1.8.0", at).unwrap()[0].value.clone();
    assert_eq!(shown(&mut model, start), "99998.00");
    let later = start + TimeDelta::days(1);
    let counted_wh: i64 = model
        .history()
        .intervals(start + TimeDelta::seconds(INTERVAL_SECONDS), later, later)
        .iter()
        .map(|i| i.get(Quantity::ImportActive))
        .sum();
    assert!(counted_wh > 2000, "a day's import of {counted_wh} Wh passes the top");
    let text = shown(&mut model, later);
    assert_eq!(text.len(), 8, "five whole digits, two decimals: {text}");
    // Hundredths of a kWh are 10 Wh: the register truncates to them.
    let hundredths = (99_998_000 + counted_wh - 100_000_000) / 10;
    assert_eq!(text, format!("{:05}.{:02}", hundredths / 100, hundredths % 100));
    // The tariff registers roll over on their own, within the same range.
    for rate in 1..=4 {
        let rate_text = model.value(&format!("1-1:1.8.{rate}"), later).unwrap()[0].value.clone();
        assert_eq!(rate_text.len(), 8, "{rate_text}");
        assert!((0.0..100_000.0).contains(&number_of(&rate_text)), "{rate_text}");
    }
}

fn number_of(text: &str) -> f64 {
    text.parse().unwrap()
}

#[test]
fn a_th40c_shifts_its_sets_at_midnight_on_the_first_in_its_zone() {
    let mut config = IecMeterConfig::new(IecKind::Th40c, 14);
    config.zone = "Europe/Rome".parse().unwrap();
    // 1 December 00:00 in Rome (UTC+1) is 30 November 23:00 UTC.
    let reset: DateTime<Utc> = "2026-11-30T23:00:00Z".parse().unwrap();
    let mut model = IecMeter::new(config, reset - TimeDelta::hours(1));
    let just_before = reset - TimeDelta::seconds(1);
    let after = reset + TimeDelta::minutes(10);
    for c in 1..=10u8 {
        let last = model.register_at(&format!("1-1:{c}.8.0*1"), just_before).unwrap();
        // *2 ← *1, *1 ← the register at the reset.
        assert_eq!(model.register_at(&format!("1-1:{c}.8.0*2"), after).unwrap(), last);
        assert_eq!(
            model.register_at(&format!("1-1:{c}.8.0*1"), after).unwrap(),
            model.register_at(&format!("1-1:{c}.8.0"), reset).unwrap()
        );
    }
}

/// One history for every property case (building one takes a while).
fn laws_meter() -> IecMeter {
    static METER: std::sync::LazyLock<IecMeter> =
        std::sync::LazyLock::new(|| IecMeter::new(IecMeterConfig::new(IecKind::Th40c, 11), now()));
    METER.clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn interval_sums_equal_register_deltas(a in 0i64..51_000, length in 0i64..300) {
        let mut model = laws_meter();
        let step = TimeDelta::seconds(INTERVAL_SECONDS);
        let from = model.history().epoch() + step * a as i32;
        let to = from + step * length as i32;
        let intervals = model.history().intervals(from + step, to, now());
        for quantity in Quantity::ALL {
            let sum: i64 = intervals.iter().map(|interval| interval.get(quantity)).sum();
            let delta = model.history().register_wh(quantity, 0, to) - model.history().register_wh(quantity, 0, from);
            prop_assert_eq!(sum, delta);
        }
    }

    #[test]
    fn rates_sum_to_the_total_at_any_instant(seconds in 0i64..(540 * 86_400)) {
        let mut model = laws_meter();
        let at = model.history().epoch() + TimeDelta::seconds(seconds);
        for quantity in Quantity::ALL {
            let rates: i64 = (1..=4).map(|rate| model.history().register_wh(quantity, rate, at)).sum();
            prop_assert_eq!(rates, model.history().register_wh(quantity, 0, at));
        }
    }
}

#[test]
fn event_registers_count_the_event_list() {
    use ohmnibus::sim::iec62056::events::{LoggedEventKind, events};
    let shared = meter(IecKind::A1000, 13, "1");
    let mut model = shared.lock().unwrap();
    let epoch = model.history().epoch();
    let sets = readout_sets(&mut model, now());
    let value = |address: &str| {
        sets.iter().find(|set| set.address == address).unwrap().values[0]
            .value
            .clone()
    };
    for (n, kind) in [
        (4, LoggedEventKind::VoltageLoss),
        (5, LoggedEventKind::PhaseFailure),
        (7, LoggedEventKind::OverCurrent),
    ] {
        let mut all = 0;
        for phase in 1..=3u8 {
            let list = events(13, kind, phase, epoch, now());
            assert!(!list.is_empty(), "{kind:?} phase {phase}: a year and a half has events");
            all += list.len();
            assert_eq!(value(&format!("0-0:C.50.{n}1*0{phase}")), list.len().to_string());
            let minutes: i64 = list
                .iter()
                .map(|event| (event.stop.min(now()) - event.start).num_minutes())
                .sum();
            assert_eq!(value(&format!("0-0:C.50.{n}1*1{phase}")), minutes.to_string());
            let last = list.last().unwrap();
            assert_eq!(
                value(&format!("0-0:C.50.{n}1*2{phase}")),
                last.start.format("%y%m%d%H%M").to_string()
            );
        }
        assert_eq!(value(&format!("0-0:C.50.{n}1*00")), all.to_string());
    }
    let downs = events(13, LoggedEventKind::PowerDown, 0, epoch, now());
    assert_eq!(value("0-0:C.7.0"), downs.len().to_string());
}

#[test]
fn a_load_profile_starts_a_new_block_when_summer_time_begins() {
    let mut config = IecMeterConfig::new(IecKind::Th40c, 3);
    config.zone = chrono_tz::Europe::Rome;
    let mut model = IecMeter::new(config, now());
    let at = |s: &str| ProfileTime {
        season: 0,
        time: s.parse().unwrap(),
    };
    let request = ProfileRequest {
        profile: 1,
        from: Some(at("2025-03-30T00:00:00")),
        to: Some(at("2025-03-30T04:00:00")),
    };
    let blocks = model.load_profile(&request, now());
    let shape: Vec<_> = blocks
        .iter()
        .map(|block| (block.season, block.start, block.rows.len()))
        .collect();
    // Summer time begins at 01:00 UTC (02:00 CET becomes 03:00 CEST): rows
    // end 00:00–01:45 CET, then 03:00–04:00 CEST; the interval ending at
    // the change is stamped in the time in force at its end.
    assert_eq!(
        shape,
        vec![
            (0, "2025-03-30T00:00:00".parse().unwrap(), 8),
            (1, "2025-03-30T03:00:00".parse().unwrap(), 5)
        ]
    );
}
