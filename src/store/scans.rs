//! Bus scan jobs and their progress.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::types::Json;

use super::error::StoreError;
use crate::domain::ids::BusId;

/// One address that answered, and the profiles whose identification it fits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Found {
    pub address: u8,
    /// Fitting profiles, most specific first; empty when the device answered
    /// but fits no known profile.
    pub profiles: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScanRow {
    pub id: i64,
    pub bus_id: BusId,
    pub first_address: i16,
    pub last_address: i16,
    pub state: String,
    pub probed: i32,
    pub found: Json<Vec<Found>>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn insert_scan(
    pool: &PgPool,
    bus: BusId,
    first: u8,
    last: u8,
    requested_by: &str,
) -> Result<ScanRow, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO scan_jobs (bus_id, first_address, last_address, requested_by) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(bus)
    .bind(i16::from(first))
    .bind(i16::from(last))
    .bind(requested_by)
    .fetch_one(pool)
    .await?;
    Ok(fetch_scan(pool, id).await?.expect("scan just inserted"))
}

pub async fn fetch_scan(pool: &PgPool, id: i64) -> Result<Option<ScanRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, bus_id, first_address, last_address, state, probed, found, error, requested_by, created_at, finished_at \
         FROM scan_jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The latest scan of a bus.
pub async fn fetch_latest_scan(pool: &PgPool, bus: BusId) -> Result<Option<ScanRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, bus_id, first_address, last_address, state, probed, found, error, requested_by, created_at, finished_at \
         FROM scan_jobs WHERE bus_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(bus)
    .fetch_optional(pool)
    .await?)
}

/// Records progress: addresses probed so far and what answered.
pub async fn update_scan_progress(pool: &PgPool, id: i64, probed: u32, found: &[Found]) -> Result<(), StoreError> {
    sqlx::query("UPDATE scan_jobs SET state = 'running', probed = $2, found = $3 WHERE id = $1")
        .bind(id)
        .bind(i32::try_from(probed).unwrap_or(i32::MAX))
        .bind(Json(found))
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a scan, done or failed with a reason.
pub async fn update_scan_finished(pool: &PgPool, id: i64, error: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("UPDATE scan_jobs SET state = CASE WHEN $2::text IS NULL THEN 'done' ELSE 'failed' END, error = $2, finished_at = now() WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}
