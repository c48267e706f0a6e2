//! `/api/v1/devices`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::device::profile::Profile;
use crate::device::registry::ProfileSet;
use crate::domain::address::UnitAddress;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::role::Right;
use crate::domain::state::DeviceState;
use crate::domain::transport::{Protocol, Transport};
use crate::store::audit::insert_audit;
use crate::store::buses::fetch_bus;
use crate::store::devices::{
    DeviceAddress, DeviceRow, NewDevice as StoreNewDevice, fetch_device, fetch_devices, fetch_devices_on_bus,
    insert_device,
};
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
    /// Modbus unit address, 1–247: required on a Modbus bus, absent on an
    /// IEC 62056-21 bus.
    pub address: Option<i64>,
    /// IEC 62056-21 device address (the sign-on's `/?ADDRESS!`, up to 32
    /// letters, digits or spaces, often the meter's serial number): required
    /// on an `iec62056_serial` or `iec62056_tcp` bus, optional on an optical
    /// probe (which reaches one meter), absent on a Modbus bus.
    #[schema(example = "12345678")]
    pub iec_address: Option<String>,
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
    "schedule": {"realtime_seconds": 10, "energy_seconds": 60, "history_seconds": 900}, "interval_minutes": 15,
    "ct_ratio": 1.0, "max_current_a": null, "voltage_v": 230.0, "phases": 3, "enabled": true,
    "status": {"state": "online", "last_success_at": "2026-11-22T08:00:00Z", "consecutive_failures": 0, "last_error": null},
    "created_at": "2026-11-22T07:59:00Z"}))]
pub struct Device {
    #[schema(value_type = i64)]
    pub id: DeviceId,
    pub name: String,
    #[schema(value_type = i64)]
    pub bus_id: BusId,
    pub profile: String,
    /// Modbus unit address; null for a device on an IEC 62056-21 bus.
    pub address: Option<i16>,
    /// IEC 62056-21 device address; null on a Modbus bus.
    pub iec_address: Option<String>,
    pub schedule: Schedule,
    /// Length of the load-profile intervals derived from its registers
    /// (1–120 minutes; a meter with a load profile of its own keeps its own).
    pub interval_minutes: i32,
    /// Current transformer ratio, primary over secondary (1: direct
    /// connection). With the next three, bounds an interval's energy for
    /// spike detection (docs/METERING.md, Validation).
    #[schema(example = 1.0)]
    pub ct_ratio: f64,
    /// Largest current on the meter's terminals, in A, as set for this
    /// device; null when none is set (the profile's applies, if it gives one).
    #[schema(example = json!(null))]
    pub max_current_a: Option<f64>,
    /// Nominal phase-to-neutral voltage, in V.
    #[schema(example = 230.0)]
    pub voltage_v: f64,
    /// Number of phases, 1 or 3.
    #[schema(example = 3)]
    pub phases: i16,
    /// Whether the device is polled.
    pub enabled: bool,
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
    pub(super) fn new(row: DeviceRow, profiles: &ProfileSet) -> Device {
        Device {
            legal_metrology: profiles.get(&row.profile).and_then(|p| p.legal_metrology.clone()),
            status: Status {
                state: row.state,
                last_success_at: row.last_success_at,
                consecutive_failures: row.consecutive_failures,
                last_error: row.last_error,
            },
            id: row.id,
            name: row.name,
            bus_id: row.bus_id,
            profile: row.profile,
            address: row.address,
            iec_address: row.iec_address,
            enabled: row.enabled,
            interval_minutes: row.interval_minutes,
            ct_ratio: row.ct_ratio,
            max_current_a: row.max_current_a,
            voltage_v: row.voltage_v,
            phases: row.phases,
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

pub(super) fn period(field: &str, value: Option<u32>, default: u32) -> Result<u32, ApiError> {
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
    let bus_id = BusId(body.bus_id);
    let Some(bus) = fetch_bus(&state.pool, bus_id).await? else {
        return Err(ApiError::invalid("bus_id", format!("no bus {}", body.bus_id)));
    };
    let address = match bus.transport.0.protocol() {
        Protocol::Modbus => modbus_address(body, &profile)?,
        Protocol::Iec62056 => iec_address(state, body, &profile, bus_id, &bus.transport.0).await?,
    };
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
        serde_json::json!({"name": name, "bus_id": bus_id, "profile": profile.name,
            "address": body.address, "iec_address": body.iec_address}),
    )
    .await?;
    Ok(row)
}

/// The Modbus unit of a device on a Modbus bus.
fn modbus_address(body: &NewDevice, profile: &Profile) -> Result<DeviceAddress, ApiError> {
    if !profile.speaks_modbus() {
        return Err(ApiError::invalid(
            "profile",
            format!(
                "{} is read over IEC 62056-21, not Modbus: put it on an iec62056_serial, optical or iec62056_tcp bus",
                profile.name
            ),
        ));
    }
    if body.iec_address.is_some() {
        return Err(ApiError::invalid(
            "iec_address",
            "a device on a Modbus bus has a unit address, not an IEC 62056-21 device address",
        ));
    }
    let Some(address) = body.address else {
        return Err(ApiError::invalid(
            "address",
            "required on a Modbus bus: the unit address, 1-247",
        ));
    };
    let address = UnitAddress::new(address).map_err(|error| ApiError::invalid("address", error))?;
    if address.get() > profile.max_address {
        return Err(ApiError::invalid(
            "address",
            format!("{} accepts addresses 1-{}", profile.name, profile.max_address),
        ));
    }
    Ok(DeviceAddress::Unit(address))
}

/// The device address of a device on an IEC 62056-21 bus. IEC 62056-21,
/// 6.3.1: up to 32 characters; ours are letters, digits and spaces, which
/// every meter we know uses (serial numbers).
async fn iec_address(
    state: &AppState,
    body: &NewDevice,
    profile: &Profile,
    bus_id: BusId,
    transport: &Transport,
) -> Result<DeviceAddress, ApiError> {
    if !profile.speaks_iec62056() {
        return Err(ApiError::invalid(
            "profile",
            format!(
                "{} is read over Modbus, not IEC 62056-21: put it on a modbus_tcp, rtu_over_tcp or serial_rtu bus",
                profile.name
            ),
        ));
    }
    if body.address.is_some() {
        return Err(ApiError::invalid(
            "address",
            "a device on an IEC 62056-21 bus has a device address (iec_address), not a Modbus unit",
        ));
    }
    let text = match (&body.iec_address, transport.single_device()) {
        (Some(text), _) => text.trim().to_owned(),
        (None, true) => String::new(),
        (None, false) => {
            return Err(ApiError::invalid(
                "iec_address",
                "required on a shared IEC 62056-21 line: the meter's device address, e.g. its serial number",
            ));
        }
    };
    if text.len() > 32 || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        return Err(ApiError::invalid(
            "iec_address",
            "must be at most 32 letters, digits or spaces",
        ));
    }
    if text.is_empty() && !transport.single_device() {
        return Err(ApiError::invalid(
            "iec_address",
            "must not be empty on a shared line: every meter would answer",
        ));
    }
    if transport.single_device() && !fetch_devices_on_bus(&state.pool, bus_id).await?.is_empty() {
        return Err(ApiError::invalid(
            "bus_id",
            "an optical probe reads one meter, and this one already has its device",
        ));
    }
    Ok(DeviceAddress::Iec(text))
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
