//! `PATCH /api/v1/devices/{id}`: an engineer renames a device, stops or
//! resumes its polling, or changes its poll periods, interval length or
//! physical limits.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::devices::{Device, ScheduleInput, period};
use super::physical_limits::{DEFAULT_CT_RATIO, DEFAULT_PHASES, DEFAULT_VOLTAGE_V, phases, positive};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::store::audit::insert_audit;
use crate::store::devices::{DeviceSettings, fetch_device, update_device_settings};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::state::AppState;

/// What to change; fields left out keep their value. Of the physical
/// limits, null restores the default: CT ratio 1, no largest current of the
/// device's own (its profile's applies, if any), 230 V, three phases.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"schedule": {"energy_seconds": 300}, "enabled": true, "interval_minutes": 30,
    "ct_ratio": 40, "max_current_a": 6, "voltage_v": 230, "phases": 3}))]
pub struct DeviceChange {
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
pub async fn update_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<ApiJson<DeviceChange>, ApiError>,
) -> Result<Json<Device>, ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(change) = body?;
    let id = DeviceId(id);
    let row = fetch_device(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?;
    let name = match change.name.as_deref().map(str::trim) {
        Some("") => return Err(ApiError::invalid("name", "must not be empty")),
        Some(name) => name,
        None => row.name.as_str(),
    };
    let schedule = change.schedule.as_ref();
    let current = |seconds: i32| u32::try_from(seconds).unwrap_or(1);
    let settings = DeviceSettings {
        name,
        enabled: change.enabled.unwrap_or(row.enabled),
        realtime_seconds: period(
            "schedule.realtime_seconds",
            schedule.and_then(|s| s.realtime_seconds),
            current(row.realtime_seconds),
        )?,
        energy_seconds: period(
            "schedule.energy_seconds",
            schedule.and_then(|s| s.energy_seconds),
            current(row.energy_seconds),
        )?,
        history_seconds: period(
            "schedule.history_seconds",
            schedule.and_then(|s| s.history_seconds),
            current(row.history_seconds),
        )?,
        interval_minutes: match change.interval_minutes {
            Some(minutes @ 1..=120) => minutes,
            Some(minutes) => {
                return Err(ApiError::invalid(
                    "interval_minutes",
                    format!("{minutes} is outside 1–120 minutes"),
                ));
            }
            None => current(row.interval_minutes),
        },
        ct_ratio: match change.ct_ratio {
            Some(value) => positive("ct_ratio", value)?.unwrap_or(DEFAULT_CT_RATIO),
            None => row.ct_ratio,
        },
        max_current_a: match change.max_current_a {
            Some(value) => positive("max_current_a", value)?,
            None => row.max_current_a,
        },
        voltage_v: match change.voltage_v {
            Some(value) => positive("voltage_v", value)?.unwrap_or(DEFAULT_VOLTAGE_V),
            None => row.voltage_v,
        },
        phases: match change.phases {
            Some(value) => phases(value)?.unwrap_or(DEFAULT_PHASES),
            None => u8::try_from(row.phases).unwrap_or(DEFAULT_PHASES),
        },
    };
    let updated = update_device_settings(&state.pool, id, &settings)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?;
    insert_audit(
        &state.pool,
        &caller.user,
        "update_device",
        &format!("device/{id}"),
        serde_json::json!({
            "name": settings.name,
            "enabled": settings.enabled,
            "schedule": {
                "realtime_seconds": settings.realtime_seconds,
                "energy_seconds": settings.energy_seconds,
                "history_seconds": settings.history_seconds,
            },
            "interval_minutes": settings.interval_minutes,
            "ct_ratio": settings.ct_ratio,
            "max_current_a": settings.max_current_a,
            "voltage_v": settings.voltage_v,
            "phases": settings.phases,
        }),
    )
    .await?;
    Ok(Json(Device::new(updated, &state.profiles)))
}
