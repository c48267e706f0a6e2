//! Load profile intervals: what meters recorded per interval, written in
//! batches and never overwritten.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, PgPool, Postgres, Row};

use super::error::StoreError;
use super::future_stamps::{FutureStamps, flag_if_future, insert_future_stamp_event};
use crate::device::profile_interval::Interval;
use crate::domain::clock::{future_limit, is_future};
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::IntervalSource;
use crate::domain::unit::Unit;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredInterval {
    pub obis: ObisCode,
    pub interval_start: DateTime<Utc>,
    pub interval_minutes: i32,
    pub value: f64,
    pub unit: Unit,
    pub meter_status: String,
    pub quality: Quality,
    pub source: IntervalSource,
}

/// An interval length as the `interval_minutes` column holds it.
fn minutes_column(minutes: u32) -> i32 {
    i32::try_from(minutes).unwrap_or(i32::MAX)
}

/// One interval of a channel that a pass over stored data computed.
pub(super) struct ComputedInterval {
    pub(super) start: DateTime<Utc>,
    pub(super) minutes: u32,
    pub(super) value: f64,
    pub(super) quality: Quality,
}

/// Stores a pass's intervals of one channel as version 1 with `source`; an
/// interval already stored is kept. Returns how many were new.
pub(super) async fn insert_computed_intervals(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    unit: Unit,
    source: IntervalSource,
    intervals: impl ExactSizeIterator<Item = ComputedInterval>,
) -> Result<u64, StoreError> {
    if intervals.len() == 0 {
        return Ok(0);
    }
    let mut transaction = pool.begin().await?;
    let inserted = insert_computed_intervals_in(&mut transaction, device, obis, unit, source, intervals).await?;
    transaction.commit().await?;
    Ok(inserted)
}

/// [`insert_computed_intervals`] inside the caller's transaction.
pub(super) async fn insert_computed_intervals_in(
    transaction: &mut PgConnection,
    device: DeviceId,
    obis: &ObisCode,
    unit: Unit,
    source: IntervalSource,
    intervals: impl ExactSizeIterator<Item = ComputedInterval>,
) -> Result<u64, StoreError> {
    if intervals.len() == 0 {
        return Ok(0);
    }
    let mut starts = Vec::with_capacity(intervals.len());
    let mut minutes = Vec::with_capacity(intervals.len());
    let mut values = Vec::with_capacity(intervals.len());
    let mut quality = Vec::with_capacity(intervals.len());
    for interval in intervals {
        starts.push(interval.start);
        minutes.push(minutes_column(interval.minutes));
        values.push(interval.value);
        quality.push(interval.quality);
    }
    let inserted = sqlx::query(
        "INSERT INTO load_profile_intervals \
             (device_id, obis, interval_start, interval_minutes, value, unit, quality, source, version) \
         SELECT $1, $2, x.start, x.minutes, x.value, $3, x.quality, $4, 1 \
         FROM UNNEST($5::timestamptz[], $6::int[], $7::float8[], $8::int[]) AS x(start, minutes, value, quality) \
         ON CONFLICT DO NOTHING",
    )
    .bind(device)
    .bind(obis)
    .bind(unit)
    .bind(source)
    .bind(&starts)
    .bind(&minutes)
    .bind(&values)
    .bind(&quality)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    Ok(inserted)
}

/// Why a meter value becomes a new version of an estimated interval.
pub const METER_REPLACES_ESTIMATE: &str = "meter value replaces estimate";

/// A batch of intervals read from a meter, a column each, as the UNNEST
/// inserts bind them.
struct MeterColumns<'a> {
    codes: Vec<&'a ObisCode>,
    starts: Vec<DateTime<Utc>>,
    minutes: Vec<i32>,
    values: Vec<f64>,
    units: Vec<Unit>,
    statuses: Vec<&'a str>,
    quality: Vec<Quality>,
}

impl<'a> MeterColumns<'a> {
    /// The columns of `intervals`, those starting in the future at server
    /// time `now` flagged `future_timestamp`.
    fn new(intervals: &'a [Interval], now: DateTime<Utc>) -> Self {
        Self {
            codes: intervals.iter().map(|i| &i.obis).collect(),
            starts: intervals.iter().map(|i| i.start).collect(),
            minutes: intervals.iter().map(|i| minutes_column(i.minutes)).collect(),
            values: intervals.iter().map(|i| i.value).collect(),
            units: intervals.iter().map(|i| i.unit).collect(),
            statuses: intervals.iter().map(|i| i.meter_status.as_str()).collect(),
            quality: intervals
                .iter()
                .map(|i| flag_if_future(i.quality, i.start, now))
                .collect(),
        }
    }

