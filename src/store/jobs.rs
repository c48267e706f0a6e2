//! Jobs: queued by the use cases, claimed by the worker of their bus
//! (`FOR UPDATE SKIP LOCKED`), ended by what the worker reports.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;

use super::audit::insert_audit;
use super::error::StoreError;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::{JobErrorCode, JobKind, JobState};

/// The channel a new job is announced on (its payload: the bus id), so the
/// bus's worker claims it at once rather than at its next look.
pub(crate) const JOBS_CHANNEL: &str = "jobs";

/// How many jobs a worker claims at a time.
pub(crate) const CLAIM_BATCH: usize = 16;

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct JobRow {
    pub id: i64,
    pub kind: JobKind,
    pub bus_id: BusId,
    pub device_id: Option<DeviceId>,
    pub state: JobState,
    pub parameters: Json<Value>,
    pub progress: Json<Value>,
    pub result: Option<Json<Value>>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The job's columns (sqlx takes only static SQL, hence a macro).
macro_rules! columns {
    () => {
        "id, kind, bus_id, device_id, state, parameters, progress, result, error_code, error_message, \
         requested_by, created_at, started_at, finished_at"
    };
}

/// A job to queue.
#[derive(Debug, Clone)]
pub(crate) struct NewJob<'a> {
    pub kind: JobKind,
    pub bus: BusId,
    pub device: Option<DeviceId>,
    pub parameters: Value,
    pub requested_by: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// The audit entry of a job: who asked is the job's requester.
#[derive(Debug, Clone)]
pub(crate) struct JobAudit<'a> {
    pub action: &'a str,
    pub target: String,
    pub detail: Value,
}

/// Queues a job with its audit entry, in one transaction, and announces it
/// to its bus's worker (on commit). With an idempotency key the requester
/// already used for this kind, queues nothing and returns the earlier job,
/// with `false`.
pub(crate) async fn insert_job(
    pool: &PgPool,
    job: &NewJob<'_>,
    audit: JobAudit<'_>,
) -> Result<(JobRow, bool), StoreError> {
    let mut tx = pool.begin().await?;
    let inserted: Option<JobRow> = sqlx::query_as(concat!(
        "INSERT INTO jobs (kind, bus_id, device_id, parameters, requested_by, idempotency_key) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT ON CONSTRAINT jobs_idempotency_key_key DO NOTHING RETURNING ",
        columns!()
    ))
    .bind(job.kind)
    .bind(job.bus)
    .bind(job.device)
    .bind(Json(&job.parameters))
    .bind(job.requested_by)
    .bind(job.idempotency_key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = inserted else {
        let earlier: JobRow = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM jobs WHERE requested_by = $1 AND kind = $2 AND idempotency_key = $3"
        ))
        .bind(job.requested_by)
        .bind(job.kind)
        .bind(job.idempotency_key)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok((earlier, false));
    };
    let mut detail = audit.detail;
    if let Value::Object(fields) = &mut detail {
        fields.insert("job".to_owned(), Value::from(row.id));
    }
    insert_audit(&mut *tx, job.requested_by, audit.action, &audit.target, detail).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(JOBS_CHANNEL)
        .bind(job.bus.0.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((row, true))
}

/// Queues a job with its audit entry on `db`'s transaction (no
/// idempotency key: a bulk's key is its own), and announces it to its bus's
/// worker on commit.
pub(crate) async fn insert_job_on(
    db: &mut sqlx::PgConnection,
    job: &NewJob<'_>,
    audit: JobAudit<'_>,
) -> Result<JobRow, StoreError> {
    let row: JobRow = sqlx::query_as(concat!(
        "INSERT INTO jobs (kind, bus_id, device_id, parameters, requested_by) VALUES ($1, $2, $3, $4, $5) RETURNING ",
        columns!()
    ))
    .bind(job.kind)
    .bind(job.bus)
    .bind(job.device)
    .bind(Json(&job.parameters))
    .bind(job.requested_by)
    .fetch_one(&mut *db)
    .await?;
    let mut detail = audit.detail;
    if let Value::Object(fields) = &mut detail {
        fields.insert("job".to_owned(), Value::from(row.id));
    }
    insert_audit(&mut *db, job.requested_by, audit.action, &audit.target, detail).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(JOBS_CHANNEL)
        .bind(job.bus.0.to_string())
        .execute(&mut *db)
        .await?;
    Ok(row)
}

