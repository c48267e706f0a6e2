//! Cost of turning stored data into what billing needs: deriving intervals
//! from register reads, finding gaps, counting data quality, and one round
//! of the derivation passes over a fleet in PostgreSQL.
//!
//! Run: `cargo bench --bench metering` (needs DATABASE_URL or PostgreSQL on
//! 127.0.0.1:5432 for the derivation round). Figures: docs/BENCHMARKS.md.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use common::measure;
use ohmnibus::derive::{DeriveServices, run_passes};
use ohmnibus::device::reading::Reading;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::address::UnitAddress;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::transport::Transport;
use ohmnibus::domain::unit::Unit;
use ohmnibus::metering::data_quality::summarize;
use ohmnibus::metering::gaps::find_gaps;
use ohmnibus::metering::register_deltas::derive_with_wrap;
use ohmnibus::store::buses::upsert_bus;
use ohmnibus::store::database::{connect, create_database_if_missing, migrate};
use ohmnibus::store::devices::{DeviceAddress, NewDevice, insert_device};
use ohmnibus::store::readings::insert_readings;

/// A register read every minute from `from`, rising about 4 kW.
fn minute_reads(from: DateTime<Utc>, minutes: i64) -> Vec<(DateTime<Utc>, f64)> {
    (0..minutes)
        .map(|m| (from + chrono::Duration::minutes(m), 10_000.0 + m as f64 * 0.066_7))
        .collect()
}

fn pure_benchmarks() {
    let zone: Tz = "Europe/Paris".parse().expect("zone");
    // Forty days across the autumn change (25 October 2026).
    let from = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let reads = minute_reads(from, 40 * 1_440);
    let mut count = 0;
    let per_derive = measure(Duration::from_secs(3), || {
        count = derive_with_wrap(&reads, 15, zone, Some(42_949_672.96)).len();
    });
    println!(
        "derive 40 days of minute reads ({} reads -> {count} intervals, Europe/Paris): {per_derive:?}",
        reads.len()
    );

    // A year of quarter hours with every 50th hour missing.
    let year: Vec<(DateTime<Utc>, u32)> = (0..365 * 96)
        .filter(|k| (k / 4) % 50 != 7)
        .map(|k| (from + chrono::Duration::minutes(15 * k), 15))
        .collect();
    let per_gaps = measure(Duration::from_secs(3), || {
        count = find_gaps(&year, None, zone).len();
    });
    println!(
        "find the gaps in a year of quarter hours ({} intervals -> {count} gaps): {per_gaps:?}",
        year.len()
    );
    let starts: Vec<(DateTime<Utc>, bool)> = year.iter().map(|(at, _)| (*at, false)).collect();
    let to = from + chrono::Duration::days(365);
    let per_summary = measure(Duration::from_secs(3), || {
        count = summarize(from, to, to, Some(from), 15, zone, &starts).len();
    });
    println!("data quality of that year ({count} months): {per_summary:?}");
}

/// One derivation round over `meters` Modbus meters that each have a day
/// of minute reads, then a round with nothing new.
async fn derivation_round(meters: usize) {
    let server =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let url = match create_database_if_missing(&server, "ohmnibus_bench_metering").await {
        Ok(url) => url,
        Err(error) => {
            println!("derivation round: skipped, no PostgreSQL ({error})");
            return;
        }
    };
    let pool = connect(&url).await.expect("connect");
    migrate(&pool).await.expect("migrate");
    sqlx::query(
        "TRUNCATE readings, latest_readings, load_profile_intervals, events, billing_periods, devices, buses \
         RESTART IDENTITY CASCADE",
    )
    .execute(&pool)
    .await
    .expect("truncate");
    let transport = Transport::ModbusTcp {
        host: "127.0.0.1".into(),
        port: 1,
    };
    let bus = upsert_bus(&pool, "bench", &transport).await.expect("bus");
    let from = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let reads = minute_reads(from, 1_440);
    for unit in 1..=meters {
        let device = insert_device(
            &mut pool.acquire().await.unwrap(),
            &NewDevice {
                bus_id: bus.id,
                name: &format!("meter {unit}"),
                profile: "countis-e33",
                address: DeviceAddress::Unit(UnitAddress::new(unit as i64).expect("unit address")),
                realtime_seconds: 10,
                energy_seconds: 60,
                history_seconds: 900,
            },
        )
        .await
        .expect("device");
        let batch: Vec<(DeviceId, Reading)> = reads
            .iter()
            .map(|(at, value)| {
                (
                    device.id,
                    Reading {
                        obis: "1-1:1.8.0".parse().expect("code"),
                        value: *value,
                        unit: Unit::KWh,
                        read_at: *at,
                        captured_at: None,
                        quality: Quality::GOOD,
                    },
                )
            })
            .collect();
        insert_readings(&pool, &batch, chrono::Utc::now())
            .await
            .expect("readings");
    }
    let services = DeriveServices {
        pool: pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        clock: Clock::manual(from + chrono::Duration::days(1) + chrono::Duration::minutes(5)),
    };
    let start = Instant::now();
    run_passes(&services).await;
    let first = start.elapsed();
    let intervals: i64 = sqlx::query_scalar("SELECT count(*) FROM load_profile_intervals")
        .fetch_one(&pool)
        .await
        .expect("count");
    println!(
        "derivation round, {meters} meters x a day of minute reads ({} reads -> {intervals} intervals): {first:?}",
        meters * reads.len()
    );
    let start = Instant::now();
    run_passes(&services).await;
    println!(
        "derivation round with nothing new, {meters} meters: {:?}",
        start.elapsed()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    pure_benchmarks();
    derivation_round(100).await;
}