    /// Binds the device as `$1` and the columns as `$2` to `$8`.
    fn bind<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
        device: DeviceId,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(device)
            .bind(&self.codes)
            .bind(&self.starts)
            .bind(&self.minutes)
            .bind(&self.values)
            .bind(&self.units)
            .bind(&self.statuses)
            .bind(&self.quality)
    }
}

/// Stores a device's intervals read from the meter. An interval already
/// stored is kept as it is: a re-read never rewrites what was recorded.
/// Where the newest version of an interval is an estimate, the meter's
/// value becomes the next version (changed by `meter`), so a gap estimated
/// before the meter's history arrived shows what the meter recorded, and
/// the estimate stays on record. Returns how many were new or replaced an
/// estimate.
///
/// `now` is the server's time: an interval starting in the future at
/// `now` (a meter clock far ahead) is stored flagged `future_timestamp`,
/// and a `future_timestamp` event names the device when one is new; it is
/// never where a read resumes ([`fetch_last_meter_interval`]).
pub async fn insert_meter_intervals(
    pool: &PgPool,
    device: DeviceId,
    intervals: &[Interval],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if intervals.is_empty() {
        return Ok(0);
    }
    let columns = MeterColumns::new(intervals, now);
    let mut transaction = pool.begin().await?;
    let replace = sqlx::query(
        "INSERT INTO load_profile_intervals \
             (device_id, obis, interval_start, interval_minutes, value, unit, meter_status, quality, source, \
              version, changed_by, reason) \
         SELECT $1, x.obis, x.start, x.minutes, x.value, x.unit, x.status, x.quality, 'meter', \
                newest.version + 1, 'meter', $9 \
         FROM UNNEST($2::text[], $3::timestamptz[], $4::int[], $5::float8[], $6::text[], $7::text[], $8::int[]) \
              AS x(obis, start, minutes, value, unit, status, quality) \
         JOIN LATERAL (SELECT version, source FROM load_profile_intervals l \
                       WHERE l.device_id = $1 AND l.obis = x.obis AND l.interval_start = x.start \
                       ORDER BY version DESC LIMIT 1) AS newest ON newest.source = 'estimated' \
         ON CONFLICT DO NOTHING RETURNING interval_start",
    );
    let replaced: Vec<DateTime<Utc>> = columns
        .bind(replace, device)
        .bind(METER_REPLACES_ESTIMATE)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let insert = sqlx::query(
        "INSERT INTO load_profile_intervals \
             (device_id, obis, interval_start, interval_minutes, value, unit, meter_status, quality, source) \
         SELECT $1, x.* , 'meter' FROM UNNEST($2::text[], $3::timestamptz[], $4::int[], $5::float8[], \
                                            $6::text[], $7::text[], $8::int[]) AS x \
         ON CONFLICT DO NOTHING RETURNING interval_start",
    );
    let inserted: Vec<DateTime<Utc>> = columns
        .bind(insert, device)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let new_in_future: Vec<DateTime<Utc>> = inserted
        .iter()
        .chain(&replaced)
        .copied()
        .filter(|start| is_future(*start, now))
        .collect();
    if let Some(first) = new_in_future.iter().min() {
        let stamps = FutureStamps {
            device_id: device,
            count: i64::try_from(new_in_future.len()).unwrap_or(i64::MAX),
            first: *first,
        };
        insert_future_stamp_event(&mut transaction, stamps, "load-profile intervals", now).await?;
    }
    transaction.commit().await?;
    Ok((inserted.len() + replaced.len()) as u64)
}

/// Records that a device's load profile was read through to `at`: what
/// the meter holds up to then is stored, so a span after its last interval
/// is one the meter will not fill.
pub async fn update_profile_read_at(pool: &PgPool, device: DeviceId, at: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET profile_read_at = $2 WHERE id = $1")
        .bind(device)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
}

