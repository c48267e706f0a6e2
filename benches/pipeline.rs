//! Throughput of the read path's hot steps: decoding a TH40C's Modbus
//! answers and an A1000's IEC 62056-21 readout and load profile into
//! readings and intervals, and writing readings to PostgreSQL in batches.
//!
//! Run: `cargo bench --bench pipeline` (needs DATABASE_URL or PostgreSQL on
//! 127.0.0.1:5432 for the ingest part). Figures: docs/BENCHMARKS.md.

mod common;

use std::time::{Duration, Instant};

use common::measure;

use chrono::Utc;
use chrono_tz::Tz;
use ohmnibus::device::decode::decode_blocks;
use ohmnibus::device::profile::RegisterGroup;
use ohmnibus::device::reading::Reading;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::device::value_type::ValueType;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::store::database::{connect, create_database_if_missing, migrate};
use ohmnibus::store::readings::insert_readings;

/// An A1000's readout text and 40 days of its load profile, as the
/// simulator sends them, parsed and decoded as the IEC bus worker does.
fn iec_benchmark() {
    use chrono::TimeDelta;
    use ohmnibus::device::iec_decode::decode_readout;
    use ohmnibus::device::iec_load_profile::{intervals_from_blocks, profile_request};
    use ohmnibus::protocol::iec62056::{format_data_sets, format_load_profile, parse_data_sets, parse_load_profile};
    use ohmnibus::sim::iec62056::session::readout_sets;
    use ohmnibus::sim::iec62056::{IecKind, IecMeter, IecMeterConfig};

    let now = Utc::now();
    let zone = Tz::UTC;
    let iec = ProfileSet::builtin()
        .get("a1000")
        .and_then(|p| p.iec62056.clone())
        .expect("a1000 profile");
    let settings = iec.load_profile.clone().expect("a1000 load profile");
    let mut meter = IecMeter::new(IecMeterConfig::new(IecKind::A1000, 1), now);
    let text = format_data_sets(&readout_sets(&mut meter, now)).expect("readout text");
    let mut count = 0;
    let per_readout = measure(Duration::from_secs(2), || {
        let sets = parse_data_sets(&text).expect("readout parses");
        count = decode_readout(&iec, &sets, now, zone).readings.len();
    });
    println!(
        "parse and decode an A1000 readout ({} bytes -> {count} readings): {per_readout:?}",
        text.len()
    );
    let request = profile_request(&settings, now - TimeDelta::days(40), None, zone);
    let profile = format_load_profile(&meter.load_profile(&request, now)).expect("profile text");
    let per_profile = measure(Duration::from_secs(3), || {
        let blocks = parse_load_profile(&profile).expect("profile parses");
        count = intervals_from_blocks(&settings, &blocks, zone).0.len();
    });
    println!(
        "parse 40 days of an A1000 load profile ({} kB -> {count} intervals): {per_profile:?}",
        profile.len() / 1024
    );
}

fn decode_benchmark() -> Vec<Reading> {
    let profile = ProfileSet::builtin().get("th40c").expect("th40c profile");
    let zone: Tz = "Europe/Rome".parse().expect("zone");
    let mut all = Vec::new();
    for group in RegisterGroup::ALL {
        let blocks = profile.blocks(group);
        // Plausible words for every register, encoded as the device would.
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
        let per_call = measure(Duration::from_secs(2), || {
            let (readings, _) = decode_blocks(&profile, &answers, Utc::now(), zone);
            std::hint::black_box(readings);
        });
        let (readings, _) = decode_blocks(&profile, &answers, Utc::now(), zone);
        println!(
            "decode th40c {:<8} {:>3} requests -> {:>3} readings: {:>8.1} µs per poll",
            group.as_str(),
            blocks.len(),
            readings.len(),
            per_call.as_secs_f64() * 1e6
        );
        all.extend(readings);
    }
    all
}

async fn ingest_benchmark(sample: &[Reading]) {
    let server =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let url = match create_database_if_missing(&server, "ohmnibus_bench").await {
        Ok(url) => url,
        Err(error) => {
            println!("ingest: skipped, no PostgreSQL ({error})");
            return;
        }
    };
    let pool = connect(&url).await.expect("connect");
    migrate(&pool).await.expect("migrate");
    sqlx::query("TRUNCATE readings, latest_readings")
        .execute(&pool)
        .await
        .expect("truncate");
    // 100 devices' worth of one full poll each, per batch; distinct times per round.
    let devices = 100;
    let mut round = 0i64;
    for batch_devices in [10usize, devices] {
        let start = Instant::now();
        let mut rows = 0usize;
        while start.elapsed() < Duration::from_secs(5) {
            round += 1;
            let at = Utc::now() + chrono::Duration::milliseconds(round);
            let batch: Vec<(DeviceId, Reading)> = (0..batch_devices)
                .flat_map(|d| {
                    sample.iter().map(move |r| {
                        (
                            DeviceId(d as i64 + 1),
                            Reading {
                                read_at: at,
                                ..r.clone()
                            },
                        )
                    })
                })
                .collect();
            insert_readings(&pool, &batch, chrono::Utc::now())
                .await
                .expect("insert");
            rows += batch.len();
        }
        let rate = rows as f64 / start.elapsed().as_secs_f64();
        println!(
            "ingest batches of {:>5} readings: {:>9.0} readings/s",
            batch_devices * sample.len(),
            rate
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    iec_benchmark();
    let sample = decode_benchmark();
    ingest_benchmark(&sample).await;
}