/// The states of the jobs `ids`, by id.
pub(crate) async fn fetch_job_states(pool: &PgPool, ids: &[i64]) -> Result<Vec<(i64, JobState)>, StoreError> {
    Ok(sqlx::query_as("SELECT id, state FROM jobs WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await?)
}

pub(crate) async fn fetch_job(pool: &PgPool, id: i64) -> Result<Option<JobRow>, StoreError> {
    Ok(
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobFilter {
    pub kind: Option<JobKind>,
    pub state: Option<JobState>,
    pub device: Option<DeviceId>,
    pub bus: Option<BusId>,
}

/// Jobs matching `filter`, newest first, from below the id `before` (the
/// last one of the previous page) on, at most `limit`.
pub(crate) async fn fetch_jobs(
    pool: &PgPool,
    filter: &JobFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM jobs WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR state = $2) \
         AND ($3::bigint IS NULL OR device_id = $3) AND ($4::bigint IS NULL OR bus_id = $4) \
         AND ($5::bigint IS NULL OR id < $5) ORDER BY id DESC LIMIT $6"
    ))
    .bind(filter.kind)
    .bind(filter.state)
    .bind(filter.device)
    .bind(filter.bus)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The latest job of `kind` for a device.
pub(crate) async fn fetch_latest_device_job(
    pool: &PgPool,
    kind: JobKind,
    device: DeviceId,
) -> Result<Option<JobRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM jobs WHERE kind = $1 AND device_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(kind)
    .bind(device)
    .fetch_optional(pool)
    .await?)
}

/// The latest job of `kind` on a bus.
pub(crate) async fn fetch_latest_bus_job(
    pool: &PgPool,
    kind: JobKind,
    bus: BusId,
) -> Result<Option<JobRow>, StoreError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM jobs WHERE kind = $1 AND bus_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(kind)
    .bind(bus)
    .fetch_optional(pool)
    .await?)
}

/// Claims the bus's oldest queued jobs for its worker, and the commands
/// awaiting field programming whose next try is due at `now`: they turn
/// `running` (`started_at` is set when the worker starts on one). Rows
/// another transaction holds are skipped, not waited for.
pub(crate) async fn claim_jobs(pool: &PgPool, bus: BusId, now: DateTime<Utc>) -> Result<Vec<JobRow>, StoreError> {
    let mut rows: Vec<JobRow> = sqlx::query_as(concat!(
        "UPDATE jobs SET state = 'running' WHERE id IN (\
         SELECT id FROM jobs WHERE bus_id = $1 AND (state = 'queued' OR (state = 'awaiting_field_programming' \
         AND (progress->>'next_try_at')::timestamptz <= $3)) ORDER BY id \
         LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING ",
        columns!()
    ))
    .bind(bus)
    .bind(CLAIM_BATCH as i64)
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.sort_by_key(|row| row.id);
    Ok(rows)
}

/// Puts a running command back to wait for field programming: the meter
/// is not in its programming window. `instructions` say what the
/// technician must do; it is tried again from `next_try_at`, and fails at
/// `deadline` (see [`update_expired_field_programming`]).
pub(crate) async fn update_job_awaiting(
    pool: &PgPool,
    id: i64,
    instructions: &str,
    next_try_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> Result<(), StoreError> {
    let waiting = serde_json::json!({
        "instructions": instructions,
        "next_try_at": next_try_at,
        "deadline": deadline,
    });
    sqlx::query(
        "UPDATE jobs SET state = 'awaiting_field_programming', progress = progress || $2 \
         WHERE id = $1 AND state = 'running'",
    )
    .bind(id)
    .bind(Json(waiting))
    .execute(pool)
    .await?;
    Ok(())
}

/// Fails the bus's commands whose field programming window was not opened
/// by their deadline; returns the devices they were for.
pub(crate) async fn update_expired_field_programming(
    pool: &PgPool,
    bus: BusId,
    now: DateTime<Utc>,
) -> Result<Vec<DeviceId>, StoreError> {
    let devices: Vec<Option<DeviceId>> = sqlx::query_scalar(
        "UPDATE jobs SET state = 'failed', error_code = $3, finished_at = $2, \
         error_message = $4 \
         WHERE bus_id = $1 AND state = 'awaiting_field_programming' \
         AND (progress->>'deadline')::timestamptz <= $2 RETURNING device_id",
    )
    .bind(bus)
    .bind(now)
    .bind(JobErrorCode::FieldProgrammingExpired.as_str())
    .bind("the meter's programming window was not opened in time; nothing was written")
    .fetch_all(pool)
    .await?;
    Ok(devices.into_iter().flatten().collect())
}

/// What a worker starting on a bus does with the jobs a previous worker of
/// the bus left `running` (the process stopped or crashed): reads and
/// scans go back to the queue and run again; a command fails with
/// `interrupted`, as it may have reached the meter, and is never sent
/// again. Returns how many were requeued and how many failed.
pub(crate) async fn update_interrupted_jobs(pool: &PgPool, bus: BusId) -> Result<(u64, u64), StoreError> {
    let requeued = sqlx::query(
        "UPDATE jobs SET state = 'queued', started_at = NULL \
         WHERE bus_id = $1 AND state = 'running' AND kind IN ('read_now', 'scan')",
    )
    .bind(bus)
    .execute(pool)
    .await?
    .rows_affected();
    let failed = sqlx::query(
        "UPDATE jobs SET state = 'failed', error_code = $2, finished_at = now(), \
         error_message = 'the server stopped while sending the command; it may have reached the device, \
         so it is not sent again' \
         WHERE bus_id = $1 AND state = 'running' AND kind = 'command'",
    )
    .bind(bus)
    .bind(JobErrorCode::Interrupted.as_str())
    .execute(pool)
    .await?
    .rows_affected();
    Ok((requeued, failed))
}

/// Records that the worker started on a job, with its progress so far (a
/// command's values as sent).
pub(crate) async fn update_job_started(pool: &PgPool, id: i64, progress: Option<&Value>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE jobs SET started_at = now(), progress = COALESCE($2, progress) WHERE id = $1 AND state = 'running'",
    )
    .bind(id)
    .bind(progress.map(Json))
    .execute(pool)
    .await?;
    Ok(())
}

