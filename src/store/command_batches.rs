//! Bulk commands: one `command_batches` row per request, its command jobs
//! queued on the same transaction, and what came of it for each device.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;

use super::audit::insert_audit;
use super::error::StoreError;
use super::jobs::{JobAudit, NewJob, insert_job_on};
use crate::domain::ids::DeviceId;

/// What came of a bulk command for one device: the command queued for it
/// (for a broadcast, its bus's one command), or why it was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeviceResult {
    pub device_id: DeviceId,
    pub command_id: Option<i64>,
    pub error: Option<Refusal>,
}

/// Why a device's command was refused: a code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Refusal {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct BatchRow {
    pub id: i64,
    pub command: Json<Value>,
    pub target: Json<Value>,
    pub broadcast: bool,
    pub results: Json<Vec<DeviceResult>>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
}

/// The bulk's columns (sqlx takes only static SQL, hence a macro).
macro_rules! columns {
    () => {
        "id, command, target, broadcast, results, requested_by, created_at"
    };
}

/// A bulk command to store.
#[derive(Debug, Clone)]
pub(crate) struct NewBatch<'a> {
    pub command: Value,
    pub target: Value,
    pub broadcast: bool,
    pub requested_by: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// One command job of a bulk, and the devices it is for (several for a
/// broadcast).
#[derive(Debug, Clone)]
pub(crate) struct BatchJob<'a> {
    pub devices: Vec<DeviceId>,
    pub job: NewJob<'a>,
    pub audit: JobAudit<'a>,
}

/// Stores a bulk command, queues its jobs with their audit entries, and
/// writes the bulk's own audit entry (`action`), all in one transaction.
/// With an idempotency key the requester already used for a bulk, queues
/// nothing and returns the earlier one, with `false`.
pub(crate) async fn insert_batch(
    pool: &PgPool,
    batch: &NewBatch<'_>,
    jobs: Vec<BatchJob<'_>>,
    refused: Vec<(DeviceId, Refusal)>,
    action: &str,
) -> Result<(BatchRow, bool), StoreError> {
    let mut tx = pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO command_batches (command, target, broadcast, requested_by, idempotency_key) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT ON CONSTRAINT command_batches_idempotency_key_key DO NOTHING RETURNING id",
    )
    .bind(Json(&batch.command))
    .bind(Json(&batch.target))
    .bind(batch.broadcast)
    .bind(batch.requested_by)
    .bind(batch.idempotency_key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        let earlier: BatchRow = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM command_batches WHERE requested_by = $1 AND idempotency_key = $2"
        ))
        .bind(batch.requested_by)
        .bind(batch.idempotency_key)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok((earlier, false));
    };
    let mut results = Vec::new();
    for BatchJob {
        devices,
        job,
        mut audit,
    } in jobs
    {
        if let Value::Object(fields) = &mut audit.detail {
            fields.insert("bulk".to_owned(), Value::from(id));
        }
        let row = insert_job_on(&mut tx, &job, audit).await?;
        results.extend(devices.into_iter().map(|device_id| DeviceResult {
            device_id,
            command_id: Some(row.id),
            error: None,
        }));
    }
    results.extend(refused.into_iter().map(|(device_id, refusal)| DeviceResult {
        device_id,
        command_id: None,
        error: Some(refusal),
    }));
    results.sort_by_key(|result| result.device_id.0);
    let row: BatchRow = sqlx::query_as(concat!(
        "UPDATE command_batches SET results = $2 WHERE id = $1 RETURNING ",
        columns!()
    ))
    .bind(id)
    .bind(Json(&results))
    .fetch_one(&mut *tx)
    .await?;
    let queued = results.iter().filter(|result| result.command_id.is_some()).count();
    let detail = serde_json::json!({"bulk": id, "command": batch.command, "target": batch.target,
        "broadcast": batch.broadcast, "queued": queued, "refused": results.len() - queued});
    insert_audit(&mut *tx, batch.requested_by, action, &format!("bulk/{id}"), detail).await?;
    tx.commit().await?;
    Ok((row, true))
}

pub(crate) async fn fetch_batch(pool: &PgPool, id: i64) -> Result<Option<BatchRow>, StoreError> {
    Ok(
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM command_batches WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}
