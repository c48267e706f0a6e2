//! Sites: creating one, its name, its balance threshold and its TOU audit
//! tolerance. The billing
//! schedule and the zone are set in `billing_schedule`, which holds the row.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::billing_schedule::SiteRow;
use super::error::{StoreError, on_constraint};
use crate::domain::ids::SiteId;
use crate::domain::zone::IanaZone;

/// A statement ending in the columns of a [`SiteRow`] (sqlx takes only static SQL).
macro_rules! returning_site {
    ($head:literal) => {
        concat!(
            $head,
            " id, id AS site_id, name, time_zone, billing_day, billing_hour, balance_threshold_percent, tou_tolerance_percent"
        )
    };
}

/// The constraints of `sites` by the field they concern, then the shared ones.
fn on_site_constraint(error: sqlx::Error) -> StoreError {
    let name = error.as_database_error().and_then(|db| db.constraint());
    let (field, reason) = match name {
        Some("sites_name_key") => ("name", "a site with this name already exists"),
        Some("sites_balance_threshold_percent_check") => {
            ("balance_threshold_percent", "must be above 0 and at most 100")
        }
        Some("sites_tou_tolerance_percent_check") => ("tou_tolerance_percent", "must be above 0 and at most 100"),
        _ => return on_constraint(error),
    };
    StoreError::Conflict {
        field,
        reason: reason.to_owned(),
    }
}

/// A site to create.
#[derive(Debug, Clone)]
pub(crate) struct NewSite<'a> {
    pub name: &'a str,
    pub time_zone: IanaZone,
    /// Day (1–28) and hour (0–23), or none.
    pub schedule: Option<(i16, i16)>,
    pub balance_threshold_percent: Option<f64>,
}

/// Inserts a site; a name already taken is a conflict on `name`.
pub(crate) async fn insert_site<'e>(db: impl PgExecutor<'e>, site: &NewSite<'_>) -> Result<SiteRow, StoreError> {
    sqlx::query_as(returning_site!(
        "INSERT INTO sites (name, time_zone, billing_day, billing_hour, balance_threshold_percent) \
         VALUES ($1, $2, $3, $4, COALESCE($5, 5)) RETURNING"
    ))
    .bind(site.name)
    .bind(site.time_zone)
    .bind(site.schedule.map(|s| s.0))
    .bind(site.schedule.map(|s| s.1))
    .bind(site.balance_threshold_percent)
    .fetch_one(db)
    .await
    .map_err(on_site_constraint)
}

pub(crate) async fn fetch_site<'e>(db: impl PgExecutor<'e>, id: SiteId) -> Result<Option<SiteRow>, StoreError> {
    Ok(
        sqlx::query_as(concat!(returning_site!("SELECT"), " FROM sites WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// Renames a site; `None` when there is no such site.
pub(crate) async fn update_site_name<'e>(
    db: impl PgExecutor<'e>,
    id: SiteId,
    name: &str,
) -> Result<Option<SiteRow>, StoreError> {
    sqlx::query_as(returning_site!("UPDATE sites SET name = $2 WHERE id = $1 RETURNING"))
        .bind(id)
        .bind(name)
        .fetch_optional(db)
        .await
        .map_err(on_site_constraint)
}

/// Sets a site's balance threshold (percent); `None` when there is no such site.
pub(crate) async fn update_site_balance_threshold<'e>(
    db: impl PgExecutor<'e>,
    id: SiteId,
    percent: f64,
) -> Result<Option<SiteRow>, StoreError> {
    sqlx::query_as(returning_site!(
        "UPDATE sites SET balance_threshold_percent = $2 WHERE id = $1 RETURNING"
    ))
    .bind(id)
    .bind(percent)
    .fetch_optional(db)
    .await
    .map_err(on_site_constraint)
}

/// Sets a site's TOU audit tolerance (percent); `None` when there is no such site.
pub(crate) async fn update_site_tou_tolerance<'e>(
    db: impl PgExecutor<'e>,
    id: SiteId,
    percent: f64,
) -> Result<Option<SiteRow>, StoreError> {
    sqlx::query_as(returning_site!(
        "UPDATE sites SET tou_tolerance_percent = $2 WHERE id = $1 RETURNING"
    ))
    .bind(id)
    .bind(percent)
    .fetch_optional(db)
    .await
    .map_err(on_site_constraint)
}

/// The end of the last closed day the balance pass checked on a site.
pub(crate) async fn fetch_balance_checked_until(
    pool: &PgPool,
    site: SiteId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT balance_checked_until FROM sites WHERE id = $1")
            .bind(site)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// Records that the balance pass checked a site's days up to `at`.
pub(crate) async fn update_balance_checked_until(
    pool: &PgPool,
    site: SiteId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sites SET balance_checked_until = $2 WHERE id = $1")
        .bind(site)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
}
