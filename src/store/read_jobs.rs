//! On-demand reads, as the `read_now` jobs of the jobs table.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::error::StoreError;
use super::jobs::{JobRow, fetch_job, fetch_latest_device_job};
use crate::domain::ids::DeviceId;
use crate::domain::job::{JobKind, JobState};

#[derive(Debug, Clone)]
pub(crate) struct ReadJobRow {
    pub id: i64,
    pub device_id: DeviceId,
    pub state: JobState,
    /// Values read and stored, once succeeded.
    pub readings: Option<i32>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ReadJobRow {
    /// The read a job is, if it is one.
    pub(crate) fn from_job(job: JobRow) -> Option<ReadJobRow> {
        if job.kind != JobKind::ReadNow {
            return None;
        }
        let readings = job
            .result
            .as_ref()
            .and_then(|result| result.0.get("readings"))
            .and_then(serde_json::Value::as_i64)
            .map(|count| i32::try_from(count).unwrap_or(i32::MAX));
        Some(ReadJobRow {
            id: job.id,
            device_id: job.device_id?,
            state: job.state,
            readings,
            error: job.error_message,
            requested_by: job.requested_by,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        })
    }
}

pub(crate) async fn fetch_read_job(pool: &PgPool, id: i64) -> Result<Option<ReadJobRow>, StoreError> {
    Ok(fetch_job(pool, id).await?.and_then(ReadJobRow::from_job))
}

/// A device's latest on-demand read.
pub(crate) async fn fetch_latest_read_job(pool: &PgPool, device: DeviceId) -> Result<Option<ReadJobRow>, StoreError> {
    Ok(fetch_latest_device_job(pool, JobKind::ReadNow, device)
        .await?
        .and_then(ReadJobRow::from_job))
}
