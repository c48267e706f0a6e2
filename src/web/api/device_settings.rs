//! `PATCH /api/v1/devices/{id}`: an engineer renames a device, stops or
//! resumes its polling, or changes its poll periods, interval length or
//! physical limits, or the calendar its tariff is switched by.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::devices::{Device, ScheduleInput, TariffControl};
use crate::domain::ids::{CalendarId, DeviceId, SiteId};
use crate::domain::role::Right;
use crate::service::device_request::Periods;
use crate::service::device_settings;
use crate::service::site_tree::PlaceChange;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// What to change; fields left out keep their value. Of the physical
/// limits, null restores the default: CT ratio 1, no largest current of the
/// device's own (its profile's applies, if any), 230 V, three phases.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"schedule": {"energy_seconds": 300}, "enabled": true, "interval_minutes": 30,
    "ct_ratio": 40, "max_current_a": 6, "voltage_v": 230, "phases": 3}))]
pub struct DeviceChange {
    #[schema(min_length = 1)]
    pub name: Option<String>,
    /// False stops polling the device (its data stays); true resumes it.
    pub enabled: Option<bool>,
    pub schedule: Option<ScheduleInput>,
    /// Length of the intervals derived from its registers, 1–120 minutes.
    /// Intervals already derived keep their length.
    pub interval_minutes: Option<u32>,
    /// Current transformer ratio, primary over secondary (200/5 A is 40);
    /// above 0. Null: 1, a direct connection.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, example = 40)]
    pub ct_ratio: Option<Option<f64>>,
    /// Largest current on the meter's terminals (secondary side), in A;
    /// above 0. Null: none of the device's own, the profile's applies.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, example = 6)]
    pub max_current_a: Option<Option<f64>>,
    /// Nominal phase-to-neutral voltage in V; above 0. Null: 230.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, example = 230)]
    pub voltage_v: Option<Option<f64>>,
    /// Number of phases, 1 or 3. Null: 3.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, example = 3)]
    pub phases: Option<Option<i64>>,
    /// What the meter is programmed to count energies in, `kWh` or `MWh`
    /// (kvarh/Mvarh, kVAh/MVAh alike), for a meter type that may count in
    /// either (TH40C). A TH40C read over Modbus set to MWh gives MWh: its
    /// values are stored ×1000 in kWh. Null: the profile's default (kWh).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "MWh")]
    pub energy_unit: Option<Option<String>>,
    /// The decimals the meter shows its energies with (TH40C 0–3; COUNTIS
    /// E33 0–1; A1000 1–2): with its digits (TH40C 8, E33 7, A1000 7) they
    /// fix where its registers roll over (PROFILES.md, "Energy display").
    /// Null: the profile's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, example = 3)]
    pub energy_decimals: Option<Option<i64>>,
    /// Moves it to another site; it must have no sub-meters then, and its
    /// parent (kept or given) must be on the new site (docs/SITES.md).
    #[schema(example = 1)]
    pub site_id: Option<i64>,
    /// The meter upstream of it: a device of the same site, not itself, not
    /// downstream of it. Null detaches it (top of the tree).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, example = 3)]
    pub parent_device_id: Option<Option<i64>>,
    /// For a meter whose tariff source is the bus (E33, E43/E44): the
    /// tariff calendar by which the server switches its tariff, band `n` of
    /// the calendar (in its order) being tariff `n`; at most 4 bands. Null
    /// ends it. A meter that takes no `set_tariff` over its bus is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<TariffControl>)]
    pub tariff_control: Option<Option<TariffControl>>,
}

/// Tells a field sent as null (`Some(None)`) from one left out (`None`, by
/// `#[serde(default)]`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Change a device (engineer). The poller follows within seconds.
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "devices", request_body = DeviceChange,
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 200, description = "Changed", body = Device),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A field is invalid; the message names it", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn update_device(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    body: Result<ApiJson<DeviceChange>, ApiError>,
) -> Result<Json<Device>, ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(change) = body?;
    let updated =
        device_settings::update_device(&state.pool, &state.profiles, &caller, DeviceId(id), &change.into()).await?;
    Ok(Json(Device::new(updated, &state.profiles)))
}

impl From<DeviceChange> for device_settings::DeviceChange {
    fn from(change: DeviceChange) -> device_settings::DeviceChange {
        device_settings::DeviceChange {
            name: change.name,
            enabled: change.enabled,
            schedule: change.schedule.map(Periods::from).unwrap_or_default(),
            interval_minutes: change.interval_minutes,
            ct_ratio: change.ct_ratio,
            max_current_a: change.max_current_a,
            voltage_v: change.voltage_v,
            phases: change.phases,
            energy_unit: change.energy_unit,
            energy_decimals: change.energy_decimals,
            place: PlaceChange {
                site_id: change.site_id.map(SiteId),
                parent_device_id: change.parent_device_id.map(|parent| parent.map(DeviceId)),
            },
            tariff_control: change
                .tariff_control
                .map(|control| control.map(|control| CalendarId(control.calendar_id))),
        }
    }
}
