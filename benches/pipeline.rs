//! Throughput of the read path's two hot steps: decoding a TH40C's answers
//! into readings, and writing readings to PostgreSQL in batches.
//!
//! Run: `cargo bench --bench pipeline` (needs DATABASE_URL or PostgreSQL on
//! 127.0.0.1:5432 for the ingest part). Figures: docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

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

/// Runs `f` repeatedly for about `budget` and returns the mean time per call.
fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..10 {
        f();
    }
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < budget {
        f();
        calls += 1;
    }
    start.elapsed() / calls
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
            insert_readings(&pool, &batch).await.expect("insert");
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
    let sample = decode_benchmark();
    ingest_benchmark(&sample).await;
}
