//! `POST /api/v1/devices/{id}/load-profile/corrections`: an engineer
//! corrects stored intervals. Each correction is a new version of its
//! interval (source `edited`, flag `edited`, who and why); what was stored
//! before stays on record.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::load_profile::{LoadProfileInterval, configured_interval_minutes, interval};
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::role::Right;
use crate::store::audit::insert_audit;
use crate::store::profile_corrections::{Correction, insert_interval_corrections};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::state::AppState;

/// The most intervals one request may correct: a month of 15-minute
/// intervals of one channel.
const MAX_CORRECTIONS: usize = 3000;

/// A new value for one stored interval.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalCorrection {
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
pub struct CorrectionRequest {
    pub intervals: Vec<IntervalCorrection>,
    /// Why, kept with every new version (required, not blank).
    pub reason: Option<String>,
}

/// The new versions, in the order asked.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"intervals": [
    {"start": "2026-11-22T08:15:00Z", "obis": "1-0:1.8.0", "value": 1.4, "unit": "kWh",
     "flags": ["edited"], "source": "edited", "version": 2}]}))]
pub struct CorrectedIntervals {
    pub intervals: Vec<LoadProfileInterval>,
}

/// Checks the request and turns it into corrections, naming the first
/// field at fault.
fn corrections(request: &CorrectionRequest) -> Result<(Vec<Correction>, &str), ApiError> {
    let reason = request.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(ApiError::invalid("reason", "say why the intervals are corrected"));
    }
    if request.intervals.is_empty() {
        return Err(ApiError::invalid("intervals", "must hold at least one interval"));
    }
    if request.intervals.len() > MAX_CORRECTIONS {
        return Err(ApiError::invalid(
            "intervals",
            format!("at most {MAX_CORRECTIONS} intervals per request"),
        ));
    }
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(request.intervals.len());
    for (i, input) in request.intervals.iter().enumerate() {
        let start = DateTime::parse_from_rfc3339(&input.start)
            .map_err(|_| {
                ApiError::invalid(
                    &format!("intervals[{i}].start"),
                    format!("{:?} is not an RFC 3339 time such as 2026-11-22T08:15:00Z", input.start),
                )
            })?
            .with_timezone(&Utc);
        let obis = input
            .obis
            .parse::<ObisCode>()
            .map_err(|error| ApiError::invalid(&format!("intervals[{i}].obis"), error))?;
        if !input.value.is_finite() {
            return Err(ApiError::invalid(
                &format!("intervals[{i}].value"),
                "must be a finite number",
            ));
        }
        if let Some(first) = seen.insert((obis.clone(), start), i) {
            return Err(ApiError::invalid(
                &format!("intervals[{i}]"),
                format!("corrects the same interval as intervals[{first}]"),
            ));
        }
        out.push(Correction {
            obis,
            start,
            value: input.value,
        });
    }
    Ok((out, reason))
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
pub async fn create_corrections(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<ApiJson<CorrectionRequest>, ApiError>,
) -> Result<Json<CorrectedIntervals>, ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(request) = body?;
    let device = DeviceId(id);
    configured_interval_minutes(&state, device).await?;
    let (corrections, reason) = corrections(&request)?;
    let stored = insert_interval_corrections(&state.pool, device, &corrections, &caller.user, reason)
        .await?
        .map_err(|i| {
            let missing = &corrections[i];
            ApiError::invalid(
                &format!("intervals[{i}]"),
                format!(
                    "no interval of {} starts at {}",
                    missing.obis,
                    missing.start.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                ),
            )
        })?;
    insert_audit(
        &state.pool,
        &caller.user,
        "correct_load_profile",
        &format!("device/{id}"),
        json!({
            "reason": reason,
            "intervals": stored.iter().map(|row| json!({
                "start": row.interval_start,
                "obis": row.obis,
                "value": row.value,
                "version": row.version,
            })).collect::<Vec<_>>(),
        }),
    )
    .await?;
    Ok(Json(CorrectedIntervals {
        intervals: stored.into_iter().map(interval).collect(),
    }))
}
