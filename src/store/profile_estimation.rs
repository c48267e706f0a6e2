//! What the estimation pass needs to find gaps in stored load profiles, and
//! where it stores its estimates.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;

use super::error::StoreError;
use super::load_profile::{ComputedInterval, insert_computed_intervals};
use crate::domain::clock::future_limit;
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::IntervalSource;
use crate::domain::transport::Transport;
use crate::domain::unit::Unit;
use crate::domain::zone::IanaZone;
use crate::metering::estimate::Estimate;

/// An enabled device with what gap finding needs: its bus's transport (a
/// meter on an IEC line keeps a load profile of its own), its site's zone
/// and when its own load profile was last read through to the present.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EstimationDevice {
    pub id: DeviceId,
    pub transport: Json<Transport>,
    #[sqlx(flatten)]
    pub time_zone: IanaZone,
    pub profile_read_at: Option<DateTime<Utc>>,
    /// Its profile's name and what its meter's energy registers are set
    /// to: where a register rolls over.
    pub profile: String,
    pub energy_unit: Option<String>,
    pub energy_decimals: Option<i16>,
}

/// Every enabled device on an enabled bus.
pub async fn fetch_estimation_devices(pool: &PgPool) -> Result<Vec<EstimationDevice>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT d.id, b.transport, s.time_zone, s.id AS site_id, d.profile_read_at, \
         d.profile, d.energy_unit, d.energy_decimals \
         FROM devices d JOIN buses b ON b.id = d.bus_id JOIN sites s ON s.id = d.site_id \
         WHERE d.enabled AND b.enabled ORDER BY d.id",
    )
    .fetch_all(pool)
    .await?)
}

/// The channels a device has intervals of starting at or after `since`.
pub async fn fetch_profile_codes(
    pool: &PgPool,
    device: DeviceId,
    since: DateTime<Utc>,
) -> Result<Vec<ObisCode>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT obis FROM load_profile_intervals \
         WHERE device_id = $1 AND interval_start >= $2 ORDER BY obis",
    )
    .bind(device)
    .bind(since)
    .fetch_all(pool)
    .await?)
}

/// Where a channel's stored intervals break off: the interval before a
/// gap and the one after it, or the last interval (no `after`). Of each
/// interval the newest version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileBreak {
    pub before_start: DateTime<Utc>,
    pub before_minutes: i32,
    pub before_value: f64,
    pub unit: Unit,
    pub after_start: Option<DateTime<Utc>>,
    pub after_minutes: Option<i32>,
    pub after_value: Option<f64>,
}

/// The breaks in a channel's intervals starting at or after `since`,
/// oldest first, the last interval last. Found in the database, so a round
/// over a profile without gaps moves one row, not the whole window.
/// Intervals starting in the future at server time `now` are left out: a
/// meter clock far ahead does not make the span up to its stamp a gap to
/// estimate, nor hide the trailing gap before it.
pub async fn fetch_profile_breaks(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<ProfileBreak>, StoreError> {
    Ok(sqlx::query_as(
        "WITH newest AS ( \
             SELECT DISTINCT ON (interval_start) interval_start, interval_minutes, value, unit \
             FROM load_profile_intervals \
             WHERE device_id = $1 AND obis = $2 AND interval_start >= $3 AND interval_start <= $4 \
             ORDER BY interval_start, version DESC \
         ), paired AS ( \
             SELECT interval_start AS before_start, interval_minutes AS before_minutes, value AS before_value, unit, \
                    lead(interval_start) OVER w AS after_start, lead(interval_minutes) OVER w AS after_minutes, \
                    lead(value) OVER w AS after_value \
             FROM newest WINDOW w AS (ORDER BY interval_start) \
         ) \
         SELECT * FROM paired \
         WHERE after_start IS NULL OR after_start > before_start + before_minutes * interval '1 minute' \
         ORDER BY before_start",
    )
    .bind(device)
    .bind(obis)
    .bind(since)
    .bind(future_limit(now))
    .fetch_all(pool)
    .await?)
}

/// A channel's measured intervals (the newest version of each, unless it
/// is an estimate) starting in `[from, to)`, oldest first: what a long
/// gap's shape is taken from.
pub async fn fetch_measured_intervals(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i32, f64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT interval_start, interval_minutes, value FROM ( \
             SELECT DISTINCT ON (interval_start) interval_start, interval_minutes, value, source \
             FROM load_profile_intervals \
             WHERE device_id = $1 AND obis = $2 AND interval_start >= $3 AND interval_start < $4 \
             ORDER BY interval_start, version DESC \
         ) AS newest WHERE source <> 'estimated' ORDER BY interval_start",
    )
    .bind(device)
    .bind(obis)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// A code's reads from the last at or before `from` to the first at or
/// after `to`, oldest first, as (instant, value): the register around and
/// over a gap.
pub async fn fetch_register_reads_around(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, f64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT read_at, value FROM readings \
         WHERE device_id = $1 AND obis = $2 \
           AND read_at >= COALESCE((SELECT max(read_at) FROM readings \
                                    WHERE device_id = $1 AND obis = $2 AND read_at <= $3), $3) \
           AND read_at <= COALESCE((SELECT min(read_at) FROM readings \
                                    WHERE device_id = $1 AND obis = $2 AND read_at >= $4), $4) \
         ORDER BY read_at",
    )
    .bind(device)
    .bind(obis)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// Stores estimates as version 1 with source `estimated` and the
/// `estimated` flag; an interval already stored is kept. Returns how many
/// were new.
pub async fn insert_estimated_intervals(
    pool: &PgPool,
    device: DeviceId,
    obis: &ObisCode,
    unit: Unit,
    estimates: &[Estimate],
) -> Result<u64, StoreError> {
    let computed = estimates.iter().map(|e| ComputedInterval {
        start: e.start,
        minutes: e.minutes,
        value: e.value,
        quality: Quality::ESTIMATED,
    });
    insert_computed_intervals(pool, device, obis, unit, IntervalSource::Estimated, computed).await
}
