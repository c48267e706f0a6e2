//! Events: conditions with a start and, once over, a clear time.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::error::StoreError;
use crate::domain::ids::DeviceId;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub device_id: Option<DeviceId>,
    pub code: String,
    pub severity: String,
    pub started_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub message: String,
    pub acknowledged_by: Option<String>,
}

/// Opens an event unless one of the same code is already open for the device.
pub async fn insert_event(
    pool: &PgPool,
    device: DeviceId,
    code: &str,
    severity: &str,
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (device_id, code, severity, started_at, message) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (device_id, code) WHERE cleared_at IS NULL DO NOTHING",
    )
    .bind(device)
    .bind(code)
    .bind(severity)
    .bind(at)
    .bind(message)
    .execute(pool)
    .await?;
    Ok(())
}

/// Clears the open event of a code, if any.
pub async fn update_event_cleared(
    pool: &PgPool,
    device: DeviceId,
    code: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE events SET cleared_at = $3 WHERE device_id = $1 AND code = $2 AND cleared_at IS NULL")
        .bind(device)
        .bind(code)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
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
