//! `/api/v1/devices/{id}/commands` and `/api/v1/commands/{id}`: typed
//! commands to devices (engineer).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::jobs::{JobFailure, idempotency_key};
use crate::domain::command::{CommandKind, CommandParameters};
use crate::domain::ids::DeviceId;
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::service::commands::{self, CommandRequest, DryRun, Started};
use crate::service::jobs;
use crate::store::command_jobs::CommandJobRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// A command to a device: a kind and its named parameters.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"kind": "set_tariff", "tariff": 2}))]
pub(crate) struct NewCommand {
    /// What to do: `set_clock` (the server's time, in the site's zone, when
    /// sent), `set_address` (`address`), `set_tariff` (`tariff`),
    /// `reset_partial`, `reset_counters` (`channels`), `set_ct_ratio`
    /// (`primary_a`, `secondary_a`), `configure_channel` (`channel`, `unit`,
    /// `pulse_weight`, `ct_ratio`, `vt_ratio`, `off_time_ms`),
    /// `billing_reset`, `demand_reset`, `push_tou` (`calendar_id`),
    /// `start_partial`, `stop_partial`, `set_baud_rate` (`baud`), or
    /// `write_registers` (`register`, `values`: raw writes). A kind the
    /// device takes on its front panel only, or not at all, is refused (422)
    /// with the reason.
    pub kind: String,
    /// Only show the exact frames that would be sent (200); send nothing,
    /// queue nothing.
    #[serde(default)]
    pub dry_run: bool,
    #[serde(flatten)]
    pub parameters: CommandParameters,
}

/// A command and where it is.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "device_id": 3, "kind": "set_tariff", "parameters": {"tariff": 2},
    "state": "succeeded", "error": null, "before": {"0xC801": [1]}, "after": {"0xC801": [2]},
    "written": [{"write": "set_tariff", "function": 6, "register": 40481, "values": [2], "broadcast": false}],
    "outcome": null, "instructions": null, "requested_by": "commissioning",
    "created_at": "2026-11-22T08:00:00Z", "started_at": "2026-11-22T08:00:00.05Z",
    "finished_at": "2026-11-22T08:00:00.1Z"}))]
pub(crate) struct Command {
    pub id: i64,
    pub device_id: i64,
    /// The command's kind, as asked.
    pub kind: String,
    /// Its named parameters, as asked (`broadcast` when sent to every
    /// device of the bus).
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// `queued`, `running`, `awaiting_field_programming`, `succeeded`,
    /// `failed` or `cancelled`.
    pub state: JobState,
    /// Why it failed; null unless `failed`.
    pub error: Option<JobFailure>,
    /// What the registers that verify the write held before it, by register
    /// (`{"0xC801": [1]}`, or an IEC address); after a broadcast, by device
    /// (`{"device 12": {...}}`). Empty when the profile verifies the write
    /// by no read (a write-only reset code).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// What they held after it, read the same way (at the new address after
    /// `set_address`).
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    /// The writes sent (null until sent): register, function, values, and
    /// whether to unit 0.
    #[schema(value_type = Option<Vec<Object>>)]
    pub written: Option<Value>,
    /// For a broadcast: "sent to all devices (no answer expected)", and the
    /// devices it could not be verified on.
    pub outcome: Option<String>,
    /// While `awaiting_field_programming`: what the technician must do on site.
    pub instructions: Option<String>,
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
            kind: row.kind,
            parameters: row.parameters,
            state: row.state,
            error: row.error.map(|(code, message)| JobFailure { code, message }),
            before: row.before,
            after: row.after,
            written: row.written,
            outcome: row.outcome,
            instructions: row.instructions,
            requested_by: row.requested_by,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }
}

/// One message a dry run would send.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlannedFrame {
    /// The profile's name of the write; over IEC 62056-21 the step of the
    /// programming session (`sign-on`, `password`, `write 0.9.1`, `break`).
    pub write: String,
    /// Modbus: unit address; 0 for a broadcast.
    pub unit: Option<u8>,
    /// Modbus: the function, 6 or 16.
    pub function: Option<u8>,
    /// Modbus: the first register written.
    pub register: Option<u16>,
    /// Modbus: the values written.
    pub values: Option<Vec<u16>>,
    /// The whole frame in hexadecimal, as it goes on the wire: an RTU frame
    /// with its CRC, a Modbus TCP ADU (its transaction id, here 0000, is
    /// the link's next when really sent), or an IEC 62056-21 message with
    /// its block check (the password masked as `********`).
    pub hex: String,
    /// IEC 62056-21: the message with its control characters named.
    pub text: Option<String>,
}

