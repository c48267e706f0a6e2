//! The simulators against a Modbus master we did not write: Debian's
//! `mbpoll` (1.4.11, on libmodbus 3.1), run as a process over Modbus TCP, RTU
//! on a pseudo-terminal and RTU through a transparent gateway. mbpoll has no
//! RTU-over-TCP mode (`-m` is `rtu` or `tcp`), so for the gateway the test
//! plays the gateway's serial side: a pseudo-terminal whose bytes it copies
//! unchanged to and from the simulator's RTU-over-TCP port.
//!
//! mbpoll's options (`mbpoll -h`): `-0` makes `-r` the PDU address (it is
//! 1-based without it), `-B` reads 32-bit values high word first (low word
//! first without it), `-1` polls once, `-o` is the answer timeout in seconds.
//! It prints floats with six significant digits (`%g`), so every block is
//! also read as `-t 4:hex`: those words carry the full f32.
//!
//! What mbpoll read is compared with each simulator's served record, which
//! holds the model's values before encoding. The clocks are manual and never
//! move while mbpoll reads, so the values hold still. Needs `mbpoll` on PATH
//! (`scripts/test` installs it through `scripts/lib/mbpoll.sh`).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use ohmnibus::device::profile::{Profile, Register, RegisterGroup};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::device::value_type::{ValueType, WordOrder};
use ohmnibus::domain::clock::Clock;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::concentrator::{ConcentratorModel, MODE_GME_S0};
use ohmnibus::sim::countis::{CountisModel, Firmware, Variant};
use ohmnibus::sim::device::{Served, SimDevice};
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_pty, spawn_tcp};
use tokio::net::TcpStream;
use tokio::process::Command;

/// Wall-clock bound on one mbpoll process; only a hung run waits it out.
const RUN_LIMIT: Duration = crate::support::WAIT;

/// mbpoll's answer timeout (`-o`, seconds) for requests that are answered.
const ANSWER_TIMEOUT: &str = "2";

/// The TH40C's line (App. E): 9600 baud, 8N1.
const BAUD: u32 = 9600;

/// A float as mbpoll prints it (`%g`: six significant digits) is within half
/// a unit of the sixth digit, 5e-6 relative; plus the f32 rounding.
const PRINTED_FLOAT: f64 = 6e-6;

/// An f32 on the wire against the model's f64: 2^-24 relative, with margin.
const WIRE_FLOAT: f64 = 1e-6;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Where mbpoll connects.
#[derive(Debug, Clone)]
enum Link {
    Tcp(SocketAddr),
    /// A serial device path, spoken to in RTU at [`BAUD`] 8N1.
    Serial(PathBuf),
}

impl Link {
    fn options(&self) -> Vec<String> {
        let options: &[&str] = match self {
            Link::Tcp(_) => &["-m", "tcp"],
            Link::Serial(_) => &["-m", "rtu", "-d", "8", "-s", "1", "-P", "none"],
        };
        let mut options: Vec<String> = options.iter().map(|o| (*o).to_owned()).collect();
        match self {
            Link::Tcp(address) => options.extend(["-p".to_owned(), address.port().to_string()]),
            Link::Serial(_) => options.extend(["-b".to_owned(), BAUD.to_string()]),
        }
        options
    }

    fn target(&self) -> String {
        match self {
            Link::Tcp(address) => address.ip().to_string(),
            Link::Serial(path) => path.display().to_string(),
        }
    }
}

/// One finished mbpoll run.
#[derive(Debug)]
struct Run {
    command: String,
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The `[reference]: value` lines, value as its first word (`-t 4`
    /// prints `37009 (-28527)`: unsigned, then signed).
    fn values(&self) -> Vec<(u32, String)> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let (reference, value) = line.strip_prefix('[')?.split_once("]:")?;
                let value = value.split_whitespace().next()?;
                Some((reference.parse().ok()?, value.to_owned()))
            })
            .collect()
    }

    fn describe(&self) -> String {
        format!(
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.command, self.stdout, self.stderr
        )
    }
}

