//! `/api/v1/devices`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::device::registry::ProfileSet;
use crate::domain::ids::{BusId, DeviceId, SiteId};
use crate::domain::role::Right;
use crate::domain::state::DeviceState;
use crate::service::device_request::{self, Periods};
use crate::service::devices;
use crate::service::site_tree::PlaceChange;
use crate::store::devices::DeviceRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// A device to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Main incomer", "bus_id": 1, "profile": "th40c", "address": 1}))]
pub struct NewDevice {
    #[schema(min_length = 1)]
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
    /// The site it belongs to; default: its bus's site (docs/SITES.md).
    #[schema(example = 1)]
    pub site_id: Option<i64>,
    /// The meter upstream of it, on the same site; default none.
    #[schema(example = json!(null))]
    pub parent_device_id: Option<i64>,
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
pub(crate) struct Schedule {
    pub realtime_seconds: i32,
    pub energy_seconds: i32,
    pub history_seconds: i32,
}

/// Reachability as the poller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    pub state: DeviceState,
    pub last_success_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// A device.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "Main incomer", "bus_id": 1, "site_id": 1, "parent_device_id": null,
    "profile": "th40c", "address": 1, "schedule": {"realtime_seconds": 10, "energy_seconds": 60, "history_seconds": 900}, "interval_minutes": 15,
    "ct_ratio": 1.0, "max_current_a": null, "voltage_v": 230.0, "phases": 3, "energy_unit": null, "energy_decimals": null, "enabled": true,
    "status": {"state": "online", "last_success_at": "2026-11-22T08:00:00Z", "consecutive_failures": 0, "last_error": null},
    "created_at": "2026-11-22T07:59:00Z", "password_refused_at": null}))]
pub(crate) struct Device {
    #[schema(value_type = i64)]
    pub id: DeviceId,
    pub name: String,
    #[schema(value_type = i64)]
    pub bus_id: BusId,
    /// The site it belongs to (its bus's unless set otherwise).
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    /// The meter upstream of it on its site; null at the top of the tree.
    #[schema(value_type = Option<i64>)]
    pub parent_device_id: Option<DeviceId>,
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
    /// What its meter counts energies in (`kWh`, `MWh`) and on how many
    /// decimals, as set with `PATCH`; null: the profile's default. Only
    /// for profiles that give an energy display (TH40C, COUNTIS E33).
    #[schema(example = json!(null))]
    pub energy_unit: Option<String>,
    #[schema(example = json!(null))]
    pub energy_decimals: Option<i16>,
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
    /// When the meter refused its IEC 62056-21 programming-mode password
    /// (the device's own, else its profile's). While set, nothing is done
    /// in programming mode (its load profile is not read), as a meter may
    /// lock itself after refused passwords; setting the password again
    /// (`PUT /api/v1/devices/{id}/secrets/iec_password`) lifts it. Null
    /// otherwise.
    #[schema(example = json!(null))]
    pub password_refused_at: Option<DateTime<Utc>>,
    /// The tariff calendar by which the server switches the meter's tariff
    /// over the bus; null when the meter keeps its own (or has none).
    pub tariff_control: Option<TariffControl>,
}

/// The server switches the meter's tariff at each switch time of this
/// calendar: band `n`, in the calendar's order, is tariff `n`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"calendar_id": 4}))]
pub struct TariffControl {
    pub calendar_id: i64,
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
            site_id: row.site_id,
            parent_device_id: row.parent_device_id,
            profile: row.profile,
            address: row.address,
            iec_address: row.iec_address,
            enabled: row.enabled,
            interval_minutes: row.interval_minutes,
            ct_ratio: row.ct_ratio,
            max_current_a: row.max_current_a,
            voltage_v: row.voltage_v,
            phases: row.phases,
            energy_unit: row.energy_unit,
            energy_decimals: row.energy_decimals,
            schedule: Schedule {
                realtime_seconds: row.realtime_seconds,
                energy_seconds: row.energy_seconds,
                history_seconds: row.history_seconds,
            },
            created_at: row.created_at,
            password_refused_at: row.password_refused_at,
            tariff_control: row.tariff_calendar_id.map(|calendar| TariffControl {
                calendar_id: calendar.0,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceList {
    pub devices: Vec<Device>,
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
pub(crate) async fn create_device(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<NewDevice>, ApiError>,
) -> Result<(StatusCode, Json<Device>), ApiError> {
    // The role first: a request outside it gets 403 whatever its body.
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    let place = PlaceChange {
        site_id: body.site_id.map(SiteId),
        parent_device_id: Some(body.parent_device_id.map(DeviceId)),
    };
    let row = devices::add_device_placed(&state.pool, &state.profiles, &caller, &body.into(), place).await?;
    Ok((StatusCode::CREATED, Json(Device::new(row, &state.profiles))))
}

impl From<NewDevice> for device_request::NewDevice {
    fn from(body: NewDevice) -> device_request::NewDevice {
        device_request::NewDevice {
            name: body.name,
            bus_id: BusId(body.bus_id),
            profile: body.profile,
            address: body.address,
            iec_address: body.iec_address,
            schedule: body.schedule.map(Periods::from).unwrap_or_default(),
        }
    }
}

impl From<ScheduleInput> for Periods {
    fn from(input: ScheduleInput) -> Periods {
        Periods {
            realtime_seconds: input.realtime_seconds,
            energy_seconds: input.energy_seconds,
            history_seconds: input.history_seconds,
        }
    }
}

/// List devices.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    responses((status = 200, body = DeviceList), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_devices(State(state): State<AppState>, caller: Caller) -> Result<Json<DeviceList>, ApiError> {
    let devices = devices::list_devices(&state.pool, &caller)
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
pub(crate) async fn get_device(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Device>, ApiError> {
    let row = devices::get_device(&state.pool, &caller, DeviceId(id)).await?;
    Ok(Json(Device::new(row, &state.profiles)))
}
