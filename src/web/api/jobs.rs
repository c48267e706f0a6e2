//! `/api/v1/jobs`: every job (on-demand reads, scans, commands) with its
//! parameters, progress and outcome, and how the job use cases' errors
//! and idempotency keys reach HTTP.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::{JobKind, JobState};
use crate::domain::role::Right;
use crate::service::jobs::{JobError, Requester};
use crate::store::jobs::{JobFilter, JobRow, fetch_job, fetch_jobs};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::state::AppState;

/// Jobs one page lists by default, and at most.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;
/// Longest idempotency key taken.
const MAX_KEY: usize = 200;
/// The header a client sends so that a retried request queues nothing new.
pub(crate) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

impl From<JobError> for ApiError {
    fn from(error: JobError) -> ApiError {
        match error {
            JobError::NotFound(what) => ApiError::not_found(what),
            JobError::Invalid { field, reason } => ApiError::invalid(&field, reason),
            JobError::Store(error) => error.into(),
        }
    }
}

/// The requester of a job: the caller, and the request's idempotency key.
pub(crate) fn requester<'a>(caller: &'a Caller, headers: &'a HeaderMap) -> Result<Requester<'a>, ApiError> {
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|key| !key.is_empty() && key.len() <= MAX_KEY)
                .ok_or_else(|| ApiError::invalid(IDEMPOTENCY_KEY, format!("must be 1-{MAX_KEY} visible characters")))?;
            Some(key)
        }
    };
    Ok(Requester {
        user: &caller.user,
        idempotency_key: key,
    })
}

/// Why a job failed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobFailure {
    /// `interrupted` (the server stopped while sending a command, which is
    /// not sent again), `not_polled` (the device is disabled or removed),
    /// `unsupported` (the bus's protocol has no such operation), `device`
    /// (no answer, an exception, a bad frame), `store`, or `unknown` (a job
    /// of before error codes).
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
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(field: &str, value: Option<&str>, known: &str) -> Result<Option<T>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_value(serde_json::Value::from(text))
            .map(Some)
            .map_err(|_| ApiError::invalid(field, format!("{text:?} is not one of {known}"))),
    }
}

/// A cursor names the last job of a page; it is opaque to clients.
fn encode_cursor(last: i64) -> String {
    hex::encode(format!("before:{last}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("before:")?.parse().ok())
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this server gave"))
}

/// List jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery),
    responses(
        (status = 200, body = JobList),
        (status = 401, body = ErrorBody),
        (status = 422, description = "A malformed parameter, named", body = ErrorBody),
    ))]
pub(crate) async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<JobQuery>,
) -> Result<Json<JobList>, ApiError> {
    caller.require(Right::Read)?;
    let filter = JobFilter {
        kind: parse("kind", query.kind.as_deref(), "read_now, scan, command")?,
        state: parse(
            "state",
            query.state.as_deref(),
            "queued, running, succeeded, failed, cancelled",
        )?,
        device: query.device_id.map(DeviceId),
        bus: query.bus_id.map(BusId),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be 1-{MAX_LIMIT}")));
    }
    let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
    // One more than asked tells whether a next page exists.
    let mut rows = fetch_jobs(&state.pool, &filter, before, limit + 1).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|row| encode_cursor(row.id))
    } else {
        None
    };
    Ok(Json(JobList {
        jobs: rows.into_iter().map(Job::from).collect(),
        next_cursor,
    }))
}

/// A job's progress and outcome, whatever its kind.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Job>, ApiError> {
    caller.require(Right::Read)?;
    let row = fetch_job(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    Ok(Json(row.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_a_foreign_one_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(4242)).unwrap(), 4242);
        assert_eq!(
            decode_cursor("zz").unwrap_err().message,
            "cursor: not a cursor this server gave"
        );
        assert!(decode_cursor(&hex::encode("after:3")).is_err());
    }
}