/// Records how far a running job got.
pub(crate) async fn update_job_progress(pool: &PgPool, id: i64, progress: &Value) -> Result<(), StoreError> {
    sqlx::query("UPDATE jobs SET progress = $2 WHERE id = $1 AND state = 'running'")
        .bind(id)
        .bind(Json(progress))
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a running job: succeeded with its result, or failed with why. A
/// job already ended (a command failed as interrupted by a worker that
/// took over the bus) keeps its end. A command's end goes to the audit log
/// on the same transaction (`command_device.result`: who asked, its state,
/// error, what was written, and the values before and after).
pub(crate) async fn update_job_finished(
    pool: &PgPool,
    id: i64,
    outcome: Result<&Value, (JobErrorCode, &str)>,
) -> Result<(), StoreError> {
    let (state, result, code, message) = match outcome {
        Ok(result) => (JobState::Succeeded, Some(Json(result)), None, None),
        Err((code, message)) => (JobState::Failed, None, Some(code.as_str()), Some(message)),
    };
    let mut tx = pool.begin().await?;
    let ended: Option<JobRow> = sqlx::query_as(concat!(
        "UPDATE jobs SET state = $2, result = $3, error_code = $4, error_message = $5, finished_at = now() \
         WHERE id = $1 AND state = 'running' RETURNING ",
        columns!()
    ))
    .bind(id)
    .bind(state)
    .bind(result)
    .bind(code)
    .bind(message)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(job) = ended.filter(|job| job.kind == JobKind::Command) {
        let progress = &job.progress.0;
        let detail = serde_json::json!({
            "job": job.id,
            "command": job.parameters.0,
            "state": job.state,
            "error": job.error_code.as_ref().map(|code| serde_json::json!({"code": code, "message": job.error_message})),
            "written": progress.get("written"),
            "before": progress.get("before"),
            "after": progress.get("after"),
        });
        let target = job
            .device_id
            .map_or(format!("bus/{}", job.bus_id), |device| format!("device/{device}"));
        insert_audit(&mut *tx, &job.requested_by, "command_device.result", &target, detail).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Notifications of new jobs (`LISTEN jobs`): which bus has one.
pub(crate) struct JobListener {
    listener: sqlx::postgres::PgListener,
}

impl JobListener {
    pub(crate) async fn connect(pool: &PgPool) -> Result<JobListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(JOBS_CHANNEL).await?;
        Ok(JobListener { listener })
    }

    /// Waits for the next new job; `None` when its payload is not a bus id.
    /// A notification sent while the connection was lost is not seen (the
    /// workers also look for jobs at an interval).
    pub(crate) async fn next(&mut self) -> Result<Option<BusId>, StoreError> {
        let notification = self.listener.recv().await?;
        Ok(notification.payload().parse().ok().map(BusId))
    }
}

/// What came of asking to cancel a job.
#[derive(Debug)]
pub(crate) enum Cancel {
    /// It was queued (or awaiting field programming) and is now
    /// `cancelled`; no worker will run it.
    Cancelled(Box<JobRow>),
    /// It was no longer queued: claimed (`running`) or ended.
    TooLate(JobState),
    /// No job of that id and kind.
    Missing,
}

/// Cancels a queued job of `kind`, with its audit entry, in one
/// transaction. One `UPDATE … WHERE state = 'queued'` decides: a worker's
/// claim turns the job `running` in the same kind of statement, and the
/// row lock makes the second of the two find it no longer queued, so a
/// claim and a cancel never both win.
pub(crate) async fn cancel_job(
    pool: &PgPool,
    id: i64,
    kind: JobKind,
    actor: &str,
    action: &str,
) -> Result<Cancel, StoreError> {
    let mut tx = pool.begin().await?;
    let cancelled: Option<JobRow> = sqlx::query_as(concat!(
        "UPDATE jobs SET state = 'cancelled', finished_at = now() \
         WHERE id = $1 AND kind = $2 AND state IN ('queued', 'awaiting_field_programming') RETURNING ",
        columns!()
    ))
    .bind(id)
    .bind(kind)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = cancelled else {
        let state: Option<JobState> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1 AND kind = $2")
            .bind(id)
            .bind(kind)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(state.map_or(Cancel::Missing, Cancel::TooLate));
    };
    let target = match row.device_id {
        Some(device) => format!("device/{device}"),
        None => format!("bus/{}", row.bus_id),
    };
    let detail = serde_json::json!({"job": row.id, "kind": row.kind});
    insert_audit(&mut *tx, actor, action, &target, detail).await?;
    tx.commit().await?;
    Ok(Cancel::Cancelled(Box::new(row)))
}