/// Runs `mbpoll <options> <link> <target> <values>` once, bounded by [`RUN_LIMIT`].
async fn mbpoll(link: &Link, options: &[String], values: &[&str]) -> Run {
    let mut command = Command::new("mbpoll");
    command
        .args(link.options())
        .args(options)
        .arg(link.target())
        .args(values)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let text = format!("{:?}", command.as_std());
    let output = match tokio::time::timeout(RUN_LIMIT, command.output()).await {
        Err(_) => panic!("{text}: no exit within {RUN_LIMIT:?}"),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "mbpoll is not installed, and these tests need it as the independent Modbus master: \
             run scripts/test (it installs mbpoll through scripts/lib/mbpoll.sh) or `apt-get install mbpoll`"
        ),
        Ok(Err(error)) => panic!("{text}: {error}"),
        Ok(Ok(output)) => output,
    };
    Run {
        command: text,
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The options of a one-shot read of `count` values of `kind` (`4:hex`,
/// `4:float`, …) from PDU address `start` of `unit`. `order` matters only to
/// 32-bit kinds: `-B` for high word first, mbpoll's default is low first.
fn read_options(unit: u8, start: u16, count: usize, kind: &str, order: WordOrder, timeout: &str) -> Vec<String> {
    let mut options: Vec<String> = ["-a", &unit.to_string(), "-0", "-r", &start.to_string()]
        .into_iter()
        .chain(["-c", &count.to_string(), "-t", kind, "-1", "-o", timeout])
        .map(str::to_owned)
        .collect();
    if order == WordOrder::HighFirst {
        options.push("-B".to_owned());
    }
    options
}

/// Reads `count` values of `kind` and checks mbpoll printed one per
/// reference from `start` (a float or `4:int` takes two references).
async fn read(link: &Link, unit: u8, start: u16, count: usize, kind: &str, order: WordOrder) -> Vec<String> {
    let run = mbpoll(
        link,
        &read_options(unit, start, count, kind, order, ANSWER_TIMEOUT),
        &[],
    )
    .await;
    assert!(run.success, "{}", run.describe());
    let width = if kind.ends_with("float") || kind.ends_with(":int") {
        2
    } else {
        1
    };
    let values = run.values();
    let references: Vec<u32> = values.iter().map(|(reference, _)| *reference).collect();
    let expected: Vec<u32> = (0..count as u32).map(|k| u32::from(start) + width * k).collect();
    assert_eq!(references, expected, "{}", run.describe());
    values.into_iter().map(|(_, value)| value).collect()
}

/// The raw registers of `count` addresses from `start`, as `-t 4:hex` printed them.
async fn read_words(link: &Link, unit: u8, start: u16, count: u16) -> Vec<u16> {
    read(link, unit, start, usize::from(count), "4:hex", WordOrder::LowFirst)
        .await
        .iter()
        .map(|word| {
            let digits = word.strip_prefix("0x").unwrap_or_else(|| panic!("not hex: {word}"));
            u16::from_str_radix(digits, 16).unwrap()
        })
        .collect()
}

/// The simulated model of a profile. Every shipped profile must have one:
/// a profile added without a model fails here rather than go unchecked.
fn device(profile: Arc<Profile>, unit: u8, zone: Tz, clock: &Clock) -> SimDevice {
    let seed = u64::from(unit) + 7;
    match profile.name.as_str() {
        "th40c" => SimDevice::new(profile, unit, Th40cModel::new(seed, zone, clock.now()), clock.clone()),
        // V201 firmware: it answers every register of the profile.
        name @ ("countis-e33" | "countis-e43" | "countis-e44") => {
            let variant = match name {
                "countis-e33" => Variant::E33,
                "countis-e43" => Variant::E43,
                _ => Variant::E44,
            };
            let model = CountisModel::new(variant, Firmware::V201, seed, zone, clock.now());
            SimDevice::new(profile, unit, model, clock.clone())
        }
        "pulse-concentrator" => {
            let model = ConcentratorModel::new(seed, zone, clock.now(), MODE_GME_S0);
            SimDevice::new(profile, unit, model, clock.clone())
        }
        other => panic!("no simulator model for the shipped profile {other}: add it to tests/mbpoll.rs"),
    }
}

/// A bus of one device of `profile` at `unit`, its clock already 30 hours
/// past the model's start (so demands and their time stamps exist), frozen.
fn one_device(profile: &str, unit: u8, zone: Tz) -> (SimBus, Served, Clock) {
    let clock = Clock::manual(at("2026-11-20T11:34:56Z"));
    let profile = ProfileSet::builtin()
        .get(profile)
        .unwrap_or_else(|| panic!("{profile}"));
    let device = device(profile, unit, zone, &clock);
    clock.advance(chrono::Duration::hours(30));
    let served = device.served();
    (SimBus::new(vec![device]), served, clock)
}

async fn serve_tcp(bus: SimBus, framing: TcpFraming) -> (SocketAddr, Trigger) {
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_tcp(bus, "127.0.0.1:0", framing, shutdown).await.unwrap();
    (address, stop)
}

fn serve_pty(bus: SimBus) -> (Link, Trigger) {
    let (stop, shutdown) = shutdown::channel();
    let (path, _) = spawn_pty(bus, BAUD, shutdown).unwrap();
    (Link::Serial(path), stop)
}

/// The serial side of a transparent RTU gateway: a pseudo-terminal whose
/// bytes go unchanged to and from `address` (an RTU-over-TCP port).
async fn gateway(address: SocketAddr) -> (Link, tokio::task::JoinHandle<()>) {
    let (mut serial, port) = tokio_serial::SerialStream::pair().expect("a pseudo-terminal");
    let path = serialport::SerialPort::name(&port).expect("the pty's path");
    let mut tcp = TcpStream::connect(address).await.unwrap();
    let task = tokio::spawn(async move {
        // Keep the pty's device end open between mbpoll runs.
        let _port = port;
        let _ = tokio::io::copy_bidirectional(&mut serial, &mut tcp).await;
    });
    (Link::Serial(PathBuf::from(path)), task)
}

/// Registers of one block that mbpoll decodes itself with one read: runs of
/// floats, or of 32-bit integers, in one word order.
fn typed_runs<'a>(profile: &'a Profile, registers: &[usize]) -> Vec<(&'static str, WordOrder, Vec<&'a Register>)> {
    let mut runs: Vec<(&'static str, WordOrder, Vec<&Register>)> = Vec::new();
    for &index in registers {
        let register = &profile.registers[index];
        let kind = match register.value_type {
            ValueType::F32 => "4:float",
            ValueType::I32 | ValueType::U32 => "4:int",
            _ => continue,
        };
        let order = profile.word_order(register);
        match runs.last_mut() {
            Some((k, o, run))
                if *k == kind && *o == order && run.last().unwrap().end() == u32::from(register.address) =>
            {
                run.push(register);
            }
            _ => runs.push((kind, order, vec![register])),
        }
    }
    runs
}

/// A register's value decoded from its words in the test, independently of
/// the crate's decoder: raw, before scaling.
fn from_words(register: &Register, words: &[u16], order: WordOrder) -> f64 {
    let pair = || match order {
        WordOrder::HighFirst => (u32::from(words[0]) << 16) | u32::from(words[1]),
        WordOrder::LowFirst => (u32::from(words[1]) << 16) | u32::from(words[0]),
    };
    let number = |w: &[u16]| f64::from(u32::from(w[0]) * 10_000 + u32::from(w[1]) * 100 + u32::from(w[2]));
    match register.value_type {
        ValueType::U16 | ValueType::Mmdd | ValueType::Hhmm => f64::from(words[0]),
        ValueType::I16 => f64::from(words[0] as i16),
        ValueType::U32 => f64::from(pair()),
        ValueType::I32 => f64::from(pair() as i32),
        ValueType::F32 => f64::from(f32::from_bits(pair())),
        ValueType::DateYmd | ValueType::TimeHms => number(words),
        // YEAR MONTH DAY HOUR MIN SEC as one number, as they stand.
        ValueType::Ymdhms => words.iter().fold(0.0, |n, &w| n * 100.0 + f64::from(w)),
    }
}

/// How far the wire value may be from the model's: f32 rounding, or half a
/// step of an integer register (the model's value is not rounded).
fn wire_tolerance(register: &Register, served: f64) -> f64 {
    match register.value_type {
        ValueType::F32 => WIRE_FLOAT * served.abs(),
        _ => 0.5 * register.scale.abs() * (1.0 + 1e-9),
    }
}

/// Checks `value` (engineering units) against the served record: under
/// `obis`, or split by sign between `obis` and `obis_negative`.
fn check_served(
    register: &Register,
    value: f64,
    served: &HashMap<String, (f64, Option<DateTime<Utc>>)>,
    tolerance: impl Fn(f64) -> f64,
    what: &str,
) {
    let expect = |code: String, value: f64| {
        let (model, _) = *served
            .get(&code)
            .unwrap_or_else(|| panic!("{what}: {code} not in the served record"));
        assert!(
            (value - model).abs() <= tolerance(model),
            "{what}: 0x{:04X} {code}: mbpoll read {value}, the model served {model}",
            register.address
        );
    };
    match &register.obis_negative {
        Some(negative) => {
            expect(register.obis.to_string(), value.max(0.0));
            expect(negative.to_string(), (-value).max(0.0));
        }
        None => expect(register.obis.to_string(), value),
    }
}

/// Reads every realtime and energy block of `profile` from `unit` with
/// mbpoll (raw words, and floats and 32-bit integers as mbpoll decodes them)
/// and compares every register with the served record. Returns the number
/// of registers checked.
async fn check_every_block(link: &Link, profile: &Profile, unit: u8, served: &Served, zone: Tz) -> usize {
    let what = format!("{} unit {unit} over {link:?}", profile.name);
    let mut words: HashMap<u16, u16> = HashMap::new();
    let mut printed: HashMap<u16, String> = HashMap::new();
    let mut checked = Vec::new();
    for group in RegisterGroup::ALL {
        for block in profile.blocks(group) {
            let block_words = read_words(link, unit, block.start, block.count).await;
            words.extend((block.start..).zip(block_words));
            for (kind, order, run) in typed_runs(profile, &block.registers) {
                let start = run[0].address;
                let values = read(link, unit, start, run.len(), kind, order).await;
                printed.extend(run.iter().map(|r| r.address).zip(values));
            }
            checked.extend(block.registers.iter().map(|&index| &profile.registers[index]));
        }
    }
    let served = served.lock().unwrap().clone();
    let mut codes = BTreeSet::new();
    for register in &checked {
        let order = profile.word_order(register);
        let own: Vec<u16> = (register.address..)
            .take(usize::from(register.value_type.width()))
            .map(|address| words[&address])
            .collect();
        let raw = from_words(register, &own, order);
        if register.value_type.is_timestamp_part() {
            // The demand's capture time in the meter's zone, 0 when it has none.
            let (_, captured) = served[&register.obis.to_string()];
            let local = captured.map(|at| at.with_timezone(&zone));
            let expected = match register.value_type {
                ValueType::Mmdd => local.map_or(0.0, |at| f64::from(at.month() * 100 + at.day())),
                ValueType::Hhmm => local.map_or(0.0, |at| f64::from(at.hour() * 100 + at.minute())),
                // The simulator sends the year in two digits, as its clock.
                _ => local.map_or(0.0, |at| {
                    [
                        at.year() as u32 % 100,
                        at.month(),
                        at.day(),
                        at.hour(),
                        at.minute(),
                        at.second(),
                    ]
                    .iter()
                    .fold(0.0, |n, &part| n * 100.0 + f64::from(part))
                }),
            };
            assert_eq!(raw, expected, "{what}: 0x{:04X}", register.address);
            continue;
        }
        codes.insert(register.obis.to_string());
        codes.extend(register.obis_negative.as_ref().map(ToString::to_string));
        check_served(
            register,
            raw * register.scale,
            &served,
            |model| wire_tolerance(register, model),
            &format!("{what}, words"),
        );
        let Some(text) = printed.get(&register.address) else {
            continue;
        };
        let value: f64 = text
            .parse()
            .unwrap_or_else(|_| panic!("{what}: 0x{:04X}: mbpoll printed {text}", register.address));
        if register.value_type == ValueType::F32 {
            check_served(
                register,
                value * register.scale,
                &served,
                |model| PRINTED_FLOAT * model.abs(),
                &format!("{what}, as mbpoll decodes it"),
            );
        } else {
            // `-t 4:int` is signed; an unsigned register's words are the same.
            let signed = f64::from(raw as u32 as i32);
            let expected = if register.value_type == ValueType::I32 {
                raw
            } else {
                signed
            };
            assert_eq!(value, expected, "{what}: 0x{:04X}", register.address);
        }
    }
    let served_codes: BTreeSet<String> = served.keys().cloned().collect();
    assert_eq!(
        served_codes, codes,
        "{what}: the served record holds exactly what was read"
    );
    checked.len()
}

#[tokio::test]
async fn th40c_over_a_pseudo_terminal_matches_the_served_record() {
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let (bus, served, _clock) = one_device("th40c", 3, zone);
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let (link, _stop) = serve_pty(bus);
    let checked = check_every_block(&link, &profile, 3, &served, zone).await;
    assert!(checked > 200, "{checked} registers");
}

#[tokio::test]
async fn th40c_through_a_transparent_rtu_gateway_matches_the_served_record() {
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let (bus, served, _clock) = one_device("th40c", 5, zone);
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let (address, _stop) = serve_tcp(bus, TcpFraming::RtuOverTcp).await;
    let (link, _gateway) = gateway(address).await;
    let checked = check_every_block(&link, &profile, 5, &served, zone).await;
    assert!(checked > 200, "{checked} registers");
}

/// Every shipped profile (the TH40C among them) over Modbus TCP.
#[tokio::test]
async fn every_shipped_profile_over_modbus_tcp_matches_the_served_record() {
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let profiles = ProfileSet::builtin();
    // Every profile with a Modbus map (the A1000 speaks only IEC 62056-21).
    let names: Vec<&str> = profiles
        .names()
        .filter(|name| profiles.get(name).unwrap().speaks_modbus())
        .collect();
    assert!(names.contains(&"th40c") && names.len() >= 5, "{names:?}");
    for name in names {
        let (bus, served, _clock) = one_device(name, 1, zone);
        let profile = profiles.get(name).unwrap();
        let (address, _stop) = serve_tcp(bus, TcpFraming::ModbusTcp).await;
        let checked = check_every_block(&Link::Tcp(address), &profile, 1, &served, zone).await;
        assert!(checked > 0, "{name}: no registers");
    }
}

/// TH40C App. G has nothing at 0x8018-0x801B: mbpoll reports the device's
/// exception 02 (libmodbus's text for it) and no values.
#[tokio::test]
async fn an_unmapped_address_is_an_illegal_data_address_for_mbpoll() {
    let zone = Tz::UTC;
    let (bus, _, _clock) = one_device("th40c", 1, zone);
    let (address, _stop) = serve_tcp(bus.clone(), TcpFraming::ModbusTcp).await;
    let (pty, _stop_pty) = serve_pty(bus);
    for link in [Link::Tcp(address), pty] {
        let options = read_options(1, 0x8018, 4, "4:hex", WordOrder::LowFirst, ANSWER_TIMEOUT);
        let run = mbpoll(&link, &options, &[]).await;
        assert!(!run.success, "{}", run.describe());
        assert!(run.values().is_empty(), "{}", run.describe());
        assert!(
            run.stderr
                .contains("Read output (holding) register failed: Illegal data address"),
            "{}",
            run.describe()
        );
    }
}

/// The clock registers (0x1040, YY MM DD hh mm ss) as mbpoll reads them from `unit`.
async fn clock_words(link: &Link, unit: u8) -> Vec<u16> {
    read(link, unit, 0x1040, 6, "4", WordOrder::LowFirst)
        .await
        .iter()
        .map(|word| word.parse().unwrap())
        .collect()
}

/// TH40C App. E: a write of 2 to 0xC035 moves meter 1 to address 2, and
/// the answer comes from address 2. On RTU libmodbus checks the answer's
/// address and calls it an error ("Response not from requested slave");
/// on Modbus TCP it does not look at the unit identifier and reports the
/// write done. Either way the meter answers at 2 from then on, not at 1.
#[tokio::test]
async fn an_address_change_written_by_mbpoll_moves_the_meter() {
    let zone = Tz::UTC;
    // 2026-11-21T17:34:56Z, 30 hours after the model started.
    let now_words = [26, 11, 21, 17, 34, 56];
    for transport in ["rtu", "tcp"] {
        let (bus, _, _clock) = one_device("th40c", 1, zone);
        let (link, _stop) = match transport {
            "rtu" => serve_pty(bus.clone()),
            _ => {
                let (address, stop) = serve_tcp(bus.clone(), TcpFraming::ModbusTcp).await;
                (Link::Tcp(address), stop)
            }
        };
        assert_eq!(clock_words(&link, 1).await, now_words);
        let options = ["-a", "1", "-0", "-r", "0xC035", "-t", "4", "-1", "-o", ANSWER_TIMEOUT].map(str::to_owned);
        let run = mbpoll(&link, &options, &["2"]).await;
        if transport == "rtu" {
            assert!(!run.success, "{}", run.describe());
            assert!(
                run.stderr.contains("Response not from requested slave"),
                "{}",
                run.describe()
            );
        } else {
            assert!(run.success, "{}", run.describe());
            assert!(run.stdout.contains("Written 1 references."), "{}", run.describe());
        }
        assert_eq!(bus.units(), [2], "{transport}");
        assert_eq!(clock_words(&link, 2).await, now_words, "{transport}");
        // Unit 1 is silent now: mbpoll waits its (short) timeout for nothing.
        let options = read_options(1, 0x1040, 6, "4", WordOrder::LowFirst, "0.2");
        let run = mbpoll(&link, &options, &[]).await;
        assert!(!run.success, "{}", run.describe());
        assert!(run.stderr.contains("Connection timed out"), "{}", run.describe());
    }
}
