//! Command jobs: writes to devices and their outcome.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::error::StoreError;
use crate::domain::ids::DeviceId;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommandJobRow {
    pub id: i64,
    pub device_id: DeviceId,
    pub command: String,
    pub values: Option<Vec<i32>>,
    pub broadcast: bool,
    pub state: String,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A command to queue.
#[derive(Debug, Clone)]
pub struct NewCommandJob<'a> {
    pub device: DeviceId,
    pub command: &'a str,
    /// `None`: filled when sent (a clock command).
    pub values: Option<&'a [u16]>,
    pub broadcast: bool,
    pub requested_by: &'a str,
}

/// The job's columns (sqlx takes only static SQL, hence a macro).
macro_rules! columns {
    () => {
        "id, device_id, command, \"values\", broadcast, state, outcome, error, requested_by, \
         created_at, started_at, finished_at"
    };
}

fn words(values: &[u16]) -> Vec<i32> {
    values.iter().map(|&v| i32::from(v)).collect()
}

pub async fn insert_command_job(pool: &PgPool, job: &NewCommandJob<'_>) -> Result<CommandJobRow, StoreError> {
    Ok(sqlx::query_as(concat!(
        "INSERT INTO command_jobs (device_id, command, \"values\", broadcast, requested_by) \
         VALUES ($1, $2, $3, $4, $5) RETURNING ",
        columns!()
    ))
    .bind(job.device)
    .bind(job.command)
    .bind(job.values.map(words))
    .bind(job.broadcast)
    .bind(job.requested_by)
    .fetch_one(pool)
    .await?)
}

pub async fn fetch_command_job(pool: &PgPool, id: i64) -> Result<Option<CommandJobRow>, StoreError> {
    Ok(
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM command_jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// A device's latest command.
pub async fn fetch_latest_command_job(pool: &PgPool, device: DeviceId) -> Result<Option<CommandJobRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM command_jobs WHERE device_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(device)
    .fetch_optional(pool)
    .await?)
}

/// Marks a job running, with the values actually sent.
pub async fn update_command_job_started(pool: &PgPool, id: i64, values: &[u16]) -> Result<(), StoreError> {
    sqlx::query("UPDATE command_jobs SET state = 'running', \"values\" = $2, started_at = now() WHERE id = $1")
        .bind(id)
        .bind(words(values))
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a job: done (with a note, e.g. for a broadcast), or failed with why.
pub async fn update_command_job_finished(
    pool: &PgPool,
    id: i64,
    outcome: Result<Option<&str>, &str>,
) -> Result<(), StoreError> {
    let (state, note, error) = match outcome {
        Ok(note) => ("done", note, None),
        Err(error) => ("failed", None, Some(error)),
    };
    sqlx::query("UPDATE command_jobs SET state = $2, outcome = $3, error = $4, finished_at = now() WHERE id = $1")
        .bind(id)
        .bind(state)
        .bind(note)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}
