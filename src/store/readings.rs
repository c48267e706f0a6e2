//! Readings: batched inserts into the partitioned time series, and queries.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs};
use sqlx::{Encode, PgPool, Postgres, Type};

use super::error::StoreError;
use super::future_stamps::{FutureStamps, flag_if_future, insert_future_stamp_event};
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

/// How far an unchanged latest value's `read_at` may lag the newest read
/// before its row is rewritten anyway: `latest_readings.read_at` is the
/// newest read of the value to within this (a changed value, unit, quality
/// or capture time is written at once). Most registers of a full poll,
/// history above all, repeat their last value.
pub const LATEST_REFRESH_SECONDS: f64 = 60.0;

/// Writes a batch: one statement inserts the time series and the latest
/// values together (UNNEST arrays, no round trip per value). A month with no
/// partition yet goes to the default partition (the maintenance task makes
/// partitions ahead and moves such rows; ingest takes no lock beyond its
/// rows'). Duplicate (device, OBIS, time) rows are ignored, so
/// a batch retried after a lost acknowledgement stores nothing twice.
///
/// `now` is the server's time. A reading stamped in the future at `now`
/// (`domain::clock::is_future`) is stored flagged `future_timestamp`, is not
/// taken as the latest, and a `future_timestamp` event names its device; a
/// latest value that is itself in the future (stored before the server's
/// clock jumped back) gives way to any reading that is not.
pub async fn insert_readings(
    pool: &PgPool,
    batch: &[(DeviceId, Reading)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let columns = ReadingColumns::new(batch, |r| flag_if_future(r.quality, r.read_at, now));
    let mut transaction = pool.begin().await?;
    // The latest value per device and code is kept beside the series; within
    // a batch the newest wins, and an older batch never overwrites a newer
    // value, unless that one is past the future limit ($8). An unchanged
    // value is rewritten only once its read is $9 seconds old. What the series
    // newly took with a future stamp is counted per device, for the event.
    let future = sqlx::query_as(
        "WITH batch AS ( \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[], \
                                  $6::timestamptz[], $7::int[]) \
                 AS x(device_id, obis, read_at, value, unit, captured_at, quality)), \
         series AS ( \
             INSERT INTO readings (device_id, obis, read_at, value, unit, captured_at, quality, data_class) \
             SELECT *, ohmnibus_reading_class(obis) FROM batch ON CONFLICT DO NOTHING RETURNING device_id, read_at), \
         latest AS ( \
             INSERT INTO latest_readings (device_id, obis, read_at, value, unit, captured_at, quality) \
             SELECT DISTINCT ON (device_id, obis) * FROM batch \
             WHERE EXISTS (SELECT 1 FROM devices WHERE devices.id = batch.device_id) AND read_at <= $8 \
             ORDER BY device_id, obis, read_at DESC \
             ON CONFLICT (device_id, obis) DO UPDATE SET read_at = EXCLUDED.read_at, value = EXCLUDED.value, \
                 unit = EXCLUDED.unit, captured_at = EXCLUDED.captured_at, quality = EXCLUDED.quality \
             WHERE (latest_readings.read_at <= EXCLUDED.read_at \
                    AND (latest_readings.value IS DISTINCT FROM EXCLUDED.value \
                         OR latest_readings.unit <> EXCLUDED.unit \
                         OR latest_readings.quality <> EXCLUDED.quality \
                         OR latest_readings.captured_at IS DISTINCT FROM EXCLUDED.captured_at \
                         OR EXCLUDED.read_at >= latest_readings.read_at + make_interval(secs => $9))) \
                OR latest_readings.read_at > $8) \
         SELECT device_id, count(*) AS count, min(read_at) AS first FROM series \
         WHERE read_at > $8 GROUP BY device_id ORDER BY device_id",
    );
    let future: Vec<FutureStamps> = columns
        .bind(future)
        .bind(future_limit(now))
        .bind(LATEST_REFRESH_SECONDS)
        .fetch_all(&mut *transaction)
        .await?;
    for stamps in future {
        insert_future_stamp_event(&mut transaction, stamps, "readings", now).await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// A batch of readings as the statements take it: one array per column,
/// bound as `$1`…`$7` (device, code, read at, value, unit, captured at,
/// quality).
pub(super) struct ReadingColumns<'a> {
    devices: Vec<i64>,
    codes: Vec<&'a ObisCode>,
    times: Vec<DateTime<Utc>>,
    values: Vec<f64>,
    units: Vec<Unit>,
    captured: Vec<Option<DateTime<Utc>>>,
    quality: Vec<Quality>,
}

impl<'a> ReadingColumns<'a> {
    /// The columns of `batch`, each reading's quality as `quality` gives it.
    pub(super) fn new(batch: &'a [(DeviceId, Reading)], quality: impl Fn(&Reading) -> Quality) -> Self {
        ReadingColumns {
            devices: batch.iter().map(|(d, _)| d.0).collect(),
            codes: batch.iter().map(|(_, r)| &r.obis).collect(),
            times: batch.iter().map(|(_, r)| r.read_at).collect(),
            values: batch.iter().map(|(_, r)| r.value).collect(),
            units: batch.iter().map(|(_, r)| r.unit).collect(),
            captured: batch.iter().map(|(_, r)| r.captured_at).collect(),
            quality: batch.iter().map(|(_, r)| quality(r)).collect(),
        }
    }

    /// Binds the seven columns, in order, to a statement.
    pub(super) fn bind<'q, Q: Binds<'q>>(&'q self, query: Q) -> Q {
        query
            .bind_value(&self.devices)
            .bind_value(&self.codes)
            .bind_value(&self.times)
            .bind_value(&self.values)
            .bind_value(&self.units)
            .bind_value(&self.captured)
            .bind_value(&self.quality)
    }
}

/// A statement values are bound to, answering rows or not.
pub(super) trait Binds<'q>: Sized {
    fn bind_value<T: 'q + Encode<'q, Postgres> + Type<Postgres>>(self, value: T) -> Self;
}

impl<'q> Binds<'q> for Query<'q, Postgres, PgArguments> {
    fn bind_value<T: 'q + Encode<'q, Postgres> + Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, O> Binds<'q> for QueryAs<'q, Postgres, O, PgArguments> {
    fn bind_value<T: 'q + Encode<'q, Postgres> + Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
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
