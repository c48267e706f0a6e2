//! What the server-side billing pass needs: the devices on sites with a
//! billing schedule, and the reads around a schedule instant.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::error::StoreError;
use crate::domain::clock::future_limit;
use crate::domain::ids::{DeviceId, SiteId};
use crate::domain::obis::ObisCode;
use crate::domain::unit::Unit;
use crate::domain::zone::IanaZone;

/// An enabled device on a site with a billing schedule, with the codes it
/// has reported.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduledDevice {
    pub id: DeviceId,
    pub profile: String,
    #[sqlx(flatten)]
    pub time_zone: IanaZone,
    pub billing_day: i16,
    pub billing_hour: i16,
    pub codes: Vec<ObisCode>,
}

/// Every enabled device on an enabled bus of a site with a schedule.
pub async fn fetch_scheduled_devices(pool: &PgPool) -> Result<Vec<ScheduledDevice>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT d.id, d.profile, s.time_zone, s.id AS site_id, s.billing_day, s.billing_hour, \
                COALESCE(array_agg(l.obis ORDER BY l.obis) FILTER (WHERE l.obis IS NOT NULL), '{}') AS codes \
         FROM devices d JOIN buses b ON b.id = d.bus_id JOIN sites s ON s.id = d.site_id \
         LEFT JOIN latest_readings l ON l.device_id = d.id \
         WHERE d.enabled AND b.enabled AND s.billing_day IS NOT NULL AND s.billing_hour IS NOT NULL \
         GROUP BY d.id, d.profile, s.time_zone, s.id, s.billing_day, s.billing_hour \
         ORDER BY d.id",
    )
    .fetch_all(pool)
    .await?)
}

/// When any of a device's `codes` was first read: where its server periods
/// start when it has none yet.
pub async fn fetch_first_read(
    pool: &PgPool,
    device: DeviceId,
    codes: &[ObisCode],
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT min(read_at) FROM readings WHERE device_id = $1 AND obis = ANY($2)")
            .bind(device)
            .bind(codes)
            .fetch_one(pool)
            .await?,
    )
}

/// For one code: its unit, the last read at or before an instant and the
/// first read after it, as (instant, value).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReadsAround {
    pub obis: ObisCode,
    pub unit: Option<Unit>,
    pub before_at: Option<DateTime<Utc>>,
    pub before_value: Option<f64>,
    pub after_at: Option<DateTime<Utc>>,
    pub after_value: Option<f64>,
}

/// The reads around `at` of each of a device's `codes`, in the codes' order.
/// A read stamped in the future at server time `now` is never the read
/// after: a period is closed only once a present read shows its end.
pub async fn fetch_reads_around(
    pool: &PgPool,
    device: DeviceId,
    codes: &[ObisCode],
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<ReadsAround>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT c.obis, COALESCE(b.unit, a.unit) AS unit, \
                b.read_at AS before_at, b.value AS before_value, a.read_at AS after_at, a.value AS after_value \
         FROM UNNEST($2::text[]) WITH ORDINALITY AS c(obis, n) \
         LEFT JOIN LATERAL (SELECT read_at, value, unit FROM readings \
                            WHERE device_id = $1 AND obis = c.obis AND read_at <= $3 \
                            ORDER BY read_at DESC LIMIT 1) b ON true \
         LEFT JOIN LATERAL (SELECT read_at, value, unit FROM readings \
                            WHERE device_id = $1 AND obis = c.obis AND read_at > $3 AND read_at <= $4 \
                            ORDER BY read_at LIMIT 1) a ON true \
         ORDER BY c.n",
    )
    .bind(device)
    .bind(codes)
    .bind(at)
    .bind(future_limit(now))
    .fetch_all(pool)
    .await?)
}

/// A site with its billing schedule.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SiteRow {
    pub id: SiteId,
    pub name: String,
    #[sqlx(flatten)]
    pub time_zone: IanaZone,
    pub billing_day: Option<i16>,
    pub billing_hour: Option<i16>,
    /// Unmetered share of a parent's energy above which a balance raises an
    /// event, in percent.
    pub balance_threshold_percent: f64,
    /// How far a meter's tariff register may differ from the server's split
    /// before the TOU audit raises `tou_mismatch`, in percent of the
    /// period's energy.
    pub tou_tolerance_percent: f64,
}

/// Every site, by id.
pub async fn fetch_sites(pool: &PgPool) -> Result<Vec<SiteRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, id AS site_id, name, time_zone, billing_day, billing_hour, balance_threshold_percent, tou_tolerance_percent FROM sites ORDER BY id")
            .fetch_all(pool)
            .await?,
    )
}

/// Sets a site's billing schedule (both or neither, as the table's
/// `sites_billing_schedule_check` requires); `None` when there is no such site.
pub async fn update_site_schedule<'e>(
    db: impl PgExecutor<'e>,
    site: SiteId,
    schedule: Option<(i16, i16)>,
) -> Result<Option<SiteRow>, StoreError> {
    Ok(sqlx::query_as(
        "UPDATE sites SET billing_day = $2, billing_hour = $3 WHERE id = $1 \
         RETURNING id, id AS site_id, name, time_zone, billing_day, billing_hour, balance_threshold_percent, tou_tolerance_percent",
    )
    .bind(site)
    .bind(schedule.map(|s| s.0))
    .bind(schedule.map(|s| s.1))
    .fetch_optional(db)
    .await?)
}

/// Sets a site's zone; `None` when there is no such site.
pub async fn update_site_zone<'e>(
    db: impl PgExecutor<'e>,
    site: SiteId,
    zone: IanaZone,
) -> Result<Option<SiteRow>, StoreError> {
    Ok(sqlx::query_as(
        "UPDATE sites SET time_zone = $2 WHERE id = $1 \
         RETURNING id, id AS site_id, name, time_zone, billing_day, billing_hour, balance_threshold_percent, tou_tolerance_percent",
    )
    .bind(site)
    .bind(zone)
    .fetch_optional(db)
    .await?)
}
