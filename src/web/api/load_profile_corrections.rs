//! `POST /api/v1/devices/{id}/load-profile/corrections`: an engineer
//! corrects stored intervals. Each correction is a new version of its
//! interval (source `edited`, flag `edited`, who and why); what was stored
//! before stays on record.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::load_profile::{LoadProfileInterval, interval};
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::service::load_profile_corrections as service;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// A new value for one stored interval.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntervalCorrection {
    /// Start of a stored interval, RFC 3339.
    #[schema(example = "2026-11-22T08:15:00Z")]
    pub start: String,
    #[schema(example = "1-0:1.8.0")]
    pub obis: String,
    /// The corrected value, in the interval's unit.
    #[schema(example = 1.4)]
    pub value: f64,
}

/// Intervals to correct and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"intervals": [
    {"start": "2026-11-22T08:15:00Z", "obis": "1-0:1.8.0", "value": 1.4},
    {"start": "2026-11-22T08:30:00Z", "obis": "1-0:1.8.0", "value": 1.3}],
    "reason": "check meter read on site: estimate replaced"}))]
pub(crate) struct CorrectionRequest {
    pub intervals: Vec<IntervalCorrection>,
    /// Why, kept with every new version (required, not blank).
    pub reason: Option<String>,
}

/// The new versions, in the order asked.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"intervals": [
    {"start": "2026-11-22T08:15:00Z", "obis": "1-0:1.8.0", "value": 1.4, "unit": "kWh",
     "flags": ["edited"], "source": "edited", "version": 2}]}))]
pub(crate) struct CorrectedIntervals {
    pub intervals: Vec<LoadProfileInterval>,
}

/// Correct stored intervals (engineer): each becomes a new version with
/// source `edited` and flag `edited`, changed by the caller, with the
/// reason given; the load profile shows the newest version. All or none:
/// one interval that is not stored refuses the whole request. Audited.
#[utoipa::path(post, path = "/api/v1/devices/{id}/load-profile/corrections", tag = "readings",
    request_body = CorrectionRequest,
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 200, description = "The new version of each interval, in the order asked", body = CorrectedIntervals),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 422, description = "A missing or blank reason, no intervals, a bad start, OBIS code or value, \
            the same interval twice, or an interval that is not stored; the message names it \
            (e.g. `intervals[2]: no interval of 1-0:1.8.0 starts at 2026-11-22T08:15:00Z`)", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_corrections(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    body: Result<ApiJson<CorrectionRequest>, ApiError>,
) -> Result<Json<CorrectedIntervals>, ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(request) = body?;
    let intervals: Vec<service::IntervalCorrection> = request
        .intervals
        .into_iter()
        .map(|input| service::IntervalCorrection {
            start: input.start,
            obis: input.obis,
            value: input.value,
        })
        .collect();
    let stored = service::correct_load_profile(
        &state.pool,
        &caller,
        DeviceId(id),
        &intervals,
        request.reason.as_deref(),
    )
    .await?;
    Ok(Json(CorrectedIntervals {
        intervals: stored.into_iter().map(interval).collect(),
    }))
}
