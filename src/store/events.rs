//! Events: conditions with a start and, once over, a clear time.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::error::StoreError;
use crate::domain::clock::future_limit;
use crate::domain::event::{EventCode, EventKind};
use crate::domain::ids::DeviceId;
use crate::domain::severity::Severity;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub device_id: Option<DeviceId>,
    pub code: EventCode,
    pub severity: Severity,
    pub started_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub message: String,
    pub acknowledged_by: Option<String>,
}

/// Opens an event unless one of the same code is already open for the device.
pub async fn insert_event(
    pool: &PgPool,
    device: DeviceId,
    kind: &EventKind,
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    insert_event_span(pool, device, kind, message, at, None).await
}

/// Records an event that has no duration (a billing reset, a gap found):
/// started and cleared at `at`, so it never blocks another of its code.
pub async fn insert_momentary_event<'e>(
    db: impl PgExecutor<'e>,
    device: DeviceId,
    kind: &EventKind,
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    insert_event_span(db, device, kind, message, at, Some(at)).await
}

/// Records an event from `started_at`, already cleared when `cleared_at` is
/// given (an occurrence the meter logged with its start and stop). An open
/// one is not stored while another of its code is open for the device.
pub async fn insert_event_span<'e>(
    db: impl PgExecutor<'e>,
    device: DeviceId,
    kind: &EventKind,
    message: &str,
    started_at: DateTime<Utc>,
    cleared_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (device_id, code, severity, started_at, cleared_at, message) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (device_id, code) WHERE cleared_at IS NULL DO NOTHING",
    )
    .bind(device)
    .bind(kind)
    .bind(kind.severity())
    .bind(started_at)
    .bind(cleared_at)
    .bind(message)
    .execute(db)
    .await?;
    Ok(())
}

/// The start and clear time of the device's latest event of each code
/// given, by code: the latest that started by server time `now` (within
/// the future tolerance), or the latest in the future when there is no
/// other, so a meter clock that was far ahead once pins nothing.
pub async fn fetch_last_event_spans(
    pool: &PgPool,
    device: DeviceId,
    codes: &[EventCode],
    now: DateTime<Utc>,
) -> Result<Vec<(EventCode, DateTime<Utc>, Option<DateTime<Utc>>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (code) code, started_at, cleared_at FROM events \
         WHERE device_id = $1 AND code = ANY($2) ORDER BY code, started_at > $3, started_at DESC, id DESC",
    )
    .bind(device)
    .bind(codes)
    .bind(future_limit(now))
    .fetch_all(pool)
    .await?)
}

/// The start and clear time of the device's events of `kind` still open or
/// cleared after `since`, oldest first.
pub async fn fetch_event_spans(
    pool: &PgPool,
    device: DeviceId,
    kind: &EventKind,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT started_at, cleared_at FROM events \
         WHERE device_id = $1 AND code = $2 AND (cleared_at IS NULL OR cleared_at > $3) ORDER BY started_at",
    )
    .bind(device)
    .bind(kind)
    .bind(since)
    .fetch_all(pool)
    .await?)
}

/// Clears the open event of a code, if any.
pub async fn update_event_cleared<'e>(
    db: impl PgExecutor<'e>,
    device: DeviceId,
    code: &EventCode,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE events SET cleared_at = $3 WHERE device_id = $1 AND code = $2 AND cleared_at IS NULL")
        .bind(device)
        .bind(code)
        .bind(at)
        .execute(db)
        .await?;
    Ok(())
}

/// Clears a device's open communication events (`comm_lost`): it was
/// disabled, and nobody is to be paged for a meter nobody polls.
pub async fn update_communication_events_cleared<'e>(
    db: impl PgExecutor<'e>,
    device: DeviceId,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let cleared = sqlx::query(
        "UPDATE events SET cleared_at = $2 WHERE device_id = $1 AND code = 'comm_lost' AND cleared_at IS NULL",
    )
    .bind(device)
    .bind(at)
    .execute(db)
    .await?
    .rows_affected();
    Ok(cleared)
}

/// A device's events, newest first.
pub async fn fetch_device_events(pool: &PgPool, device: DeviceId, limit: i64) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, device_id, code, severity, started_at, cleared_at, message, acknowledged_by \
         FROM events WHERE device_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2",
    )
    .bind(device)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub device: Option<DeviceId>,
    /// `Some(true)`: only open events; `Some(false)`: only cleared ones.
    pub active: Option<bool>,
    /// Events started at or after this instant.
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Events matching `filter`, newest first.
pub async fn fetch_events(pool: &PgPool, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, device_id, code, severity, started_at, cleared_at, message, acknowledged_by \
         FROM events \
         WHERE ($1::bigint IS NULL OR device_id = $1) \
           AND ($2::boolean IS NULL OR (cleared_at IS NULL) = $2) \
           AND ($3::timestamptz IS NULL OR started_at >= $3) \
         ORDER BY started_at DESC, id DESC LIMIT $4",
    )
    .bind(filter.device)
    .bind(filter.active)
    .bind(filter.since)
    .bind(filter.limit)
    .fetch_all(pool)
    .await?)
}

/// Records who acknowledged an event. The first acknowledgement stands: a
/// second one leaves the event as it is. `None` when there is no such event.
pub async fn update_event_acknowledged<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    user: &str,
) -> Result<Option<EventRow>, StoreError> {
    Ok(sqlx::query_as(
        "UPDATE events SET acknowledged_by = COALESCE(acknowledged_by, $2), \
                           acknowledged_at = COALESCE(acknowledged_at, now()) \
         WHERE id = $1 \
         RETURNING id, device_id, code, severity, started_at, cleared_at, message, acknowledged_by",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(db)
    .await?)
}
