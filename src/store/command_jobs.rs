//! Commands to devices, as the `command` jobs of the jobs table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use super::error::StoreError;
use super::jobs::{JobRow, fetch_job, fetch_latest_device_job};
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::{JobKind, JobState};

/// A command job as the API and the pages show it.
#[derive(Debug, Clone)]
pub(crate) struct CommandJobRow {
    pub id: i64,
    pub device_id: DeviceId,
    /// The command's kind (`set_tariff`); for a command queued before
    /// commands were typed, its profile command's name.
    pub kind: String,
    /// The named parameters as asked (the job's `parameters` less `kind`).
    pub parameters: Value,
    pub state: JobState,
    /// Why it failed: a code and a message.
    pub error: Option<(String, String)>,
    /// What the device held before the write, by register or address.
    pub before: Option<Value>,
    /// What was read back after it.
    pub after: Option<Value>,
    /// The writes sent: register, function and values, unit 0 for a broadcast.
    pub written: Option<Value>,
    /// What came of it besides: a broadcast's note.
    pub outcome: Option<String>,
    /// For a command awaiting field programming: what the technician must do.
    pub instructions: Option<String>,
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
        let mut parameters = job.parameters.0;
        let object = parameters.as_object_mut()?;
        let kind = match object.remove("kind") {
            Some(Value::String(kind)) => kind,
            // Queued before commands were typed: {"command", "values", "broadcast"}.
            _ => match object.remove("command") {
                Some(Value::String(command)) => command,
                _ => return None,
            },
        };
        let progress = job.progress.0;
        let field = |name: &str| progress.get(name).filter(|value| !value.is_null()).cloned();
        let outcome = job
            .result
            .as_ref()
            .and_then(|result| result.0.get("outcome"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(CommandJobRow {
            id: job.id,
            device_id: job.device_id?,
            kind,
            parameters,
            state: job.state,
            error: job.error_code.zip(job.error_message),
            before: field("before"),
            after: field("after"),
            written: field("written"),
            outcome,
            instructions: field("instructions").and_then(|text| text.as_str().map(str::to_owned)),
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

/// When each device of `bus` last had its clock set by a command that
/// succeeded: its own `set_clock`, or one broadcast on the bus (every
/// device obeys one). What a meter that takes one set a day is held to.
/// The instant is the worker's (`clock_set_at` of the result), else the
/// job's end.
pub(crate) async fn fetch_clock_sets(
    pool: &PgPool,
    bus: BusId,
) -> Result<HashMap<DeviceId, DateTime<Utc>>, StoreError> {
    let rows: Vec<(DeviceId, DateTime<Utc>)> = sqlx::query_as(
        "SELECT d.id, max(coalesce((j.result ->> 'clock_set_at')::timestamptz, j.finished_at)) \
         FROM devices d \
         JOIN jobs j ON j.kind = 'command' AND j.state = 'succeeded' \
             AND j.parameters ->> 'kind' = 'set_clock' AND j.finished_at IS NOT NULL \
             AND (j.device_id = d.id OR (j.bus_id = d.bus_id AND j.parameters @> '{\"broadcast\": true}')) \
         WHERE d.bus_id = $1 \
         GROUP BY d.id",
    )
    .bind(bus)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}
