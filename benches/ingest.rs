//! Ingest speed: the same readings stored through Ohmnibus's ingest path
//! (a `ReadingsWriter`, as the outbox uses it) and by a plain binary `COPY`
//! into a fresh copy of the same schema, in the same run, round by round
//! in turn; then the plain `COPY` into variants of the table, to show where
//! its time goes.
//!
//! The rows are 100 TH40Cs' full polls (every register of the profile), one
//! poll per meter and round, 10 s apart, grouped into batches the way the
//! outbox groups them (whole polls, at most 20,000 rows). Between rounds the
//! real-time values change, the energies grow, the closed billing periods
//! (history) stay: the mix a full poll brings.
//!
//! Run: `cargo bench --bench ingest` (needs DATABASE_URL or PostgreSQL on
//! 127.0.0.1:5432; makes and drops the databases `ohmnibus_bench_ingest`
//! and `ohmnibus_bench_copy`). Figures: docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use ohmnibus::device::profile::RegisterGroup;
use ohmnibus::device::reading::Reading;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::address::UnitAddress;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::transport::Transport;
use ohmnibus::maintenance::{Retention, run_once};
use ohmnibus::store::buses::upsert_bus;
use ohmnibus::store::copy_binary::CopyBinary;
use ohmnibus::store::database::{connect, migrate, with_database};
use ohmnibus::store::devices::{DeviceAddress, NewDevice, insert_device};
use ohmnibus::store::readings::{COPY_COLUMNS, copy_row};
use ohmnibus::store::readings_writer::ReadingsWriter;
use sqlx::{Connection, PgConnection, PgPool};

const METERS: usize = 100;
/// Rounds measured (after one that fills the latest values).
const ROUNDS: i64 = 40;
/// The most rows the outbox writes in one statement (`poll::outbox`).
const BATCH_ROWS: usize = 20_000;

/// What changes from one poll to the next.
#[derive(Clone, Copy)]
enum Change {
    /// Real-time values and energies change, history repeats.
    FullPoll,
    /// Every value changes (the latest-value table's worst case).
    Everything,
}

/// One poll of every register of a TH40C at `at`, round `round`.
fn poll(registers: &[(RegisterGroup, Reading)], round: i64, at: DateTime<Utc>, change: Change) -> Vec<Reading> {
    registers
        .iter()
        .map(|(group, reading)| {
            let step = match (group, change) {
                (RegisterGroup::History, Change::FullPoll) => 0.0,
                (RegisterGroup::Realtime, _) => (round % 7) as f64 * 0.5,
                _ => round as f64 * 0.01,
            };
            Reading {
                value: reading.value + step,
                read_at: at,
                ..reading.clone()
            }
        })
        .collect()
}

/// Every register of the TH40C profile, once per OBIS code, with a plausible value.
fn th40c_registers() -> Vec<(RegisterGroup, Reading)> {
    let profile = ProfileSet::builtin().get("th40c").expect("th40c profile");
    let mut seen = std::collections::HashSet::new();
    profile
        .registers
        .iter()
        .enumerate()
        .filter(|(_, register)| seen.insert(register.obis.clone()))
        .map(|(index, register)| {
            let reading = Reading {
                obis: register.obis.clone(),
                value: 1_000.0 + index as f64,
                unit: register.unit,
                read_at: Utc::now(),
                captured_at: None,
                quality: Quality::GOOD,
            };
            (register.group, reading)
        })
        .collect()
}

/// One round: every meter's poll, in batches as the outbox makes them.
fn round_batches(
    registers: &[(RegisterGroup, Reading)],
    devices: &[DeviceId],
    round: i64,
    at: DateTime<Utc>,
    change: Change,
) -> Vec<Vec<(DeviceId, Reading)>> {
    let mut batches: Vec<Vec<(DeviceId, Reading)>> = vec![Vec::new()];
    for &device in devices {
        let readings = poll(registers, round, at, change);
        let current = batches.last_mut().expect("a batch");
        if !current.is_empty() && current.len() + readings.len() > BATCH_ROWS {
            batches.push(Vec::new());
        }
        let current = batches.last_mut().expect("a batch");
        current.extend(readings.into_iter().map(|reading| (device, reading)));
    }
    batches
}

/// Drops and makes database `name`, with the schema.
async fn fresh_database(server: &str, name: &str) -> Result<PgPool, sqlx::Error> {
    let mut admin = PgConnection::connect(&with_database(server, "postgres")).await?;
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await?;
    let pool = connect(&with_database(server, name)).await?;
    migrate(&pool)
        .await
        .map_err(|error| sqlx::Error::Migrate(Box::new(error)))?;
    Ok(pool)
}

