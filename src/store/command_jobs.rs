//! Commands to devices, as the `command` jobs of the jobs table.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::error::StoreError;
use super::jobs::{JobRow, fetch_job, fetch_latest_device_job};
use crate::domain::ids::DeviceId;
use crate::domain::job::{JobKind, JobState};

/// What a command job asks: its `parameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CommandParameters {
    /// The profile's `[modbus.commands]` key, e.g. set_tariff.
    pub command: String,
    /// Register values to write; `None` for a clock command whose values
    /// the server fills from the time it sends it.
    pub values: Option<Vec<u16>>,
    pub broadcast: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CommandJobRow {
    pub id: i64,
    pub device_id: DeviceId,
    pub command: String,
    /// Values written: those sent once running, else those asked.
    pub values: Option<Vec<i32>>,
    pub broadcast: bool,
    pub state: JobState,
    /// What came of it: a broadcast's note.
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl CommandJobRow {
    /// The command a job is, if it is one.
    pub(crate) fn from_job(job: JobRow) -> Option<CommandJobRow> {
        if job.kind != JobKind::Command {
            return None;
        }
        let parameters: CommandParameters = serde_json::from_value(job.parameters.0).ok()?;
        let sent: Option<Vec<u16>> = job
            .progress
            .0
            .get("values")
            .and_then(|values| serde_json::from_value(values.clone()).ok());
        let values = sent
            .or(parameters.values)
            .map(|values| values.into_iter().map(i32::from).collect());
        let outcome = job
            .result
            .as_ref()
            .and_then(|result| result.0.get("outcome"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Some(CommandJobRow {
            id: job.id,
            device_id: job.device_id?,
            command: parameters.command,
            values,
            broadcast: parameters.broadcast,
            state: job.state,
            outcome,
            error: job.error_message,
            requested_by: job.requested_by,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        })
    }
}

pub(crate) async fn fetch_command_job(pool: &PgPool, id: i64) -> Result<Option<CommandJobRow>, StoreError> {
    Ok(fetch_job(pool, id).await?.and_then(CommandJobRow::from_job))
}

/// A device's latest command.
pub(crate) async fn fetch_latest_command_job(
    pool: &PgPool,
    device: DeviceId,
) -> Result<Option<CommandJobRow>, StoreError> {
    Ok(fetch_latest_device_job(pool, JobKind::Command, device)
        .await?
        .and_then(CommandJobRow::from_job))
}
