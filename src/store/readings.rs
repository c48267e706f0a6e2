//! Readings: batched inserts into the partitioned time series, and queries.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::copy_binary::CopyBinary;
use super::error::StoreError;
use super::future_stamps::{FutureStamps, flag_if_future, insert_future_stamp_event};
use super::latest_values::LatestValues;
use super::partitions::ReadingClass;
use super::reading_columns::ReadingColumns;
use crate::device::reading::Reading;
use crate::domain::clock::future_limit;
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

/// Writes a batch into the time series and then the latest values (the
/// outbox keeps the latest values with a `store::readings_writer::ReadingsWriter`
/// instead, which writes them when no batch is left, and at most every
/// `LATEST_EVERY` while batches keep coming). See [`insert_series`] and
/// `store::latest_values`.
pub async fn insert_readings(
    pool: &PgPool,
    batch: &[(DeviceId, Reading)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    insert_series(pool, batch, now).await?;
    let mut latest = LatestValues::default();
    latest.take(batch, now);
    latest.flush(pool, now).await?;
    Ok(())
}

/// Writes a batch into the time series, exactly once: by one binary `COPY`
/// (the fast path: a batch is new but for a retry or a replay), and when
/// the key refuses it because some of its rows are stored already (a batch
/// retried after a lost acknowledgement, a replayed spill file), by one
/// statement that skips the rows already there. A month with no partition
/// yet goes to the default partition (the maintenance task makes
/// partitions ahead and moves such rows; ingest takes no lock beyond its
/// rows').
///
/// `now` is the server's time. A reading stamped in the future at `now`
/// (`domain::clock::is_future`) is stored flagged `future_timestamp`, and a
/// `future_timestamp` event names its device, in the same transaction.
pub async fn insert_series(pool: &PgPool, batch: &[(DeviceId, Reading)], now: DateTime<Utc>) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    match copy_series(pool, batch, now).await {
        Err(StoreError::Database(error)) if is_unique_violation(&error) => insert_series_again(pool, batch, now).await,
        result => result,
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|error| error.code().as_deref() == Some(UNIQUE_VIOLATION))
}

/// SQLSTATE `unique_violation` (PostgreSQL 15 documentation, Appendix A).
const UNIQUE_VIOLATION: &str = "23505";

/// The columns of `readings` a binary `COPY` of [`copy_row`]s fills, in
/// their order.
pub const COPY_COLUMNS: &str = "device_id, obis, read_at, value, unit, captured_at, quality, data_class";

/// Adds a reading of `device` with `quality` to `copy` as a row of
/// [`COPY_COLUMNS`], its data class computed as `ohmnibus_reading_class`
/// would (`ReadingClass::of`).
pub fn copy_row(copy: &mut CopyBinary, device: DeviceId, reading: &Reading, quality: Quality) {
    copy.row(8)
        .int8(device.0)
        .text(&reading.obis)
        .timestamptz(reading.read_at)
        .float8(reading.value)
        .text(&reading.unit.as_str())
        .timestamptz_or_null(reading.captured_at)
        .int4(quality.0)
        .int2(ReadingClass::of(&reading.obis).number());
}

/// The fast path of [`insert_series`]: the rows in PostgreSQL's binary
/// `COPY` format (`store::copy_binary`), each reading's data class
/// computed here as `ohmnibus_reading_class` would (`ReadingClass::of`).
async fn copy_series(pool: &PgPool, batch: &[(DeviceId, Reading)], now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut copy = CopyBinary::with_capacity(batch.len(), 96);
    let mut future: Vec<FutureStamps> = Vec::new();
    for (device, reading) in batch {
        let quality = flag_if_future(reading.quality, reading.read_at, now);
        if quality != reading.quality {
            match future.iter_mut().find(|stamps| stamps.device_id == *device) {
                Some(stamps) => {
                    stamps.count += 1;
                    stamps.first = stamps.first.min(reading.read_at);
                }
                None => future.push(FutureStamps {
                    device_id: *device,
                    count: 1,
                    first: reading.read_at,
                }),
            }
        }
        copy_row(&mut copy, *device, reading, quality);
    }
    let copy_statement = format!("COPY readings ({COPY_COLUMNS}) FROM STDIN (FORMAT binary)");
    if future.is_empty() {
        // One statement is its own transaction.
        let mut connection = pool.acquire().await?;
        let mut sink = connection.copy_in_raw(&copy_statement).await?;
        sink.send(copy.finish()).await?;
        sink.finish().await?;
        return Ok(());
    }
    let mut transaction = pool.begin().await?;
    let mut sink = transaction.copy_in_raw(&copy_statement).await?;
    sink.send(copy.finish()).await?;
    sink.finish().await?;
    future.sort_by_key(|stamps| stamps.device_id);
    for stamps in future {
        insert_future_stamp_event(&mut transaction, stamps, "readings", now).await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// The slow path of [`insert_series`], for a batch met again: one statement
/// (UNNEST arrays) that skips the rows already stored. What it newly took
/// with a future stamp is counted per device, for the event.
async fn insert_series_again(
    pool: &PgPool,
    batch: &[(DeviceId, Reading)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let columns = ReadingColumns::new(batch, |r| flag_if_future(r.quality, r.read_at, now));
    let mut transaction = pool.begin().await?;
    let future = sqlx::query_as(
        "WITH series AS ( \
             INSERT INTO readings (device_id, obis, read_at, value, unit, captured_at, quality, data_class) \
             SELECT *, ohmnibus_reading_class(obis) \
             FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[], \
                         $6::timestamptz[], $7::int[]) \
                 AS x(device_id, obis, read_at, value, unit, captured_at, quality) \
             ON CONFLICT DO NOTHING RETURNING device_id, read_at) \
         SELECT device_id, count(*) AS count, min(read_at) AS first FROM series \
         WHERE read_at > $8 GROUP BY device_id ORDER BY device_id",
    );
    let future: Vec<FutureStamps> = columns
        .bind(future)
        .bind(future_limit(now))
        .fetch_all(&mut *transaction)
        .await?;
    for stamps in future {
        insert_future_stamp_event(&mut transaction, stamps, "readings", now).await?;
    }
    transaction.commit().await?;
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
