//! Month partitions made ahead by the maintenance task, never by ingest; a
//! reading for a month with no partition is stored all the same; retention
//! drops whole partitions per data class; ingest is not held up by the
//! locks a `pg_dump` takes.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ohmnibus::device::reading::Reading;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::unit::Unit;
use ohmnibus::maintenance::{Retention, run_once};
use ohmnibus::store::readings::insert_readings;
use sqlx::PgPool;
use tokio::time::Instant;

use crate::support::{TestDb, insert_countis};

fn at(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, 12, 0, 0).unwrap()
}

/// The server's time the readings are written at: after every stamp the
/// tests use, none of which is to count as in the future.
fn server_now() -> DateTime<Utc> {
    at(2040, 1, 1)
}

fn reading(obis: &str, value: f64, read_at: DateTime<Utc>) -> Reading {
    Reading {
        obis: obis.parse().unwrap(),
        value,
        unit: if obis.contains(".7.") { Unit::V } else { Unit::KWh },
        read_at,
        captured_at: None,
        quality: Quality::GOOD,
    }
}

/// A device to hang readings on.
async fn device(pool: &PgPool) -> DeviceId {
    insert_countis(pool, 1).await
}

/// Where each stored reading of `device` lies: (code, table).
async fn placed(pool: &PgPool, device: DeviceId) -> Vec<(String, String)> {
    sqlx::query_as("SELECT obis, tableoid::regclass::text FROM readings WHERE device_id = $1 ORDER BY read_at, obis")
        .bind(device)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn exists(pool: &PgPool, table: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The partitions of 2030 and later among `names`.
fn of_2030s(names: &[String]) -> Vec<&str> {
    names
        .iter()
        .map(String::as_str)
        .filter(|name| name.contains("_y203"))
        .collect()
}

const KEEP_ALL: Retention = Retention {
    instant_days: None,
    register_days: None,
    interval_days: None,
};

#[tokio::test]
async fn a_month_with_no_partition_is_stored_and_moved_when_its_partition_is_made() {
    let db = TestDb::create().await;
    let device = device(&db.pool).await;
    // March 2031: far from any partition a migration or a run has made.
    let march = at(2031, 3, 10);
    assert!(!exists(&db.pool, "readings_y2031m03").await);
    let batch = vec![
        (device, reading("1-0:1.8.0", 1234.5, march)),
        (device, reading("1-0:32.7.0", 231.0, march)),
    ];
    insert_readings(&db.pool, &batch, server_now()).await.unwrap();
    assert_eq!(
        placed(&db.pool, device).await,
        [
            ("1-0:1.8.0".to_owned(), "readings_default".to_owned()),
            ("1-0:32.7.0".to_owned(), "readings_default".to_owned())
        ]
    );
    // Stored twice, kept once.
    insert_readings(&db.pool, &batch, server_now()).await.unwrap();
    assert_eq!(placed(&db.pool, device).await.len(), 2);

    // The maintenance run of February 2031 makes January to May ahead, and
    // moves March out of the default partition, each class to its own.
    let report = run_once(&db.pool, at(2031, 2, 20), KEEP_ALL).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for month in ["2031m01", "2031m02", "2031m03", "2031m04", "2031m05"] {
        assert!(
            exists(&db.pool, &format!("readings_y{month}")).await,
            "readings of {month}"
        );
        assert!(
            exists(&db.pool, &format!("load_profile_intervals_y{month}")).await,
            "intervals of {month}"
        );
    }
    assert!(!exists(&db.pool, "readings_y2031m06").await);
    assert!(
        report.created.contains(&("readings_y2031m03".to_owned(), 2)),
        "{:?}",
        report.created
    );
    assert_eq!(
        placed(&db.pool, device).await,
        [
            ("1-0:1.8.0".to_owned(), "readings_y2031m03_register".to_owned()),
            ("1-0:32.7.0".to_owned(), "readings_y2031m03_instant".to_owned())
        ]
    );
    // And ingest goes on into the new partitions, still once per key.
    insert_readings(&db.pool, &batch, server_now()).await.unwrap();
    assert_eq!(placed(&db.pool, device).await.len(), 2);

    // A second run has nothing to do.
    let again = run_once(&db.pool, at(2031, 2, 20), KEEP_ALL).await;
    assert!(again.created.is_empty() && again.failures.is_empty(), "{again:?}");
}

#[tokio::test]
async fn retention_drops_the_instantaneous_values_of_old_months_whole_and_keeps_the_registers() {
    let db = TestDb::create().await;
    let device = device(&db.pool).await;
    let run = |now| run_once(&db.pool, now, KEEP_ALL);
    run(at(2031, 1, 15)).await;
    // January and February 2031, each with a register and a voltage.
    for day in [at(2031, 1, 20), at(2031, 2, 20)] {
        let batch = vec![
            (device, reading("1-0:1.8.0", 10.0, day)),
            (device, reading("1-0:32.7.0", 230.0, day)),
        ];
        insert_readings(&db.pool, &batch, server_now()).await.unwrap();
    }
    // Load-profile intervals of January, by hand.
    sqlx::query(
        "INSERT INTO load_profile_intervals (device_id, obis, interval_start, interval_minutes, value, unit) \
         VALUES ($1, '1-0:1.29.0', $2, 15, 0.25, 'kWh')",
    )
    .bind(device)
    .bind(at(2031, 1, 20))
    .execute(&db.pool)
    .await
    .unwrap();

    // 90 days after the end of January, but not of February (May 2: January
    // ended 91 days before, February 63).
    let retention = Retention {
        instant_days: Some(90),
        register_days: None,
        interval_days: Some(90),
    };
    let report = run_once(&db.pool, at(2031, 5, 2), retention).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // December 2030 was made (empty) by the first run, as the month before
    // (the months the test database was made with, in 2026 and 2027, go too).
    assert_eq!(
        of_2030s(&report.dropped),
        [
            "readings_y2030m12_instant",
            "readings_y2031m01_instant",
            "load_profile_intervals_y2030m12",
            "load_profile_intervals_y2031m01"
        ]
    );
    assert_eq!(report.deleted_rows, 0);
    assert!(!exists(&db.pool, "readings_y2031m01_instant").await);
    assert!(exists(&db.pool, "readings_y2031m01_register").await);
    assert_eq!(
        placed(&db.pool, device).await,
        [
            ("1-0:1.8.0".to_owned(), "readings_y2031m01_register".to_owned()),
            ("1-0:1.8.0".to_owned(), "readings_y2031m02_register".to_owned()),
            ("1-0:32.7.0".to_owned(), "readings_y2031m02_instant".to_owned())
        ]
    );
    let intervals: i64 = sqlx::query_scalar("SELECT count(*) FROM load_profile_intervals")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(intervals, 0);

    // Registers kept 90 days too: January's month goes whole.
    let registers = Retention {
        register_days: Some(90),
        ..retention
    };
    let report = run_once(&db.pool, at(2031, 5, 2), registers).await;
    assert_eq!(
        of_2030s(&report.dropped),
        [
            "readings_y2030m12_register",
            "readings_y2030m12",
            "readings_y2031m01_register",
            "readings_y2031m01"
        ]
    );
    assert!(!exists(&db.pool, "readings_y2031m01").await);
}

/// `pg_dump` holds ACCESS SHARE on every table it dumps for its whole run.
/// Ingest into a month with a partition and into one without is not held
/// up by it; the maintenance gives up after its lock timeout instead of
/// queueing every writer behind its own request.
#[tokio::test]
async fn a_dump_in_progress_holds_up_neither_ingest_nor_for_long_the_maintenance() {
    let db = TestDb::create().await;
    let device = device(&db.pool).await;
    run_once(&db.pool, at(2031, 1, 15), KEEP_ALL).await;
    let mut dump = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE readings, readings_default, load_profile_intervals, load_profile_intervals_default IN ACCESS SHARE MODE")
        .execute(&mut *dump)
        .await
        .unwrap();
    sqlx::query("SELECT count(*) FROM readings_y2031m01")
        .execute(&mut *dump)
        .await
        .unwrap();

    let started = Instant::now();
    let batch = vec![
        (device, reading("1-0:1.8.0", 1.0, at(2031, 1, 20))),
        (device, reading("1-0:1.8.0", 2.0, at(2032, 7, 20))),
    ];
    tokio::time::timeout(Duration::from_secs(5), insert_readings(&db.pool, &batch, server_now()))
        .await
        .expect("ingest waited for the dump")
        .unwrap();

    // July 2032 needs a partition, which waits for the dump's lock: the run
    // gives up after the lock timeout, and ingest is still not held.
    let maintenance = tokio::spawn({
        let pool = db.pool.clone();
        async move { run_once(&pool, at(2032, 7, 1), KEEP_ALL).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let more = vec![(device, reading("1-0:1.8.0", 3.0, at(2031, 1, 21)))];
    tokio::time::timeout(Duration::from_secs(5), insert_readings(&db.pool, &more, server_now()))
        .await
        .expect("ingest queued behind the maintenance")
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), maintenance)
        .await
        .expect("the maintenance waited for the dump")
        .unwrap();
    assert!(
        !report.failures.is_empty(),
        "the maintenance did its work under the dump's lock: {report:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(25));
    dump.rollback().await.unwrap();

    // Once the dump is over, the next run makes the partition and moves July.
    let report = run_once(&db.pool, at(2032, 7, 1), KEEP_ALL).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        report.created.contains(&("readings_y2032m07".to_owned(), 1)),
        "{:?}",
        report.created
    );
}

/// The class ingest would give a code in Rust is the one the database's
/// function gives its text: the two decide where a reading lies.
#[tokio::test]
async fn the_class_of_a_code_is_the_same_in_rust_and_in_the_database() {
    let db = TestDb::create().await;
    // Instantaneous: value group D = 7, with or without a billing period or
    // a manufacturer-specific C.
    let codes = [
        ("1-0:32.7.0", 0),
        ("1-1:132.7.0", 0),
        ("1-0:13.7.0", 0),
        ("1-0:14.7.0*101", 0),
        ("1-0:1.8.0", 1),
        ("1-1:1.8.2*101", 1),
        ("1-0:1.6.0", 1),
        ("1-0:1.29.0", 1),
        ("0-0:96.1.0", 1),
        ("1-0:17.0.0", 1),
        ("1-0:7.8.0", 1),
        ("1-0:70.7.0", 0),
    ];
    for (text, expected) in codes {
        let obis: ohmnibus::domain::obis::ObisCode = text.parse().unwrap();
        let in_rust = ohmnibus::store::partitions::ReadingClass::of(&obis).number();
        let in_sql: i16 = sqlx::query_scalar("SELECT ohmnibus_reading_class($1)")
            .bind(obis.to_string())
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!((in_rust, in_sql), (expected, expected), "{text}");
    }
}