/// What a command would send, as of now; nothing was sent or queued.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"dry_run": true, "kind": "set_tariff", "parameters": {"tariff": 2},
    "frames": [{"write": "set_tariff", "unit": 5, "function": 6, "register": 40481, "values": [2],
        "hex": "05069E210002766D", "text": null}]}))]
pub(crate) struct CommandDryRun {
    /// Always true.
    pub dry_run: bool,
    pub kind: CommandKind,
    #[schema(value_type = Object)]
    pub parameters: Value,
    pub frames: Vec<PlannedFrame>,
}

impl From<DryRun> for CommandDryRun {
    fn from(dry: DryRun) -> CommandDryRun {
        CommandDryRun {
            dry_run: true,
            kind: dry.kind,
            parameters: commands::shown_parameters(&dry.parameters),
            frames: dry
                .frames
                .into_iter()
                .map(|frame| PlannedFrame {
                    write: frame.write,
                    unit: frame.modbus.as_ref().map(|modbus| modbus.unit),
                    function: frame.modbus.as_ref().map(|modbus| modbus.function),
                    register: frame.modbus.as_ref().map(|modbus| modbus.register),
                    values: frame.modbus.map(|modbus| modbus.values),
                    hex: hex::encode_upper(frame.bytes),
                    text: frame.text,
                })
                .collect(),
        }
    }
}

/// Send a command to a device (engineer): a kind and its named
/// parameters, checked against the device's profile and the ranges of its
/// manual, then queued ahead of every read on its bus; follow it with
/// `GET /api/v1/commands/{id}`. With `"dry_run": true` the answer is the
/// exact frames that would be sent, and nothing is sent. A command the
/// server was sending when it stopped fails as `interrupted` and is not
/// sent again.
#[utoipa::path(post, path = "/api/v1/devices/{id}/commands", tag = "commands", request_body = NewCommand,
    params(("id" = i64, Path, description = "Device id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]([ -~]*[!-~])?$", description = "Queue at most one command per key (1-200 characters)")),
    responses(
        (status = 202, description = "Command queued", body = Command,
            example = json!({"id": 7, "device_id": 3, "kind": "set_tariff", "parameters": {"tariff": 2},
                "state": "queued", "error": null, "before": null, "after": null, "written": null, "outcome": null,
                "instructions": null, "requested_by": "commissioning", "created_at": "2026-11-22T08:00:00Z",
                "started_at": null, "finished_at": null})),
        (status = 200, description = "Dry run: what would be sent", body = CommandDryRun),
        (status = 401, body = ErrorBody), (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "An unknown kind; a parameter missing, not taken by the kind, or outside the \
            device's range (named); a kind the device takes on its front panel only or not at all; broadcast of a \
            command that may not be broadcast; a malformed Idempotency-Key", body = ErrorBody,
            example = json!({"error": {"code": "invalid_field",
                "message": "tariff: countis-e43 takes 1-4, not 5"}})),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_command(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    body: Result<ApiJson<NewCommand>, ApiError>,
) -> Result<Response, ApiError> {
    // The role first: a request outside it gets 403 whatever its body.
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    let key = idempotency_key(&headers)?;
    let request = CommandRequest {
        kind: &body.kind,
        parameters: body.parameters,
        dry_run: body.dry_run,
    };
    let now = state.clock.now();
    let started =
        commands::start_command(&state.pool, &state.profiles, &caller, key, DeviceId(id), request, now).await?;
    Ok(match started {
        Started::Queued(row) => (StatusCode::ACCEPTED, Json(Command::from(*row))).into_response(),
        Started::DryRun(dry) => Json(CommandDryRun::from(*dry)).into_response(),
    })
}

/// A command's progress and outcome.
#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "commands",
    params(("id" = i64, Path, description = "Command id")),
    responses((status = 200, body = Command), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_command(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Command>, ApiError> {
    let row = commands::get_command(&state.pool, &caller, id).await?;
    Ok(Json(row.into()))
}

/// Cancel a command still `queued` or `awaiting_field_programming`
/// (engineer): it turns `cancelled`, with `finished_at` set, and is never
/// sent. The bus's worker marks a command `running` in the same statement
/// that claims it, so once claimed it can no longer be cancelled (409),
/// nor once ended.
#[utoipa::path(post, path = "/api/v1/commands/{id}/cancel", tag = "commands",
    params(("id" = i64, Path, description = "Command id")),
    responses(
        (status = 200, description = "Command cancelled", body = Command,
            example = json!({"id": 7, "device_id": 3, "kind": "set_tariff", "parameters": {"tariff": 2},
                "state": "cancelled", "error": null, "before": null, "after": null, "written": null,
                "outcome": null, "instructions": null, "requested_by": "commissioning",
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
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Command>, ApiError> {
    let row = jobs::cancel_command(&state.pool, &caller, id).await?;
    Ok(Json(row.into()))
}
