//! `/api/v1/devices/{id}/read` and `/api/v1/reads/{id}`: reading a device now.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::poll::command::BusCommand;
use crate::store::audit::insert_audit;
use crate::store::devices::fetch_device;
use crate::store::read_jobs::{ReadJobRow, fetch_read_job, insert_read_job, update_read_job_finished};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::state::AppState;

/// An on-demand read and its outcome.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "device_id": 1, "state": "done", "readings": 186, "error": null,
    "requested_by": "control-room", "created_at": "2026-11-22T08:00:00Z", "started_at": "2026-11-22T08:00:00.2Z",
    "finished_at": "2026-11-22T08:00:03Z"}))]
pub struct Read {
    pub id: i64,
    pub device_id: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Values read and stored, once done.
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

/// Checks and queues an on-demand read, for the API and the device page alike.
pub(crate) async fn start_read(state: &AppState, caller: &Caller, device: DeviceId) -> Result<ReadJobRow, ApiError> {
    caller.require(Right::Operate)?;
    let row = fetch_device(&state.pool, device)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no device {device}")))?;
    let job = insert_read_job(&state.pool, device, &caller.user).await?;
    if let Err(error) = state
        .commands
        .send(row.bus_id, BusCommand::ReadNow { job: job.id, device })
    {
        update_read_job_finished(&state.pool, job.id, Err(&error.to_string())).await?;
        return Err(error.into());
    }
    insert_audit(
        &state.pool,
        &caller.user,
        "read_device",
        &format!("device/{device}"),
        serde_json::json!({}),
    )
    .await?;
    Ok(job)
}

/// Reads the device now (operator): every register group, ahead of the
/// schedule and before any scheduled read of its bus. Follow it with
/// `GET /api/v1/reads/{id}`; the values land in `/registers` as usual.
#[utoipa::path(post, path = "/api/v1/devices/{id}/read", tag = "readings",
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 202, description = "Read queued", body = Read),
        (status = 401, body = ErrorBody), (status = 403, description = "Role is not operator or engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The device's bus is not polled by this server", body = ErrorBody),
    ))]
pub async fn create_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Read>), ApiError> {
    let job = start_read(&state, &caller, DeviceId(id)).await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// An on-demand read's progress and outcome.
#[utoipa::path(get, path = "/api/v1/reads/{id}", tag = "readings",
    params(("id" = i64, Path, description = "Read id")),
    responses((status = 200, body = Read), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Read>, ApiError> {
    caller.require(Right::Read)?;
    let row = fetch_read_job(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no read {id}")))?;
    Ok(Json(row.into()))
}
