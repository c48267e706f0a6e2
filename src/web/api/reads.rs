//! `/api/v1/devices/{id}/read` and `/api/v1/reads/{id}`: reading a device now.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::jobs::idempotency_key;
use crate::domain::ids::DeviceId;
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::service::jobs;
use crate::store::read_jobs::ReadJobRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// An on-demand read and its outcome.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "device_id": 1, "state": "succeeded", "readings": 186, "error": null,
    "requested_by": "control-room", "created_at": "2026-11-22T08:00:00Z", "started_at": "2026-11-22T08:00:00.2Z",
    "finished_at": "2026-11-22T08:00:03Z"}))]
pub(crate) struct Read {
    pub id: i64,
    pub device_id: i64,
    pub state: JobState,
    /// Values read and stored, once succeeded.
    pub readings: Option<i32>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<ReadJobRow> for Read {
    fn from(row: ReadJobRow) -> Read {
        Read {
            id: row.id,
            device_id: row.device_id.0,
            state: row.state,
            readings: row.readings,
            error: row.error,
            requested_by: row.requested_by,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }
}

/// Reads the device now (operator): every register group, ahead of the
/// schedule and before any scheduled read of its bus. Follow it with
/// `GET /api/v1/reads/{id}`; the values land in `/registers` as usual.
/// The job waits in the database until the worker of the device's bus
/// takes it (a disabled bus: until it is enabled). A request repeated
/// with the same `Idempotency-Key` answers the first one's job.
#[utoipa::path(post, path = "/api/v1/devices/{id}/read", tag = "readings",
    params(("id" = i64, Path, description = "Device id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]([ -~]*[!-~])?$", description = "Queue at most one job per key (1-200 characters)")),
    responses(
        (status = 202, description = "Read queued", body = Read),
        (status = 401, body = ErrorBody), (status = 403, description = "Role is not operator or engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A malformed Idempotency-Key", body = ErrorBody),
    ))]
pub(crate) async fn create_read(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Read>), ApiError> {
    // The role first: a request outside it gets 403 whatever its headers.
    caller.require(Right::Operate)?;
    let key = idempotency_key(&headers)?;
    let job = jobs::start_read(&state.pool, &caller, key, DeviceId(id)).await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// An on-demand read's progress and outcome.
#[utoipa::path(get, path = "/api/v1/reads/{id}", tag = "readings",
    params(("id" = i64, Path, description = "Read id")),
    responses((status = 200, body = Read), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_read(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Read>, ApiError> {
    let row = jobs::get_read(&state.pool, &caller, id).await?;
    Ok(Json(row.into()))
}
