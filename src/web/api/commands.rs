//! `/api/v1/devices/{id}/commands` and `/api/v1/commands/{id}`: writing a
//! profile command to a device (engineer).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::device::command::SET_ADDRESS;
use crate::device::profile::{Profile, WriteCommand};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::poll::command::{BusCommand, Write};
use crate::store::audit::insert_audit;
use crate::store::command_jobs::{
    CommandJobRow, NewCommandJob, fetch_command_job, insert_command_job, update_command_job_finished,
};
use crate::store::devices::{DeviceRow, fetch_device, fetch_devices_on_bus};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::state::AppState;

/// A command to write to a device.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"command": "set_tariff", "values": [2], "broadcast": false}))]
pub struct NewCommand {
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
    "state": "done", "outcome": null, "error": null, "requested_by": "commissioning",
    "created_at": "2026-11-22T08:00:00Z", "started_at": "2026-11-22T08:00:00.05Z",
    "finished_at": "2026-11-22T08:00:00.1Z"}))]
pub struct Command {
    pub id: i64,
    pub device_id: i64,
    pub command: String,
    /// Values written; null until sent when the server fills them (a clock).
    pub values: Option<Vec<i32>>,
    pub broadcast: bool,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
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

/// Checks a command against the device's profile; returns the values to write
/// (`None`: the server fills a clock command's when it sends it).
async fn check(
    state: &AppState,
    device: &DeviceRow,
    profile: &Profile,
    body: &NewCommand,
) -> Result<Option<Vec<u16>>, ApiError> {
    let commands = &profile.modbus.commands;
    let command: &WriteCommand = commands.get(&body.command).ok_or_else(|| {
        let known: Vec<&str> = commands.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        ApiError::invalid(
            "command",
            format!(
                "{} has no command {:?}; its commands: {known}",
                profile.name, body.command
            ),
        )
    })?;
    if body.broadcast && !command.broadcast {
        return Err(ApiError::invalid(
            "broadcast",
            format!("{} of {} may not be broadcast", body.command, profile.name),
        ));
    }
    let Some(values) = &body.values else {
        if command.clock.is_some() {
            return Ok(None);
        }
        return Err(ApiError::invalid(
            "values",
            format!("{} needs {} value(s)", body.command, command.count),
        ));
    };
    if values.len() != usize::from(command.count) {
        return Err(ApiError::invalid(
            "values",
            format!(
                "{} takes {} value(s), got {}",
                body.command,
                command.count,
                values.len()
            ),
        ));
    }
    let words = values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            u16::try_from(value).map_err(|_| ApiError::invalid(&format!("values[{index}]"), "must be 0-65535"))
        })
        .collect::<Result<Vec<u16>, ApiError>>()?;
    if body.command == SET_ADDRESS {
        let wanted = words[0];
        if !(1..=u16::from(profile.max_address)).contains(&wanted) {
            return Err(ApiError::invalid(
                "values[0]",
                format!("{} accepts addresses 1-{}", profile.name, profile.max_address),
            ));
        }
        let neighbours = fetch_devices_on_bus(&state.pool, device.bus_id).await?;
        if let Some(other) = neighbours
            .iter()
            .find(|other| other.id != device.id && other.address == Some(wanted as i16))
        {
            return Err(ApiError::invalid(
                "values[0]",
                format!("address {wanted} is taken by {} on this bus", other.name),
            ));
        }
    }
    Ok(Some(words))
}

/// Checks and queues a command, for the API and the device page alike.
pub(crate) async fn start_command(
    state: &AppState,
    caller: &Caller,
    device: DeviceId,
    body: &NewCommand,
) -> Result<CommandJobRow, ApiError> {
    caller.require(Right::Configure)?;
    let row = fetch_device(&state.pool, device)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no device {device}")))?;
    let profile = state
        .profiles
        .get(&row.profile)
        .ok_or_else(|| ApiError::invalid("command", format!("the device's profile {} is not loaded", row.profile)))?;
    if row.address.is_none() {
        return Err(ApiError::invalid(
            "command",
            "commands are Modbus writes; this device is read over IEC 62056-21, which takes none yet",
        ));
    }
    let values = check(state, &row, &profile, body).await?;
    let job = insert_command_job(
        &state.pool,
        &NewCommandJob {
            device,
            command: &body.command,
            values: values.as_deref(),
            broadcast: body.broadcast,
            requested_by: &caller.user,
        },
    )
    .await?;
    let write = Write {
        job: job.id,
        device,
        command: body.command.clone(),
        values: values.clone(),
        broadcast: body.broadcast,
    };
    if let Err(error) = state.commands.send(row.bus_id, BusCommand::Write(write)) {
        update_command_job_finished(&state.pool, job.id, Err(&error.to_string())).await?;
        return Err(error.into());
    }
    insert_audit(
        &state.pool,
        &caller.user,
        "command_device",
        &format!("device/{device}"),
        serde_json::json!({"job": job.id, "command": body.command, "values": values, "broadcast": body.broadcast}),
    )
    .await?;
    Ok(job)
}

/// Write a command to a device (engineer): one of its profile's commands,
/// sent before any read waiting on its bus. Follow it with
/// `GET /api/v1/commands/{id}`.
#[utoipa::path(post, path = "/api/v1/devices/{id}/commands", tag = "commands", request_body = NewCommand,
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 202, description = "Command queued", body = Command),
        (status = 401, body = ErrorBody), (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The device's bus is not polled by this server", body = ErrorBody),
        (status = 422, description = "Unknown command (the message lists the profile's), wrong number of values, \
            a value out of 0-65535, broadcast of a command that may not be broadcast", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub async fn create_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<ApiJson<NewCommand>, ApiError>,
) -> Result<(StatusCode, Json<Command>), ApiError> {
    // The role first: a request outside it gets 403 whatever its body.
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    let job = start_command(&state, &caller, DeviceId(id), &body).await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// A command's progress and outcome.
#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "commands",
    params(("id" = i64, Path, description = "Command id")),
    responses((status = 200, body = Command), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Command>, ApiError> {
    caller.require(Right::Read)?;
    let row = fetch_command_job(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no command {id}")))?;
    Ok(Json(row.into()))
}
