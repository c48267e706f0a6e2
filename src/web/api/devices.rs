//! `/api/v1/devices`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::device::registry::ProfileSet;
use crate::domain::address::UnitAddress;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::role::Right;
use crate::domain::state::DeviceState;
use crate::store::audit::insert_audit;
use crate::store::buses::fetch_bus;
use crate::store::devices::{DeviceRow, NewDevice as StoreNewDevice, fetch_device, fetch_devices, insert_device};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::state::AppState;

/// Longest poll period a device may have (one day).
const MAX_PERIOD_SECONDS: u32 = 86_400;

/// A device to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Main incomer", "bus_id": 1, "profile": "th40c", "address": 1}))]
pub struct NewDevice {
    pub name: String,
    pub bus_id: i64,
    /// Device profile name, e.g. `th40c`.
    pub profile: String,
    /// Modbus unit address, 1–247.
    pub address: i64,
    /// Poll periods; the profile's defaults when absent.
    pub schedule: Option<ScheduleInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// Seconds between reads of instantaneous values (1–86400).
    pub realtime_seconds: Option<u32>,
    /// Seconds between reads of energy and demand registers (1–86400).
    pub energy_seconds: Option<u32>,
    /// Seconds between reads of closed billing periods' values (1–86400).
    pub history_seconds: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    pub realtime_seconds: i32,
    pub energy_seconds: i32,
    pub history_seconds: i32,
}

/// Reachability as the poller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub state: DeviceState,
    pub last_success_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// A device.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "Main incomer", "bus_id": 1, "profile": "th40c", "address": 1,
    "schedule": {"realtime_seconds": 10, "energy_seconds": 60, "history_seconds": 900},
    "status": {"state": "online", "last_success_at": "2026-11-22T08:00:00Z", "consecutive_failures": 0, "last_error": null},
    "created_at": "2026-11-22T07:59:00Z"}))]
pub struct Device {
    #[schema(value_type = i64)]
    pub id: DeviceId,
    pub name: String,
    #[schema(value_type = i64)]
    pub bus_id: BusId,
    pub profile: String,
    pub address: i16,
    pub schedule: Schedule,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    /// For a legally certified meter (e.g. MID): what its values read over
    /// the bus are worth legally, from its manual. Null for other meters.
    #[schema(
        example = "MID-certified meter (COUNTIS E44 manual §7): values read over RS485 are sent for information only and have no legal value; the legal reading is the meter's own display."
    )]
    pub legal_metrology: Option<String>,
}

impl Device {
    fn new(row: DeviceRow, profiles: &ProfileSet) -> Device {
        Device {
            legal_metrology: profiles.get(&row.profile).and_then(|p| p.legal_metrology.clone()),
            status: Status {
                state: row.state(),
                last_success_at: row.last_success_at,
                consecutive_failures: row.consecutive_failures,
                last_error: row.last_error,
            },
            id: row.id,
            name: row.name,
            bus_id: row.bus_id,
            profile: row.profile,
            address: row.address,
            schedule: Schedule {
                realtime_seconds: row.realtime_seconds,
                energy_seconds: row.energy_seconds,
                history_seconds: row.history_seconds,
            },
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

fn period(field: &str, value: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match value {
        None => Ok(default),
        Some(seconds @ 1..=MAX_PERIOD_SECONDS) => Ok(seconds),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("must be 1-{MAX_PERIOD_SECONDS} seconds"),
        )),
    }
}

/// Create a device (engineer). Polling starts within seconds.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = NewDevice,
    responses(
        (status = 201, description = "Created", body = Device),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 409, description = "Address already used on this bus", body = ErrorBody),
        (status = 422, description = "Unknown bus or profile, address out of range, malformed field", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub async fn create_device(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<NewDevice>, ApiError>,
) -> Result<(StatusCode, Json<Device>), ApiError> {
    // The role first: a request outside it gets 403 whatever its body.
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    let row = add_device(&state, &caller, &body).await?;
    Ok((StatusCode::CREATED, Json(Device::new(row, &state.profiles))))
}

/// Checks and creates a device, for the API and the bus page alike.
pub(crate) async fn add_device(state: &AppState, caller: &Caller, body: &NewDevice) -> Result<DeviceRow, ApiError> {
    caller.require(Right::Configure)?;
    let name = body.name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("name", "must not be empty"));
    }
    let profile = state.profiles.get(&body.profile).ok_or_else(|| {
        let known: Vec<&str> = state.profiles.names().collect();
        ApiError::invalid(
            "profile",
            format!("unknown profile {:?}; known: {}", body.profile, known.join(", ")),
        )
    })?;
    let address = UnitAddress::new(body.address).map_err(|error| ApiError::invalid("address", error))?;
    if address.get() > profile.max_address {
        return Err(ApiError::invalid(
            "address",
            format!("{} accepts addresses 1-{}", profile.name, profile.max_address),
        ));
    }
    let bus_id = BusId(body.bus_id);
    if fetch_bus(&state.pool, bus_id).await?.is_none() {
        return Err(ApiError::invalid("bus_id", format!("no bus {}", body.bus_id)));
    }
    let schedule = body.schedule.as_ref();
    let new = StoreNewDevice {
        bus_id,
        name,
        profile: &profile.name,
        address,
        realtime_seconds: period(
            "schedule.realtime_seconds",
            schedule.and_then(|s| s.realtime_seconds),
            profile.schedule.realtime_seconds,
        )?,
        energy_seconds: period(
            "schedule.energy_seconds",
            schedule.and_then(|s| s.energy_seconds),
            profile.schedule.energy_seconds,
        )?,
        history_seconds: period(
            "schedule.history_seconds",
            schedule.and_then(|s| s.history_seconds),
            profile.schedule.history_seconds,
        )?,
    };
    let row = insert_device(&state.pool, &new).await?;
    insert_audit(
        &state.pool,
        &caller.user,
        "create_device",
        &format!("device/{}", row.id),
        serde_json::json!({"name": name, "bus_id": bus_id, "profile": profile.name, "address": address}),
    )
    .await?;
    Ok(row)
}

/// List devices.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    responses((status = 200, body = DeviceList), (status = 401, body = ErrorBody)))]
pub async fn list_devices(State(state): State<AppState>, caller: Caller) -> Result<Json<DeviceList>, ApiError> {
    caller.require(Right::Read)?;
    let devices = fetch_devices(&state.pool)
        .await?
        .into_iter()
        .map(|row| Device::new(row, &state.profiles))
        .collect();
    Ok(Json(DeviceList { devices }))
}

/// One device with its polling status.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = i64, Path, description = "Device id")),
    responses((status = 200, body = Device), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Device>, ApiError> {
    caller.require(Right::Read)?;
    let row = fetch_device(&state.pool, DeviceId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?;
    Ok(Json(Device::new(row, &state.profiles)))
}
