//! Readings: batched inserts into the partitioned time series, and queries.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Utc};
use sqlx::{PgConnection, PgPool};

use super::copy_binary::CopyBinary;
use super::error::StoreError;
use crate::device::reading::Reading;
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredReading {
    pub obis: ObisCode,
    pub read_at: DateTime<Utc>,
    pub value: f64,
    pub unit: Unit,
    pub captured_at: Option<DateTime<Utc>>,
    pub quality: Quality,
}

/// How far an unchanged latest value's `read_at` may lag the newest read
/// before its row is rewritten anyway: `latest_readings.read_at` is the
/// newest read of the value to within this (a changed value, unit, quality
/// or capture time is written at once).
pub const LATEST_REFRESH_SECONDS: f64 = 60.0;

/// Writes a batch, exactly once: a batch met again (retried after a lost
/// acknowledgement, replayed from a spill file) stores nothing twice.
///
/// The time series goes in by binary `COPY` straight into `readings`, in
/// one transaction with the latest values. A batch holding a row already
/// stored makes that `COPY` fail on the primary key; the transaction is
/// rolled back and the batch goes in again through a staging table with
/// `ON CONFLICT DO NOTHING`, which skips the rows already there. The month
/// partitions the batch needs are made first, whatever month it is.
///
/// The latest value per device and code is the batch's newest for it, and
/// an older batch never overwrites a newer value. A row whose value, unit,
/// quality and capture time did not change is rewritten only once its
/// `read_at` is [`LATEST_REFRESH_SECONDS`] old (most registers of a full
/// poll, history above all, repeat the last value).
pub async fn insert_readings(pool: &PgPool, batch: &[(DeviceId, Reading)]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let series = series_rows(batch);
    let latest = latest_rows(batch);
    let months = months_of(batch);
    let mut transaction = pool.begin().await?;
    prepare(&mut transaction, &months).await?;
    match copy(&mut transaction, COPY_SERIES, &series).await {
        Ok(()) => {}
        Err(error) if is_unique_violation(&error) => {
            transaction.rollback().await?;
            transaction = pool.begin().await?;
            prepare(&mut transaction, &months).await?;
            copy(&mut transaction, COPY_STAGED_SERIES, &series).await?;
            sqlx::query(
                "INSERT INTO readings (device_id, obis, read_at, value, unit, captured_at, quality) \
                 SELECT device_id, obis, read_at, value, unit, captured_at, quality FROM ingest_series \
                 ON CONFLICT DO NOTHING",
            )
            .execute(&mut *transaction)
            .await?;
        }
        Err(error) => return Err(error.into()),
    }
    copy(&mut transaction, COPY_STAGED_LATEST, &latest).await?;
    update_latest(&mut transaction, &devices_of(batch)).await?;
    transaction.commit().await?;
    Ok(())
}

const COPY_SERIES: &str =
    "COPY readings (device_id, obis, read_at, value, unit, captured_at, quality) FROM STDIN (FORMAT binary)";
const COPY_STAGED_SERIES: &str =
    "COPY ingest_series (device_id, obis, read_at, value, unit, captured_at, quality) FROM STDIN (FORMAT binary)";
const COPY_STAGED_LATEST: &str =
    "COPY ingest_latest (device_id, obis, read_at, value, unit, captured_at, quality) FROM STDIN (FORMAT binary)";

/// The first instant of every month the batch has readings in.
fn months_of(batch: &[(DeviceId, Reading)]) -> Vec<DateTime<Utc>> {
    let mut seen = BTreeSet::new();
    batch
        .iter()
        .filter(|(_, reading)| seen.insert((reading.read_at.year(), reading.read_at.month())))
        .map(|(_, reading)| reading.read_at)
        .collect()
}

/// The devices the batch has readings of, each once.
fn devices_of(batch: &[(DeviceId, Reading)]) -> Vec<i64> {
    let devices: BTreeSet<i64> = batch.iter().map(|(device, _)| device.0).collect();
    devices.into_iter().collect()
}

/// The batch's rows in binary COPY form, in `readings`' column order.
fn series_rows<'a>(rows: impl IntoIterator<Item = &'a (DeviceId, Reading)>) -> Vec<u8> {
    let rows = rows.into_iter();
    let mut copy = CopyBinary::with_capacity(rows.size_hint().0, 80);
    for (device, reading) in rows {
        copy.row(7)
            .int8(device.0)
            .text(&reading.obis)
            .timestamptz(reading.read_at)
            .float8(reading.value)
            .text(&reading.unit.as_str())
            .timestamptz_or_null(reading.captured_at)
            .int4(reading.quality.0);
    }
    copy.finish()
}

/// The newest row of each device and code in the batch, in COPY form.
fn latest_rows(batch: &[(DeviceId, Reading)]) -> Vec<u8> {
    let mut newest: HashMap<(DeviceId, &ObisCode), &(DeviceId, Reading)> = HashMap::with_capacity(batch.len());
    for row in batch {
        let (device, reading) = row;
        newest
            .entry((*device, &reading.obis))
            .and_modify(|kept| {
                if kept.1.read_at < reading.read_at {
                    *kept = row;
                }
            })
            .or_insert(row);
    }
    series_rows(newest.into_values())
}