/// Start of the newest interval stored from the meter, where a load
/// profile read resumes. An interval starting in the future at server time
/// `now` is passed over: one bad stamp (a meter clock far ahead, a server
/// clock that jumped back since) never pins the read.
pub async fn fetch_last_meter_interval(
    pool: &PgPool,
    device: DeviceId,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT max(interval_start) FROM load_profile_intervals \
         WHERE device_id = $1 AND source = 'meter' AND interval_start <= $2",
    )
    .bind(device)
    .bind(future_limit(now))
    .fetch_one(pool)
    .await?)
}

/// A device's intervals of one channel in `[from, to)`, oldest first.
pub async fn fetch_intervals(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StoredInterval>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT obis, interval_start, interval_minutes, value, unit, meter_status, quality, source \
         FROM load_profile_intervals \
         WHERE device_id = $1 AND obis = $2 AND interval_start >= $3 AND interval_start < $4 \
         ORDER BY interval_start",
    )
    .bind(device)
    .bind(obis)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// A device's newest stored interval and how many distinct intervals start
/// at or after `since` (all channels of one interval count once), leaving
/// out those starting in the future at server time `now` (a meter clock far
/// ahead): the newest shown is the newest that is not.
pub async fn fetch_interval_summary(
    pool: &PgPool,
    device: DeviceId,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Option<DateTime<Utc>>, i64), StoreError> {
    Ok(sqlx::query_as(
        "SELECT max(interval_start), count(DISTINCT interval_start) FILTER (WHERE interval_start >= $2) \
         FROM load_profile_intervals WHERE device_id = $1 AND interval_start <= $3",
    )
    .bind(device)
    .bind(since)
    .bind(future_limit(now))
    .fetch_one(pool)
    .await?)
}

/// One interval as the load-profile API shows it: the newest version of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileInterval {
    pub obis: ObisCode,
    pub interval_start: DateTime<Utc>,
    pub interval_minutes: i32,
    pub value: f64,
    pub unit: Unit,
    pub quality: Quality,
    pub source: IntervalSource,
    pub version: i32,
    /// The meter's own status of the interval, as read (empty when none).
    pub meter_status: String,
}

/// A device's load profile in `[from, to)`: of every (channel, start) the
/// newest version only, since a correction is a new version and never an
/// update. Ordered by start, then channel; `obis` keeps one channel.
pub async fn fetch_load_profile(
    pool: &PgPool,
    device: DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    obis: Option<&ObisCode>,
) -> Result<Vec<ProfileInterval>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM ( \
             SELECT DISTINCT ON (obis, interval_start) \
                    obis, interval_start, interval_minutes, value, unit, quality, source, version, meter_status \
             FROM load_profile_intervals \
             WHERE device_id = $1 AND interval_start >= $2 AND interval_start < $3 \
               AND ($4::text IS NULL OR obis = $4) \
             ORDER BY obis, interval_start, version DESC \
         ) AS newest ORDER BY interval_start, obis",
    )
    .bind(device)
    .bind(from)
    .bind(to)
    .bind(obis)
    .fetch_all(pool)
    .await?)
}

/// The interval length configured for a device, or `None` when there is no
/// such device.
pub async fn fetch_device_interval_minutes(pool: &PgPool, device: DeviceId) -> Result<Option<i32>, StoreError> {
    Ok(sqlx::query_scalar("SELECT interval_minutes FROM devices WHERE id = $1")
        .bind(device)
        .fetch_optional(pool)
        .await?)
}

/// Stores a corrected interval as the next version of what is stored, with
/// who changed it and why (the schema requires both beyond version 1).
/// Returns the new version, or `None` when no interval is stored there.
pub async fn insert_interval_version(
    pool: &PgPool,
    device: DeviceId,
    interval: &Interval,
    source: IntervalSource,
    changed_by: &str,
    reason: &str,
) -> Result<Option<i32>, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO load_profile_intervals \
             (device_id, obis, interval_start, interval_minutes, value, unit, meter_status, quality, source, \
              version, changed_by, reason) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, max(version) + 1, $10, $11 \
         FROM load_profile_intervals WHERE device_id = $1 AND obis = $2 AND interval_start = $3 \
         HAVING count(*) > 0 \
         RETURNING version",
    )
    .bind(device)
    .bind(&interval.obis)
    .bind(interval.start)
    .bind(minutes_column(interval.minutes))
    .bind(interval.value)
    .bind(interval.unit)
    .bind(&interval.meter_status)
    .bind(interval.quality)
    .bind(source)
    .bind(changed_by)
    .bind(reason)
    .fetch_optional(pool)
    .await?)
}
