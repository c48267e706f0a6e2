//! `/api/v1/devices/{id}/commands` and `/api/v1/commands/{id}`: writing a
//! profile command to a device (engineer).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::jobs::idempotency_key;
use crate::domain::ids::DeviceId;
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::service::jobs::{self, CommandRequest};
use crate::store::command_jobs::CommandJobRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::state::AppState;

/// A command to write to a device.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"command": "set_tariff", "values": [2], "broadcast": false}))]
pub(crate) struct NewCommand {
    /// A command of the device's profile (`[modbus.commands]`), e.g.
    /// `set_tariff`, `set_clock`, `set_address`, `reset_counters`.
    pub command: String,
    /// One value (0-65535) per register the command writes. May be left out
    /// for a clock command (`set_clock` of the TH40C): the server then sends
    /// the current time in the bus's site time zone.
    pub values: Option<Vec<i64>>,
    /// Send to unit 0, which every device of the bus obeys and none answers;
    /// only for commands the profile allows to be broadcast.
    #[serde(default)]
    pub broadcast: bool,
}

/// A command to a device and its outcome.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "device_id": 3, "command": "set_tariff", "values": [2], "broadcast": false,
    "state": "succeeded", "outcome": null, "error": null, "requested_by": "commissioning",
    "created_at": "2026-11-22T08:00:00Z", "started_at": "2026-11-22T08:00:00.05Z",
    "finished_at": "2026-11-22T08:00:00.1Z"}))]
pub(crate) struct Command {
    pub id: i64,
    pub device_id: i64,
    pub command: String,
    /// Values written; null until sent when the server fills them (a clock).
    pub values: Option<Vec<i32>>,
    pub broadcast: bool,
    pub state: JobState,
    /// For a broadcast: "sent to all devices (no answer expected)".
    pub outcome: Option<String>,
    /// Why it failed: the Modbus exception the device answered, "no answer", …
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<CommandJobRow> for Command {
    fn from(row: CommandJobRow) -> Command {
        Command {
            id: row.id,
            device_id: row.device_id.0,
            command: row.command,
            values: row.values,
            broadcast: row.broadcast,
            state: row.state,
            outcome: row.outcome,
            error: row.error,
            requested_by: row.requested_by,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }
}

/// Write a command to a device (engineer): one of its profile's commands,
/// sent before any read waiting on its bus. Follow it with
/// `GET /api/v1/commands/{id}`. The job waits in the database until the
/// worker of the device's bus takes it; a command the server was sending
/// when it stopped fails as `interrupted` and is not sent again.
#[utoipa::path(post, path = "/api/v1/devices/{id}/commands", tag = "commands", request_body = NewCommand,
    params(("id" = i64, Path, description = "Device id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Queue at most one job per key (1-200 characters)")),
    responses(
        (status = 202, description = "Command queued", body = Command),
        (status = 401, body = ErrorBody), (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Unknown command (the message lists the profile's), wrong number of values, \
            a value out of 0-65535, broadcast of a command that may not be broadcast, a malformed Idempotency-Key", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_command(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<ApiJson<NewCommand>, ApiError>,
) -> Result<(StatusCode, Json<Command>), ApiError> {
    // The role first: a request outside it gets 403 whatever its body.
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    let key = idempotency_key(&headers)?;
    let request = CommandRequest {
        command: &body.command,
        values: body.values.as_deref(),
        broadcast: body.broadcast,
    };
    let job = jobs::start_command(&state.pool, &state.profiles, &caller, key, DeviceId(id), request).await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// A command's progress and outcome.
#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "commands",
    params(("id" = i64, Path, description = "Command id")),
    responses((status = 200, body = Command), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Command>, ApiError> {
    let row = jobs::get_command(&state.pool, &caller, id).await?;
    Ok(Json(row.into()))
}

/// Cancel a command still `queued` (engineer): it turns `cancelled`, with
/// `finished_at` set, and is never sent. The bus's worker marks a command
/// `running` in the same statement that claims it, so once claimed it can
/// no longer be cancelled (409), nor once ended. A command waiting for
/// field programming (a state still to come) will be cancellable too.
#[utoipa::path(post, path = "/api/v1/commands/{id}/cancel", tag = "commands",
    params(("id" = i64, Path, description = "Command id")),
    responses(
        (status = 200, description = "Command cancelled", body = Command,
            example = json!({"id": 7, "device_id": 3, "command": "set_tariff", "values": [2], "broadcast": false,
                "state": "cancelled", "outcome": null, "error": null, "requested_by": "commissioning",
                "created_at": "2026-11-22T08:00:00Z", "started_at": null,
                "finished_at": "2026-11-22T08:00:04Z"})),
        (status = 401, body = ErrorBody), (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, description = "No command of that id", body = ErrorBody),
        (status = 409, description = "No longer queued; the message names its state", body = ErrorBody,
            example = json!({"error": {"code": "conflict",
                "message": "state: the command is running; it can no longer be cancelled"}})),
    ))]
#[tracing::instrument(skip(state), fields(user = %caller.user))]
pub(crate) async fn cancel_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Command>, ApiError> {
    let row = jobs::cancel_command(&state.pool, &caller, id).await?;
    Ok(Json(row.into()))
}
