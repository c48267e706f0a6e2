//! Database size per device-day: for each shipped profile, one day of what
//! Ohmnibus stores for one device at the profile's default schedule (every
//! register group read at its period; for IEC 62056-21, a readout every
//! energy period and the day's load profile), decoded from simulated
//! answers as the workers decode them, stored through the ingest path into
//! a fresh database, and measured there (tables and indexes, without WAL).
//!
//! Run: `cargo bench --bench storage` (needs DATABASE_URL or PostgreSQL on
//! 127.0.0.1:5432). Figures: docs/BENCHMARKS.md.

use chrono::{DateTime, Duration as TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::decode::decode_blocks;
use ohmnibus::device::iec_decode::decode_readout;
use ohmnibus::device::iec_load_profile::{intervals_from_blocks, profile_request};
use ohmnibus::device::profile::{Profile, RegisterGroup};
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::device::reading::Reading;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::device::value_type::ValueType;
use ohmnibus::domain::address::UnitAddress;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::transport::Transport;
use ohmnibus::maintenance::{Retention, run_once};
use ohmnibus::protocol::iec62056::{format_load_profile, parse_load_profile};
use ohmnibus::sim::iec62056::session::readout_sets;
use ohmnibus::sim::iec62056::{IecKind, IecMeter, IecMeterConfig};
use ohmnibus::store::buses::insert_bus;
use ohmnibus::store::database::{connect, create_database_if_missing, migrate};
use ohmnibus::store::devices::{DeviceAddress, NewDevice, insert_device};
use ohmnibus::store::load_profile::insert_meter_intervals;
use ohmnibus::store::readings::insert_readings;
use sqlx::PgPool;

const DAY_SECONDS: u32 = 86_400;

/// The readings of one Modbus poll of `group`, every register answering a
/// plausible value encoded as the device would.
fn modbus_poll(profile: &Profile, group: RegisterGroup, at: DateTime<Utc>) -> Vec<Reading> {
    let blocks = profile.blocks(group);
    let words: Vec<Vec<u16>> = blocks
        .iter()
        .map(|block| {
            block
                .registers
                .iter()
                .flat_map(|&index| {
                    let register = &profile.registers[index];
                    let raw = match register.value_type {
                        ValueType::DateYmd => 261_122.0,
                        ValueType::TimeHms => 123_456.0,
                        ValueType::Mmdd => 1_122.0,
                        ValueType::Hhmm => 1_230.0,
                        _ => 1_234.5,
                    };
                    register.value_type.encode(raw, profile.word_order(register))
                })
                .collect()
        })
        .collect();
    let answers: Vec<_> = blocks.iter().zip(&words).map(|(b, w)| (b, w.as_slice())).collect();
    decode_blocks(profile, &answers, at, Tz::UTC).0
}

/// One device-day read over Modbus: each group at its default period.
fn modbus_day(profile: &Profile, day: DateTime<Utc>) -> Vec<Reading> {
    let mut readings = Vec::new();
    for group in RegisterGroup::ALL {
        let period = match group {
            RegisterGroup::Realtime => profile.schedule.realtime_seconds,
            RegisterGroup::Energy => profile.schedule.energy_seconds,
            RegisterGroup::History => profile.schedule.history_seconds,
        };
        if profile.blocks(group).is_empty() {
            continue;
        }
        for poll in 0..DAY_SECONDS / period {
            readings.extend(modbus_poll(
                profile,
                group,
                day + TimeDelta::seconds(i64::from(poll * period)),
            ));
        }
    }
    readings
}

/// One device-day read over IEC 62056-21: a readout every energy period, and
/// the day's load profile.
fn iec_day(profile: &Profile, kind: IecKind, day: DateTime<Utc>) -> (Vec<Reading>, Vec<Interval>) {
    let iec = profile.iec62056.as_ref().expect("an IEC profile");
    let period = profile.schedule.energy_seconds;
    let mut meter = IecMeter::new(IecMeterConfig::new(kind, 1), day);
    let mut readings = Vec::new();
    for readout in 0..DAY_SECONDS / period {
        let at = day + TimeDelta::seconds(i64::from(readout * period));
        let sets = readout_sets(&mut meter, at);
        readings.extend(decode_readout(iec, &sets, at, Tz::UTC).readings);
    }
    let intervals = match &iec.load_profile {
        Some(settings) => {
            let end = day + TimeDelta::days(1);
            let request = profile_request(settings, day, Some(end), Tz::UTC);
            let text = format_load_profile(&meter.load_profile(&request, end)).expect("load profile text");
            let blocks = parse_load_profile(&text).expect("load profile parses");
            intervals_from_blocks(settings, &blocks, Tz::UTC).0
        }
        None => Vec::new(),
    };
    (readings, intervals)
}

async fn device(pool: &PgPool, profile: &str) -> DeviceId {
    let mut connection = pool.acquire().await.expect("connection");
    let transport = Transport::ModbusTcp {
        host: "127.0.0.1".to_owned(),
        port: 1,
    };
    let bus = insert_bus(&mut connection, "line", None, &transport)
        .await
        .expect("bus");
    let device = NewDevice {
        bus_id: bus.id,
        name: "meter",
        profile,
        address: DeviceAddress::Unit(UnitAddress::new(1).expect("unit 1")),
        realtime_seconds: 10,
        energy_seconds: 60,
        history_seconds: 900,
    };
    insert_device(&mut connection, &device).await.expect("device").id
}

async fn database_size(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(pool)
        .await
        .expect("size")
}

/// Stores one device-day in a fresh database and returns the bytes it took.
async fn store_day(
    server: &str,
    name: &str,
    profile: &str,
    readings: &[Reading],
    intervals: &[Interval],
    day: DateTime<Utc>,
) -> i64 {
    let url = create_database_if_missing(server, name).await.expect("database");
    let pool = connect(&url).await.expect("connect");
    migrate(&pool).await.expect("migrate");
    sqlx::query("TRUNCATE readings, latest_readings, load_profile_intervals, devices, buses CASCADE")
        .execute(&pool)
        .await
        .expect("truncate");
    run_once(&pool, day, Retention::default()).await;
    let device = device(&pool, profile).await;
    sqlx::query("CHECKPOINT").execute(&pool).await.expect("checkpoint");
    let before = database_size(&pool).await;
    for chunk in readings.chunks(5_000) {
        let batch: Vec<_> = chunk.iter().map(|r| (device, r.clone())).collect();
        insert_readings(&pool, &batch, day + TimeDelta::days(1))
            .await
            .expect("readings");
    }
    for chunk in intervals.chunks(5_000) {
        insert_meter_intervals(&pool, device, chunk, day + TimeDelta::days(1))
            .await
            .expect("intervals");
    }
    sqlx::query("CHECKPOINT").execute(&pool).await.expect("checkpoint");
    let after = database_size(&pool).await;
    pool.close().await;
    after - before
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let profiles = ProfileSet::builtin();
    let day = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    println!("| device | read over | schedule (s) | readings a day | intervals a day | stored a day | bytes a value |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut cases: Vec<(&str, &str, Option<IecKind>)> = vec![
        ("pulse-concentrator", "Modbus", None),
        ("countis-e33", "Modbus", None),
        ("countis-e43", "Modbus", None),
        ("countis-e44", "Modbus", None),
        ("th40c", "Modbus", None),
        ("th40c", "IEC 62056-21", Some(IecKind::Th40c)),
        ("a1000", "IEC 62056-21", Some(IecKind::A1000)),
    ];
    for (name, over, kind) in cases.drain(..) {
        let profile = profiles.get(name).expect("shipped profile");
        let (readings, intervals) = match kind {
            Some(kind) => iec_day(&profile, kind, day),
            None => (modbus_day(&profile, day), Vec::new()),
        };
        let schedule = match kind {
            Some(_) => format!("readout {}", profile.schedule.energy_seconds),
            None => format!(
                "{} / {} / {}",
                profile.schedule.realtime_seconds, profile.schedule.energy_seconds, profile.schedule.history_seconds
            ),
        };
        let bytes = store_day(&server, "ohmnibus_bench_storage", name, &readings, &intervals, day).await;
        let values = readings.len() + intervals.len();
        println!(
            "| {name} | {over} | {schedule} | {} | {} | {:.1} MB | {:.0} |",
            readings.len(),
            intervals.len(),
            bytes as f64 / 1e6,
            bytes as f64 / values.max(1) as f64
        );
    }
}
