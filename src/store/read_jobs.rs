//! On-demand read jobs and their outcome.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::error::StoreError;
use crate::domain::ids::DeviceId;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReadJobRow {
    pub id: i64,
    pub device_id: DeviceId,
    pub state: String,
    pub readings: Option<i32>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn insert_read_job(pool: &PgPool, device: DeviceId, requested_by: &str) -> Result<ReadJobRow, StoreError> {
    Ok(sqlx::query_as(
        "INSERT INTO read_jobs (device_id, requested_by) VALUES ($1, $2) \
         RETURNING id, device_id, state, readings, error, requested_by, created_at, started_at, finished_at",
    )
    .bind(device)
    .bind(requested_by)
    .fetch_one(pool)
    .await?)
}

pub async fn fetch_read_job(pool: &PgPool, id: i64) -> Result<Option<ReadJobRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, device_id, state, readings, error, requested_by, created_at, started_at, finished_at \
         FROM read_jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// A device's latest on-demand read.
pub async fn fetch_latest_read_job(pool: &PgPool, device: DeviceId) -> Result<Option<ReadJobRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, device_id, state, readings, error, requested_by, created_at, started_at, finished_at \
         FROM read_jobs WHERE device_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(device)
    .fetch_optional(pool)
    .await?)
}

pub async fn update_read_job_started(pool: &PgPool, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE read_jobs SET state = 'running', started_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a job: done with the number of values read, or failed with why.
pub async fn update_read_job_finished(pool: &PgPool, id: i64, outcome: Result<usize, &str>) -> Result<(), StoreError> {
    let (state, readings, error) = match outcome {
        Ok(count) => ("done", Some(i32::try_from(count).unwrap_or(i32::MAX)), None),
        Err(error) => ("failed", None, Some(error)),
    };
    sqlx::query("UPDATE read_jobs SET state = $2, readings = $3, error = $4, finished_at = now() WHERE id = $1")
        .bind(id)
        .bind(state)
        .bind(readings)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}