/// The batch as the plain COPY sends it.
fn encode(batch: &[(DeviceId, Reading)]) -> Vec<u8> {
    let mut copy = CopyBinary::with_capacity(batch.len(), 80);
    for (device, reading) in batch {
        copy_row(&mut copy, *device, reading, reading.quality);
    }
    copy.finish()
}

/// A plain binary COPY of each batch into `table` (its own transaction each).
async fn plain_copy(connection: &mut PgConnection, table: &str, batches: &[Vec<(DeviceId, Reading)>]) -> Duration {
    let statement = format!("COPY {table} ({COPY_COLUMNS}) FROM STDIN (FORMAT binary)");
    let start = Instant::now();
    for batch in batches {
        let mut copy = connection.copy_in_raw(&statement).await.expect("copy starts");
        copy.send(encode(batch)).await.expect("copy data");
        copy.finish().await.expect("copy ends");
    }
    start.elapsed()
}

/// The batches through the ingest path as the outbox takes them: the
/// writer stores each in the series and the latest values at most once a
/// second while batches keep coming, and once more when they stop (the end
/// of the round's batches counts as a stop: the flush is timed).
async fn ingest(pool: &PgPool, writer: &mut ReadingsWriter, batches: &[Vec<(DeviceId, Reading)>]) -> Duration {
    let start = Instant::now();
    for batch in batches {
        writer.write(pool, batch, Utc::now()).await.expect("ingest");
    }
    start.elapsed()
}

/// The latest values left waiting, written as the outbox writes them when
/// no batch is left.
async fn flush(pool: &PgPool, writer: &mut ReadingsWriter) -> Duration {
    let start = Instant::now();
    writer.flush(pool, Utc::now()).await.expect("latest values");
    start.elapsed()
}

