//! `/api/v1/devices/{id}/secrets`: an engineer sets or removes a device's
//! secrets (its IEC 62056-21 password); anyone lists their names. A value
//! goes in and never comes out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::domain::secret::SecretName;
use crate::service::device_secrets;
use crate::store::device_secrets::SecretInfo;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// The value of a secret. Not echoed in any answer, log or page.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"value": "87654321"}))]
pub(crate) struct SecretValue {
    /// For `iec_password`: what the meter expects in the `P1` command of
    /// programming mode (IEC 62056-21). 1–32 visible ASCII characters
    /// (a data-set value is at most 32, IEC 62056-21 6.5), none of
    /// `( ) * / !`, which frame a data set.
    #[schema(example = "87654321")]
    #[serde(deserialize_with = "text_not_echoed")]
    pub value: String,
}

/// A string; anything else is refused without repeating it (serde's own
/// message would quote a number given as the password).
fn text_not_echoed<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(text),
        _ => Err(serde::de::Error::custom("must be a JSON string")),
    }
}

/// A secret a device carries: its name, who set it and when; never its value.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "iec_password", "set_by": "alice", "set_at": "2026-12-05T18:00:00Z"}))]
pub(crate) struct DeviceSecret {
    /// `iec_password`: the IEC 62056-21 programming-mode password, used for
    /// the device's load profile instead of its profile's.
    pub name: SecretName,
    /// The user whose token set it.
    #[schema(example = "alice")]
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

impl From<SecretInfo> for DeviceSecret {
    fn from(info: SecretInfo) -> DeviceSecret {
        DeviceSecret {
            name: info.name,
            set_by: info.set_by,
            set_at: info.set_at,
        }
    }
}

/// Set a device secret (engineer). Setting `iec_password`, even to the
/// value it had, lifts the lock a refused password put on the device's
/// programming-mode work and clears its `password_refused` event.
#[utoipa::path(put, path = "/api/v1/devices/{id}/secrets/{name}", tag = "devices", request_body = SecretValue,
    params(("id" = i64, Path, description = "Device id"),
           ("name" = String, Path, description = "The secret: `iec_password`", example = "iec_password")),
    responses(
        (status = 204, description = "Stored, sealed"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, description = "No such device, or no secret of that name", body = ErrorBody),
        (status = 422, description = "`value` is not what the secret can carry, or the device has no use for it; the message names the field", body = ErrorBody),
        (status = 503, description = "`not_configured`: the server has no OHMNIBUS_SECRET_KEY", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn set_device_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, name)): ApiPath<(i64, String)>,
    body: Result<ApiJson<SecretValue>, ApiError>,
) -> Result<StatusCode, ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    device_secrets::set_device_secret(
        &state.pool,
        state.secret_key.as_ref(),
        &caller,
        DeviceId(id),
        &name,
        &body.value,
        state.clock.now(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a device secret (engineer): for `iec_password`, the profile's
/// password applies again.
#[utoipa::path(delete, path = "/api/v1/devices/{id}/secrets/{name}", tag = "devices",
    params(("id" = i64, Path, description = "Device id"),
           ("name" = String, Path, description = "The secret: `iec_password`", example = "iec_password")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, description = "No such device, or it has no such secret", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state), fields(user = %caller.user))]
pub(crate) async fn delete_device_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, name)): ApiPath<(i64, String)>,
) -> Result<StatusCode, ApiError> {
    device_secrets::delete_device_secret(&state.pool, &caller, DeviceId(id), &name, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The secrets a device carries, by name; never their values.
#[utoipa::path(get, path = "/api/v1/devices/{id}/secrets", tag = "devices",
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 200, body = Vec<DeviceSecret>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn list_device_secrets(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<DeviceSecret>>, ApiError> {
    let secrets = device_secrets::list_device_secrets(&state.pool, &caller, DeviceId(id)).await?;
    Ok(Json(secrets.into_iter().map(DeviceSecret::from).collect()))
}
