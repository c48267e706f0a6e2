//! `/api/v1/commands/bulk`: one command to a list of devices, a site's or
//! a bus's devices (engineer), and its progress.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::jobs::idempotency_key;
use crate::domain::command::CommandParameters;
use crate::domain::ids::{BusId, DeviceId, SiteId};
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::service::command_batches::{self, Bulk, BulkRequest, Target};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// A command to many devices: a kind and its named parameters, as for one
/// device, and exactly one target: `device_ids`, `site_id` or `bus_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"kind": "set_tariff", "tariff": 2, "bus_id": 1, "broadcast": true}))]
pub(crate) struct NewBulkCommand {
    /// The command's kind, as for `POST /api/v1/devices/{id}/commands`;
    /// `set_address` is refused (each device needs its own).
    pub kind: String,
    /// These devices (1-1000 ids); an id that names no device is refused
    /// on its own.
    #[serde(default)]
    pub device_ids: Option<Vec<i64>>,
    /// Every device of this site.
    #[serde(default)]
    pub site_id: Option<i64>,
    /// Every device of this bus.
    #[serde(default)]
    pub bus_id: Option<i64>,
    /// The named parameters of the kind, and `broadcast`: one command per
    /// bus sent to unit 0, allowed only where every device of the bus is in
    /// the target and its profile lets the kind be broadcast (else 422
    /// naming the bus and the device).
    #[serde(flatten)]
    pub parameters: CommandParameters,
}

/// Why a device's command was refused.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceRefusal {
    /// `invalid_field` (the device cannot take it: the message names the
    /// field and the reason) or `not_found` (no such device).
    pub code: String,
    pub message: String,
}

/// What came of the bulk for one device.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkDevice {
    pub device_id: i64,
    /// The command queued for it (a broadcast's one command for its bus);
    /// null when refused.
    pub command_id: Option<i64>,
    /// Why it was refused; null when queued.
    pub error: Option<DeviceRefusal>,
    /// Its command's state (`queued`, `running`, `succeeded`, …); null when refused.
    pub state: Option<JobState>,
}

/// A bulk command and how far it got.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 4, "kind": "set_tariff", "parameters": {"tariff": 2}, "target": {"bus_id": 1},
    "broadcast": false, "requested_by": "commissioning", "created_at": "2026-11-22T08:00:00Z",
    "counts": {"queued": 1, "succeeded": 1, "refused": 1},
    "devices": [
        {"device_id": 3, "command_id": 17, "error": null, "state": "succeeded"},
        {"device_id": 4, "command_id": 18, "error": null, "state": "queued"},
        {"device_id": 5, "command_id": null, "state": null,
            "error": {"code": "invalid_field", "message": "kind: th40c has no set_tariff over Modbus in its profile"}}]}))]
pub(crate) struct BulkCommand {
    pub id: i64,
    pub kind: String,
    /// The named parameters, as asked.
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// `{"device_ids": [...]}`, `{"site_id": N}` or `{"bus_id": N}`.
    #[schema(value_type = Object)]
    pub target: Value,
    pub broadcast: bool,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    /// How many devices are in each state, and `refused`; states with none
    /// are left out.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<String, usize>,
    /// Each device of the target, by id.
    pub devices: Vec<BulkDevice>,
}

impl From<Bulk> for BulkCommand {
    fn from(bulk: Bulk) -> BulkCommand {
        let row = bulk.row;
        let mut parameters = row.command.0;
        let kind = parameters
            .as_object_mut()
            .and_then(|fields| fields.remove("kind"))
            .and_then(|kind| kind.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut counts = BTreeMap::new();
        let devices = row
            .results
            .0
            .into_iter()
            .zip(bulk.states)
            .map(|(result, state)| {
                let label = match (&result.error, state) {
                    (Some(_), _) => "refused".to_owned(),
                    (None, Some(state)) => state.as_str().to_owned(),
                    (None, None) => "removed".to_owned(),
                };
                *counts.entry(label).or_default() += 1;
                BulkDevice {
                    device_id: result.device_id.0,
                    command_id: result.command_id,
                    error: result.error.map(|error| DeviceRefusal {
                        code: error.code,
                        message: error.message,
                    }),
                    state,
                }
            })
            .collect();
        BulkCommand {
            id: row.id,
            kind,
            parameters,
            target: row.target.0,
            broadcast: row.broadcast,
            requested_by: row.requested_by,
            created_at: row.created_at,
            counts,
            devices,
        }
    }
}

/// Send one command to many devices (engineer). Each device's command is
/// checked as a single command is, and queued on its own: a device that
/// cannot take it is refused in its result without holding up the others.
/// With `"broadcast": true` one command per bus goes to unit 0. Follow it
/// with `GET /api/v1/commands/bulk/{id}`.
#[utoipa::path(post, path = "/api/v1/commands/bulk", tag = "commands", request_body = NewBulkCommand,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]([ -~]*[!-~])?$",
        description = "Queue at most one bulk per key (1-200 characters); a repeat answers the first")),
    responses(
        (status = 202, description = "Queued where each device could take it", body = BulkCommand),
        (status = 401, body = ErrorBody), (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, description = "No such site or bus", body = ErrorBody),
        (status = 422, description = "An unknown kind or a bad parameter; not exactly one target; a target with no \
            device; a broadcast to a bus with a device outside the target or one that cannot take it", body = ErrorBody,
            example = json!({"error": {"code": "invalid_field", "message":
                "broadcast: a broadcast reaches every device of bus 1 (line); th40c@7 (device 9) is on it but not in the target"}})),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_bulk_command(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<ApiJson<NewBulkCommand>, ApiError>,
) -> Result<(StatusCode, Json<BulkCommand>), ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    let key = idempotency_key(&headers)?;
    let target = match (body.device_ids, body.site_id, body.bus_id) {
        (Some(ids), None, None) => Target::Devices(ids.into_iter().map(DeviceId).collect()),
        (None, Some(site), None) => Target::Site(SiteId(site)),
        (None, None, Some(bus)) => Target::Bus(BusId(bus)),
        _ => {
            return Err(ApiError::invalid(
                "device_ids",
                "name exactly one of device_ids, site_id and bus_id",
            ));
        }
    };
    let request = BulkRequest {
        kind: &body.kind,
        parameters: body.parameters,
        target,
    };
    let now = state.clock.now();
    let bulk = command_batches::start_bulk(&state.pool, &state.profiles, &caller, key, request, now).await?;
    Ok((StatusCode::ACCEPTED, Json(bulk.into())))
}

/// A bulk command's progress: how many devices are in each state, and each
/// device's command.
#[utoipa::path(get, path = "/api/v1/commands/bulk/{id}", tag = "commands",
    params(("id" = i64, Path, description = "Bulk command id")),
    responses((status = 200, body = BulkCommand), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_bulk_command(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<BulkCommand>, ApiError> {
    Ok(Json(command_batches::get_bulk(&state.pool, &caller, id).await?.into()))
}
