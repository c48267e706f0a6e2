//! `/api/v1/jobs`: every job (on-demand reads, scans, commands) with its
//! parameters, progress and outcome, and how a request's idempotency key
//! is read.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::job::{JobKind, JobState};
use crate::service::jobs::{self, JobSelection};
use crate::store::jobs::JobRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// Longest idempotency key taken.
const MAX_KEY: usize = 200;
/// The header a client sends so that a retried request queues nothing new.
pub(crate) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The request's idempotency key, if it sends one.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .filter(|key| !key.is_empty() && key.len() <= MAX_KEY)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(IDEMPOTENCY_KEY, format!("must be 1-{MAX_KEY} visible characters"))),
    }
}

/// Why a job failed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobFailure {
    /// `interrupted` (the server stopped while sending a command, which is
    /// not sent again), `not_polled` (the device is disabled or removed),
    /// `unsupported` (the device cannot take it), `device` (no answer, an
    /// exception, a bad frame), `store`, or `unknown` (a job of before
    /// error codes); for commands also `clock_set_today`, `clock_too_far`,
    /// `write_protected`, `verification_failed`, `password_refused` and
    /// `field_programming_expired`.
    pub code: String,
    pub message: String,
}

/// A job: what was asked, how far it got, what came of it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "kind": "read_now", "bus_id": 1, "device_id": 3, "state": "succeeded",
    "parameters": {}, "progress": {}, "result": {"readings": 186}, "error": null,
    "requested_by": "control-room", "created_at": "2026-11-22T08:00:00Z",
    "started_at": "2026-11-22T08:00:00.2Z", "finished_at": "2026-11-22T08:00:03Z"}))]
pub(crate) struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub bus_id: i64,
    /// The device of a read or a command; null for a scan.
    pub device_id: Option<i64>,
    pub state: JobState,
    /// A scan's `first_address` and `last_address`; a command's `command`,
    /// `values` (null for a clock set to the time it is sent) and `broadcast`.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// A scan's `probed` and `found` so far; a command's `values` sent.
    #[schema(value_type = Object)]
    pub progress: serde_json::Value,
    /// Once succeeded: a read's `readings` (values stored); a command's
    /// `outcome` (a broadcast's note, else null).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub error: Option<JobFailure>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<JobRow> for Job {
    fn from(row: JobRow) -> Job {
        let error = match (row.error_code, row.error_message) {
            (Some(code), Some(message)) => Some(JobFailure { code, message }),
            _ => None,
        };
        Job {
            id: row.id,
            kind: row.kind,
            bus_id: row.bus_id.0,
            device_id: row.device_id.map(|device| device.0),
            state: row.state,
            parameters: row.parameters.0,
            progress: row.progress.0,
            result: row.result.map(|result| result.0),
            error,
            requested_by: row.requested_by,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }
}

/// One page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobList {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobQuery {
    /// Only jobs of this kind: `read_now`, `scan`, `command`.
    pub kind: Option<String>,
    /// Only jobs in this state: `queued`, `running`, `succeeded`, `failed`, `cancelled`.
    pub state: Option<String>,
    /// Only this device's jobs.
    pub device_id: Option<i64>,
    /// Only this bus's jobs.
    pub bus_id: Option<i64>,
    /// Jobs per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery),
    responses(
        (status = 200, body = JobList),
        (status = 401, body = ErrorBody),
        (status = 400, description = "A malformed parameter, named (`invalid_parameter`)", body = ErrorBody),
    ))]
pub(crate) async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<JobQuery>,
) -> Result<Json<JobList>, ApiError> {
    let selection = JobSelection {
        kind: query.kind.as_deref(),
        state: query.state.as_deref(),
        device_id: query.device_id,
        bus_id: query.bus_id,
        limit: query.limit,
        cursor: query.cursor.as_deref(),
    };
    let page = jobs::list_jobs(&state.pool, &caller, &selection)
        .await
        .map_err(ApiError::from_query)?;
    Ok(Json(JobList {
        jobs: page.jobs.into_iter().map(Job::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A job's progress and outcome, whatever its kind.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Job>, ApiError> {
    let row = jobs::get_job(&state.pool, &caller, id).await?;
    Ok(Json(row.into()))
}

/// Cancel a job still `queued`, with the role that starts one of its kind:
/// an on-demand read the operator's, a scan or a command the engineer's.
/// It turns `cancelled`, with `finished_at` set, and is never run. Once
/// the bus's worker has claimed it (`running`) or it has ended: 409.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "Job cancelled", body = Job,
            example = json!({"id": 12, "kind": "scan", "bus_id": 1, "device_id": null, "state": "cancelled",
                "parameters": {"first_address": 1, "last_address": 247}, "progress": {}, "result": null,
                "error": null, "requested_by": "commissioning", "created_at": "2026-11-22T08:00:00Z",
                "started_at": null, "finished_at": "2026-11-22T08:00:02Z"})),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role may not start a job of this kind", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "No longer queued; the message names its state", body = ErrorBody,
            example = json!({"error": {"code": "conflict",
                "message": "state: the scan is succeeded; it can no longer be cancelled"}})),
    ))]
#[tracing::instrument(skip(state), fields(user = %caller.user))]
pub(crate) async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Job>, ApiError> {
    let row = jobs::cancel_any_job(&state.pool, &caller, id).await?;
    Ok(Json(row.into()))
}
