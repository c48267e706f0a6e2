//! What a device's data-quality summary needs: its interval length, its
//! site's zone, its first stored interval, and which interval starts hold
//! estimates.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::error::StoreError;
use crate::domain::ids::DeviceId;
use crate::domain::zone::IanaZone;

/// A device as its data-quality summary sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct QualityDevice {
    pub profile: String,
    /// Set for a meter read over IEC 62056-21 (its own load profile).
    pub iec_address: Option<String>,
    pub interval_minutes: i32,
    #[sqlx(flatten)]
    pub time_zone: IanaZone,
    /// Start of its first stored interval, any source or channel.
    pub first_interval: Option<DateTime<Utc>>,
    /// The length of the newest interval read from the meter itself (its
    /// own load profile's period, as its header stated it).
    pub meter_period: Option<i32>,
}

/// `None` when there is no such device.
pub(crate) async fn fetch_quality_device(pool: &PgPool, device: DeviceId) -> Result<Option<QualityDevice>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT d.profile, d.iec_address, d.interval_minutes, s.time_zone, s.id AS site_id, \
                (SELECT min(interval_start) FROM load_profile_intervals WHERE device_id = d.id) AS first_interval, \
                (SELECT interval_minutes FROM load_profile_intervals \
                 WHERE device_id = d.id AND source = 'meter' \
                 ORDER BY interval_start DESC LIMIT 1) AS meter_period \
         FROM devices d JOIN buses b ON b.id = d.bus_id JOIN sites s ON s.id = d.site_id \
         WHERE d.id = $1",
    )
    .bind(device)
    .fetch_optional(pool)
    .await?)
}

/// Every interval start in `[from, to)` the device has stored, once, oldest
/// first, with whether it is estimated: the newest version of any of its
/// channels has source `estimated` or the `estimated` flag (bit 0).
pub(crate) async fn fetch_interval_starts(
    pool: &PgPool,
    device: DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, bool)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT interval_start, bool_or(source = 'estimated' OR quality & 1 <> 0) \
         FROM ( \
             SELECT DISTINCT ON (obis, interval_start) interval_start, quality, source \
             FROM load_profile_intervals \
             WHERE device_id = $1 AND interval_start >= $2 AND interval_start < $3 \
             ORDER BY obis, interval_start, version DESC \
         ) AS newest \
         GROUP BY interval_start ORDER BY interval_start",
    )
    .bind(device)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}
