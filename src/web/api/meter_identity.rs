//! `/api/v1/devices/{id}/identity`: which meter answers at a device's
//! address, and an engineer's confirmation that another meter replaces it.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::ids::DeviceId;
use crate::service::meter_identity::{self, IdentityView};
use crate::store::identity::Confirmed;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// The identity of the meter confirmed as the device's replacement.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"identity": "THM 87654321"}))]
pub(crate) struct ConfirmReplacement {
    /// The identity the meter now at the address shows: the device's
    /// `seen`, exactly. Confirming names the meter, so a confirmation
    /// meant for one meter cannot accept another that appeared since.
    #[schema(example = "THM 87654321")]
    pub identity: String,
}

/// The device's meter identity: the one expected (first seen, or
/// confirmed), the one the last check saw, whether the device is
/// quarantined (`quarantined_since`) and how many readings are held.
///
/// The identity is a Modbus meter's serial and model from its
/// identification registers, or an IEC 62056-21 meter's manufacturer and
/// serial (`C.1.0`, `96.1.0` or `0.0.0`, else its identification line);
/// checked after every (re)connection and at least hourly.
#[utoipa::path(get, path = "/api/v1/devices/{id}/identity", tag = "devices",
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 200, body = IdentityView),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
    ))]
pub(crate) async fn get_device_identity(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<IdentityView>, ApiError> {
    Ok(Json(
        meter_identity::device_identity(&state.pool, &caller, DeviceId(id)).await?,
    ))
}

/// Confirm a meter replacement (engineer): the meter now at the address
/// becomes the device's, a new register series starts where the
/// quarantine began (no consumption is derived across it), the held
/// readings are stored as the device's, `meter_identity_changed` closes
/// and `meter_replaced` is recorded. Audited.
#[utoipa::path(post, path = "/api/v1/devices/{id}/identity/confirm", tag = "devices", request_body = ConfirmReplacement,
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 200, description = "Confirmed: the identity now stored, and how many held readings were released", body = Confirmed,
         example = json!({
            "expected": "THM 87654321", "expected_since": "2026-12-05T11:00:00Z",
            "seen": "THM 87654321", "seen_at": "2026-12-05T10:15:00Z",
            "quarantined_since": null, "series": 2, "series_started_at": "2026-12-05T09:00:00Z",
            "released_readings": 1840
         })),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 409, description = "`conflict`: no other meter waits for confirmation, or the meter at the address shows another identity; nothing changed", body = ErrorBody,
         example = json!({"error": {"code": "conflict", "message": "identity: the meter at the address now shows \"THM 11111111\", not \"THM 87654321\""}})),
        (status = 422, description = "`invalid_field`: `identity` is missing or empty", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn confirm_meter_replacement(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    body: Result<ApiJson<ConfirmReplacement>, ApiError>,
) -> Result<Json<Confirmed>, ApiError> {
    caller.require(crate::domain::role::Right::Configure)?;
    let ApiJson(body) = body?;
    let confirmed =
        meter_identity::confirm_replacement(&state.pool, &caller, DeviceId(id), &body.identity, state.clock.now())
            .await?;
    Ok(Json(confirmed))
}