fn rate(values: usize, time: Duration) -> f64 {
    values as f64 / time.as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let (pool, copy_pool) = match (
        fresh_database(&server, "ohmnibus_bench_ingest").await,
        fresh_database(&server, "ohmnibus_bench_copy").await,
    ) {
        (Ok(pool), Ok(copy_pool)) => (pool, copy_pool),
        (Err(error), _) | (_, Err(error)) => {
            println!("ingest: skipped, no PostgreSQL ({error})");
            return;
        }
    };
    let transport = Transport::ModbusTcp {
        host: "127.0.0.1".into(),
        port: 1,
    };
    let bus = upsert_bus(&pool, "bench", &transport).await.expect("bus");
    let mut devices = Vec::new();
    for unit in 1..=METERS {
        let device = insert_device(
            &mut pool.acquire().await.expect("connection"),
            &NewDevice {
                bus_id: bus.id,
                name: &format!("meter {unit}"),
                profile: "th40c",
                address: DeviceAddress::Unit(UnitAddress::new(unit as i64).expect("unit address")),
                realtime_seconds: 10,
                energy_seconds: 60,
                history_seconds: 900,
            },
        )
        .await
        .expect("device");
        devices.push(device.id);
    }
    let registers = th40c_registers();
    let start = Utc::now() - TimeDelta::hours(2);
    let at = |round: i64| start + TimeDelta::seconds(10 * round);
    let mut copy = copy_pool.acquire().await.expect("connection");
    let copy = &mut *copy;
    // Both databases have the partitions a running server's maintenance
    // makes (the month before to three ahead).
    for pool in [&pool, &copy_pool] {
        let report = run_once(pool, Utc::now(), Retention::default()).await;
        assert!(report.failures.is_empty(), "partitions: {:?}", report.failures);
    }
    let values_per_round = METERS * registers.len();
    let history = registers
        .iter()
        .filter(|(group, _)| *group == RegisterGroup::History)
        .count();
    println!(
        "{METERS} meters x {} values a poll ({history} of them history) = {values_per_round} values a round, {ROUNDS} rounds",
        registers.len(),
    );

    // Round 0 fills the latest values; then both paths take the same rounds
    // in turn, as fast as they can: a sustained load, the outbox never idle,
    // the latest values written once a second and once at the end.
    let mut writer = ReadingsWriter::default();
    let first = round_batches(&registers, &devices, 0, at(0), Change::FullPoll);
    ingest(&pool, &mut writer, &first).await;
    flush(&pool, &mut writer).await;
    plain_copy(copy, "readings", &first).await;
    let (mut ingest_time, mut copy_time) = (Duration::ZERO, Duration::ZERO);
    let mut batch_count = 0;
    for round in 1..=ROUNDS {
        let batches = round_batches(&registers, &devices, round, at(round), Change::FullPoll);
        batch_count += batches.len();
        ingest_time += ingest(&pool, &mut writer, &batches).await;
        copy_time += plain_copy(copy, "readings", &batches).await;
    }
    ingest_time += flush(&pool, &mut writer).await;
    let values = values_per_round * ROUNDS as usize;
    let (ingest_rate, copy_rate) = (rate(values, ingest_time), rate(values, copy_time));
    println!("{values} values in {batch_count} batches of up to {BATCH_ROWS}, full polls, sustained:");
    println!("  ingest path               {ingest_rate:>9.0} values/s");
    println!("  plain binary COPY         {copy_rate:>9.0} values/s");
    println!("  ratio                     {:>9.2}", ingest_rate / copy_rate);

    // A light load: the outbox idle after each round, so the latest values
    // are written after each round.
    let light = ROUNDS / 2;
    let (mut ingest_time, mut copy_time) = (Duration::ZERO, Duration::ZERO);
    for round in ROUNDS + 1..=ROUNDS + light {
        let batches = round_batches(&registers, &devices, round, at(round), Change::FullPoll);
        ingest_time += ingest(&pool, &mut writer, &batches).await;
        ingest_time += flush(&pool, &mut writer).await;
        copy_time += plain_copy(copy, "readings", &batches).await;
    }
    let light_values = values_per_round * light as usize;
    let (ingest_rate, copy_rate) = (rate(light_values, ingest_time), rate(light_values, copy_time));
    println!("{light_values} values, full polls, the latest values written after each round:");
    println!("  ingest path               {ingest_rate:>9.0} values/s");
    println!("  plain binary COPY         {copy_rate:>9.0} values/s");
    println!("  ratio                     {:>9.2}", ingest_rate / copy_rate);

    // Every value changes: each latest row is rewritten.
    let mut changed_time = Duration::ZERO;
    for round in ROUNDS + light + 1..=2 * ROUNDS + light {
        let batches = round_batches(&registers, &devices, round, at(round), Change::Everything);
        changed_time += ingest(&pool, &mut writer, &batches).await;
    }
    changed_time += flush(&pool, &mut writer).await;
    println!("every value changed, sustained:");
    println!(
        "  ingest path               {:>9.0} values/s",
        rate(values, changed_time)
    );

    // A batch met again (a replay): the rows are all there, nothing is stored.
    let replay = round_batches(&registers, &devices, ROUNDS, at(ROUNDS), Change::FullPoll);
    let mut replay_time = ingest(&pool, &mut writer, &replay).await;
    replay_time += flush(&pool, &mut writer).await;
    println!("a round stored again (every row already there):");
    println!(
        "  ingest path               {:>9.0} values/s",
        rate(values_per_round, replay_time)
    );

    // Where a plain COPY's time goes: the same rounds into tables without
    // one thing each, and the encoding alone.
    sqlx::raw_sql(
        "CREATE TABLE flat (LIKE readings INCLUDING DEFAULTS, PRIMARY KEY (device_id, obis, read_at)); \
         CREATE TABLE flat_by_poll (LIKE readings INCLUDING DEFAULTS, PRIMARY KEY (device_id, read_at, obis)); \
         CREATE TABLE flat_no_key (LIKE readings INCLUDING DEFAULTS); \
         CREATE UNLOGGED TABLE flat_no_key_no_wal (LIKE readings INCLUDING DEFAULTS); \
         CREATE TEMPORARY TABLE staged (LIKE readings INCLUDING DEFAULTS)",
    )
    .execute(&mut *copy)
    .await
    .expect("tables");
    let rounds: Vec<_> = (2 * ROUNDS + light + 1..=3 * ROUNDS + light)
        .map(|round| round_batches(&registers, &devices, round, at(round), Change::FullPoll))
        .collect();
    let encode_start = Instant::now();
    for batches in &rounds {
        for batch in batches {
            std::hint::black_box(encode(batch));
        }
    }
    let encode_time = encode_start.elapsed();
    println!("a plain COPY of the same rows into:");
    for table in [
        "readings",
        "flat",
        "flat_by_poll",
        "flat_no_key",
        "flat_no_key_no_wal",
        "staged",
    ] {
        let mut time = Duration::ZERO;
        for batches in &rounds {
            time += plain_copy(copy, table, batches).await;
        }
        let what = match table {
            "readings" => "readings (partitioned, key)",
            "flat" => "one table, key",
            "flat_by_poll" => "one table, key by poll",
            "flat_no_key" => "one table, no key",
            "flat_no_key_no_wal" => "one unlogged table, no key",
            _ => "a temporary table",
        };
        println!(
            "  {what:<27} {:>9.0} values/s  ({:.2} µs a value)",
            rate(values, time),
            time.as_secs_f64() * 1e6 / values as f64
        );
    }
    println!(
        "  encoding alone            {:>9.0} values/s  ({:.2} µs a value)",
        rate(values, encode_time),
        encode_time.as_secs_f64() * 1e6 / values as f64
    );
}
