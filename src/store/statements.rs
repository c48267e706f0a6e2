//! The intervals a statement, a TOU audit or a balance is computed from.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use super::error::StoreError;
use super::load_profile::{ProfileInterval, fetch_load_profile};
use crate::domain::ids::{DeviceId, SiteId};
use crate::metering::statement::ChannelInterval;

/// The longest interval a meter records (`interval_minutes` 1–120): an
/// interval starting this long before a period can still reach into it.
pub(crate) const LONGEST_INTERVAL: TimeDelta = TimeDelta::minutes(120);

/// A stored interval as a statement takes it.
pub(crate) fn channel_interval(row: ProfileInterval) -> ChannelInterval {
    ChannelInterval {
        obis: row.obis,
        start: row.interval_start,
        minutes: u32::try_from(row.interval_minutes).unwrap_or(0),
        value: row.value,
        unit: row.unit,
        quality: row.quality,
        source: row.source,
    }
}

/// The newest version of each of a device's intervals that overlaps
/// `[from, to)`, every channel.
pub(crate) async fn fetch_period_intervals(
    pool: &PgPool,
    device: DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ChannelInterval>, StoreError> {
    let rows = fetch_load_profile(pool, device, from - LONGEST_INTERVAL, to, None).await?;
    Ok(rows
        .into_iter()
        .map(channel_interval)
        .filter(|interval| interval.end() > from)
        .collect())
}

/// The site a device or a virtual meter belongs to (a device's own
/// `site_id`, which defaults to its bus's site but may be moved), or `None`
/// when there is neither with that id. The two share one id sequence
/// (migration `site_tree`), so at most one row answers.
pub(crate) async fn fetch_device_site(pool: &PgPool, device: DeviceId) -> Result<Option<SiteId>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT site_id FROM devices WHERE id = $1 \
         UNION ALL SELECT site_id FROM virtual_meters WHERE id = $1 LIMIT 1",
    )
    .bind(device)
    .fetch_optional(pool)
    .await?)
}