/// Makes the month partitions and this connection's staging tables.
///
/// The staging tables are temporary (private to the connection, never
/// WAL-logged) and emptied at every commit; they are made once per
/// connection, without a notice when they exist.
async fn prepare(transaction: &mut PgConnection, months: &[DateTime<Utc>]) -> Result<(), StoreError> {
    sqlx::query("SELECT ohmnibus_ensure_readings_partition(at) FROM UNNEST($1::timestamptz[]) AS m(at)")
        .bind(months)
        .execute(&mut *transaction)
        .await?;
    sqlx::raw_sql(
        "DO $$ BEGIN \
             IF to_regclass('pg_temp.ingest_latest') IS NULL THEN \
                 CREATE TEMPORARY TABLE ingest_series (device_id bigint NOT NULL, obis text NOT NULL, \
                     read_at timestamptz NOT NULL, value double precision NOT NULL, unit text NOT NULL, \
                     captured_at timestamptz, quality integer NOT NULL) ON COMMIT DELETE ROWS; \
                 CREATE TEMPORARY TABLE ingest_latest (LIKE ingest_series) ON COMMIT DELETE ROWS; \
             END IF; \
         END $$",
    )
    .execute(&mut *transaction)
    .await?;
    Ok(())
}

/// Streams COPY data to `statement` (a `COPY … FROM STDIN (FORMAT binary)`).
async fn copy(transaction: &mut PgConnection, statement: &str, rows: &[u8]) -> Result<(), sqlx::Error> {
    let mut copy = transaction.copy_in_raw(statement).await?;
    copy.send(rows).await?;
    copy.finish().await?;
    Ok(())
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|error| error.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// Moves `ingest_latest` into `latest_readings` in one statement: one join
/// of the staged rows with the stored ones (only those of the batch's
/// `devices`, found by the key's first column) says which are new, which
/// are due (newer and changed, or their `read_at` due for a refresh) and
/// which are left alone; only the due ones are rewritten, the new ones are
/// added (for devices that exist). A concurrent writer of a new code (two
/// instances during a lease hand-over) leaves the newer value.
async fn update_latest(transaction: &mut PgConnection, devices: &[i64]) -> Result<(), StoreError> {
    sqlx::query(
        "WITH staged AS MATERIALIZED ( \
             SELECT b.*, l.device_id IS NOT NULL AS known, \
                    l.read_at < b.read_at AND (l.value <> b.value OR l.unit <> b.unit OR l.quality <> b.quality \
                        OR l.captured_at IS DISTINCT FROM b.captured_at \
                        OR b.read_at >= l.read_at + make_interval(secs => $1)) AS due \
             FROM ingest_latest b LEFT JOIN latest_readings l \
                 ON l.device_id = b.device_id AND l.obis = b.obis AND l.device_id = ANY($2)), \
         updated AS ( \
             UPDATE latest_readings l SET read_at = s.read_at, value = s.value, unit = s.unit, \
                 captured_at = s.captured_at, quality = s.quality \
             FROM staged s \
             WHERE s.due AND l.device_id = ANY($2) AND l.device_id = s.device_id AND l.obis = s.obis \
               AND l.read_at < s.read_at) \
         INSERT INTO latest_readings (device_id, obis, read_at, value, unit, captured_at, quality) \
         SELECT s.device_id, s.obis, s.read_at, s.value, s.unit, s.captured_at, s.quality FROM staged s \
         WHERE NOT s.known AND EXISTS (SELECT 1 FROM devices d WHERE d.id = s.device_id) \
         ON CONFLICT (device_id, obis) DO UPDATE SET read_at = EXCLUDED.read_at, value = EXCLUDED.value, \
             unit = EXCLUDED.unit, captured_at = EXCLUDED.captured_at, quality = EXCLUDED.quality \
         WHERE latest_readings.read_at < EXCLUDED.read_at",
    )
    .bind(LATEST_REFRESH_SECONDS)
    .bind(devices)
    .execute(&mut *transaction)
    .await?;
    Ok(())
}

/// The latest value of every OBIS code of a device.
pub async fn fetch_latest(pool: &PgPool, device: DeviceId) -> Result<Vec<StoredReading>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT obis, read_at, value, unit, captured_at, quality FROM latest_readings \
         WHERE device_id = $1 ORDER BY obis",
    )
    .bind(device)
    .fetch_all(pool)
    .await?)
}

/// One page of a device's readings of one code, oldest first, strictly after
/// `after` (the cursor) and within [from, to).
pub async fn fetch_readings(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    after: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<StoredReading>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT obis, read_at, value, unit, captured_at, quality FROM readings \
         WHERE device_id = $1 AND obis = $2 \
           AND ($3::timestamptz IS NULL OR read_at >= $3) \
           AND ($4::timestamptz IS NULL OR read_at < $4) \
           AND ($5::timestamptz IS NULL OR read_at > $5) \
         ORDER BY read_at LIMIT $6",
    )
    .bind(device)
    .bind(obis)
    .bind(from)
    .bind(to)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Number of stored readings of a device (for pages and tests).
pub async fn count_readings(pool: &PgPool, device: DeviceId) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM readings WHERE device_id = $1")
        .bind(device)
        .fetch_one(pool)
        .await?)
}

/// Latest values of the given codes for every device (for the fleet page).
pub async fn fetch_latest_of_codes(
    pool: &PgPool,
    codes: &[ObisCode],
) -> Result<Vec<(DeviceId, ObisCode, f64, Unit)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT device_id, obis, value, unit FROM latest_readings WHERE obis = ANY($1) ORDER BY device_id, obis",
    )
    .bind(codes)
    .fetch_all(pool)
    .await?)
}
