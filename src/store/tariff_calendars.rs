//! Tariff calendars and their versions (the definition as JSON), and a
//! site's default calendar.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use super::error::StoreError;
use crate::domain::ids::{CalendarId, SiteId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CalendarRow {
    pub id: CalendarId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// How many versions it has.
    pub versions: i64,
    /// The newest version's `effective_from`.
    pub latest_effective_from: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct VersionRow {
    pub version: i32,
    pub effective_from: DateTime<Utc>,
    pub definition: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// The name taken turns into a conflict on `name`.
fn on_name(error: sqlx::Error) -> StoreError {
    let taken = error
        .as_database_error()
        .and_then(|db| db.constraint())
        .is_some_and(|name| name == "tariff_calendars_name_key");
    if taken {
        return StoreError::Conflict {
            field: "name",
            reason: "a tariff calendar with this name already exists".to_owned(),
        };
    }
    StoreError::Database(error)
}

/// Inserts a calendar with its first version.
pub(crate) async fn insert_calendar(
    db: &mut PgConnection,
    name: &str,
    effective_from: DateTime<Utc>,
    definition: &serde_json::Value,
    created_by: &str,
) -> Result<CalendarId, StoreError> {
    let id: CalendarId = sqlx::query_scalar("INSERT INTO tariff_calendars (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(&mut *db)
        .await
        .map_err(on_name)?;
    insert_version(db, id, 1, effective_from, definition, created_by).await?;
    Ok(id)
}

/// Inserts version `version` of a calendar.
pub(crate) async fn insert_version<'e>(
    db: impl PgExecutor<'e>,
    calendar: CalendarId,
    version: i32,
    effective_from: DateTime<Utc>,
    definition: &serde_json::Value,
    created_by: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tariff_calendar_versions (calendar_id, version, effective_from, definition, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(calendar)
    .bind(version)
    .bind(effective_from)
    .bind(definition)
    .bind(created_by)
    .execute(db)
    .await?;
    Ok(())
}

/// Every calendar, by id.
pub(crate) async fn fetch_calendars<'e>(db: impl PgExecutor<'e>) -> Result<Vec<CalendarRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.name, c.created_at, count(v.version) AS versions, \
                    max(v.effective_from) AS latest_effective_from \
             FROM tariff_calendars c JOIN tariff_calendar_versions v ON v.calendar_id = c.id \
             GROUP BY c.id ORDER BY c.id",
    )
    .fetch_all(db)
    .await?)
}

pub(crate) async fn fetch_calendar<'e>(
    db: impl PgExecutor<'e>,
    id: CalendarId,
) -> Result<Option<CalendarRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.name, c.created_at, count(v.version) AS versions, \
                    max(v.effective_from) AS latest_effective_from \
             FROM tariff_calendars c JOIN tariff_calendar_versions v ON v.calendar_id = c.id \
             WHERE c.id = $1 GROUP BY c.id",
    )
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Locks a calendar's row for a new version; `None` when there is none.
pub(crate) async fn lock_calendar(db: &mut PgConnection, id: CalendarId) -> Result<Option<CalendarId>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM tariff_calendars WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// A calendar's versions, oldest first.
pub(crate) async fn fetch_versions<'e>(db: impl PgExecutor<'e>, id: CalendarId) -> Result<Vec<VersionRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT version, effective_from, definition, created_at, created_by \
         FROM tariff_calendar_versions WHERE calendar_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(db)
    .await?)
}

/// A site's default calendar: `None` when there is no such site, `Some(None)`
/// when it has none.
pub(crate) async fn fetch_site_calendar<'e>(
    db: impl PgExecutor<'e>,
    site: SiteId,
) -> Result<Option<Option<CalendarId>>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT default_calendar_id FROM sites WHERE id = $1")
            .bind(site)
            .fetch_optional(db)
            .await?,
    )
}

/// The sites that have a default calendar, with it.
pub(crate) async fn fetch_site_calendars<'e>(db: impl PgExecutor<'e>) -> Result<Vec<(SiteId, CalendarId)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, default_calendar_id FROM sites WHERE default_calendar_id IS NOT NULL")
            .fetch_all(db)
            .await?,
    )
}

/// Sets or clears a site's default calendar; `false` when there is no such
/// site. An unknown calendar is a conflict on `default_calendar_id`.
pub(crate) async fn update_site_calendar<'e>(
    db: impl PgExecutor<'e>,
    site: SiteId,
    calendar: Option<CalendarId>,
) -> Result<bool, StoreError> {
    let result = sqlx::query("UPDATE sites SET default_calendar_id = $2 WHERE id = $1")
        .bind(site)
        .bind(calendar)
        .execute(db)
        .await
        .map_err(|error| {
            let unknown = error
                .as_database_error()
                .and_then(|db| db.constraint())
                .is_some_and(|name| name == "sites_default_calendar_id_fkey");
            if unknown {
                return StoreError::Conflict {
                    field: "default_calendar_id",
                    reason: "no such tariff calendar".to_owned(),
                };
            }
            StoreError::Database(error)
        })?;
    Ok(result.rows_affected() == 1)
}
