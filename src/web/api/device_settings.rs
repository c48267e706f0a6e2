//! `PATCH /api/v1/devices/{id}`: an engineer renames a device, stops or
//! resumes its polling, or changes its poll periods or interval length.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;

use super::devices::{Device, ScheduleInput, period};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::store::audit::insert_audit;
use crate::store::devices::{DeviceSettings, fetch_device, update_device_settings};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::state::AppState;

/// What to change; fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"schedule": {"energy_seconds": 300}, "enabled": true, "interval_minutes": 30}))]
pub struct DeviceChange {
    pub name: Option<String>,
    /// False stops polling the device (its data stays); true resumes it.
    pub enabled: Option<bool>,
    pub schedule: Option<ScheduleInput>,
    /// Length of the intervals derived from its registers, 1–120 minutes.
    /// Intervals already derived keep their length.
    pub interval_minutes: Option<u32>,
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
        }),
    )
    .await?;
    Ok(Json(Device::new(updated, &state.profiles)))
}
