//! A site's clock synchronisation policy, and the meters' clocks as last
//! read (their date and time registers), from which their drift is known.

use chrono::{DateTime, NaiveTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::error::StoreError;
use super::latest_values::LATEST_REFRESH_SECONDS;
use crate::domain::ids::{DeviceId, SiteId};
use crate::domain::zone::IanaZone;

/// The meter's date as a number YYMMDD (TH40C 0x1040, as profiles name it).
const DATE: &str = "1-0:0.9.2";
/// The meter's time of day as a number hhmmss.
const TIME: &str = "1-0:0.9.1";

/// When a site's meters have their clocks set: every day at `at`, local,
/// those at least `min_drift_s` seconds off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ClockSync {
    #[sqlx(rename = "clock_sync_enabled")]
    pub enabled: bool,
    #[sqlx(rename = "clock_sync_at")]
    pub at: NaiveTime,
    #[sqlx(rename = "clock_sync_min_drift_s")]
    pub min_drift_s: i32,
}

impl Default for ClockSync {
    /// A new site's (the columns' defaults): disabled, 03:00, 1 s.
    fn default() -> ClockSync {
        ClockSync {
            enabled: false,
            at: NaiveTime::from_hms_opt(3, 0, 0).expect("a time"),
            min_drift_s: 1,
        }
    }
}

/// A site's clock synchronisation, with its zone.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SiteClockSync {
    pub site_id: SiteId,
    #[sqlx(flatten)]
    pub time_zone: IanaZone,
    #[sqlx(flatten)]
    pub sync: ClockSync,
}

/// A site's policy; `None` when there is no such site.
pub(crate) async fn fetch_clock_sync(pool: &PgPool, site: SiteId) -> Result<Option<ClockSync>, StoreError> {
    Ok(
        sqlx::query_as("SELECT clock_sync_enabled, clock_sync_at, clock_sync_min_drift_s FROM sites WHERE id = $1")
            .bind(site)
            .fetch_optional(pool)
            .await?,
    )
}

/// Every site's policy, by site.
pub(crate) async fn fetch_clock_syncs(pool: &PgPool) -> Result<Vec<SiteClockSync>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id AS site_id, time_zone, clock_sync_enabled, clock_sync_at, clock_sync_min_drift_s FROM sites \
         ORDER BY id",
    )
    .fetch_all(pool)
    .await?)
}

/// Sets a site's policy; `false` when there is no such site.
pub(crate) async fn update_clock_sync(
    db: &mut PgConnection,
    site: SiteId,
    sync: ClockSync,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE sites SET clock_sync_enabled = $2, clock_sync_at = $3, clock_sync_min_drift_s = $4 WHERE id = $1",
    )
    .bind(site)
    .bind(sync.enabled)
    .bind(sync.at)
    .bind(sync.min_drift_s)
    .execute(&mut *db)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Each meter's clock as last read: its date (YYMMDD) and time (hhmmss)
/// registers of one read, and when the server read them.
///
/// The time changes at every read, so its latest row is that read's; the
/// date's row is rewritten when the date changes and otherwise refreshed
/// only every [`LATEST_REFRESH_SECONDS`] (`store::readings`), so the date
/// of the same read is the latest date row at most that much older.
pub(crate) async fn fetch_latest_clocks(pool: &PgPool) -> Result<Vec<(DeviceId, f64, f64, DateTime<Utc>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT d.device_id, d.value, t.value, t.read_at FROM latest_readings d \
         JOIN latest_readings t ON t.device_id = d.device_id AND t.obis = $2 \
             AND t.read_at >= d.read_at AND t.read_at < d.read_at + make_interval(secs => $3) \
         WHERE d.obis = $1 ORDER BY d.device_id",
    )
    .bind(DATE)
    .bind(TIME)
    .bind(LATEST_REFRESH_SECONDS)
    .fetch_all(pool)
    .await?)
}
