//! `GET /api/v1/devices/{id}/load-profile/versions`: every version of one
//! interval, oldest first, with who changed it and why: how a value shown
//! came to be.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::load_profile::bad;
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::role::Right;
use crate::service::load_profile;
use crate::store::profile_corrections::IntervalVersion;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionsQuery {
    /// The interval's channel, e.g. `1-0:1.8.0`.
    #[param(required = true)]
    obis: Option<String>,
    /// The interval's start, RFC 3339.
    #[param(required = true)]
    start: Option<String>,
}

/// One version of an interval.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Version {
    pub version: i32,
    pub value: f64,
    #[schema(example = "kWh")]
    pub unit: String,
    pub flags: Vec<&'static str>,
    /// `meter`, `derived`, `estimated` or `edited`.
    pub source: String,
    /// Who stored this version: `meter` for a meter value replacing an
    /// estimate, the token's name for a correction; null for version 1.
    pub changed_by: Option<String>,
    pub reason: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"versions": [
    {"version": 1, "value": 1.2, "unit": "kWh", "flags": ["estimated"], "source": "estimated",
     "changed_by": null, "reason": null, "recorded_at": "2026-11-22T12:00:02Z"},
    {"version": 2, "value": 1.4, "unit": "kWh", "flags": ["edited"], "source": "edited",
     "changed_by": "alice", "reason": "check meter read on site", "recorded_at": "2026-11-23T09:10:00Z"}]}))]
pub(crate) struct IntervalVersions {
    /// Oldest first; the last is what the load profile shows.
    pub versions: Vec<Version>,
}

fn version(row: IntervalVersion) -> Version {
    Version {
        version: row.version,
        value: row.value,
        unit: row.unit.to_string(),
        flags: row.quality.names(),
        source: row.source.to_string(),
        changed_by: row.changed_by,
        reason: row.reason,
        recorded_at: row.recorded_at,
    }
}

/// Every version of one interval (viewer): what was first stored and each
/// correction or meter value after it, with who and why.
#[utoipa::path(get, path = "/api/v1/devices/{id}/load-profile/versions", tag = "readings",
    params(("id" = i64, Path, description = "Device id"), VersionsQuery),
    responses(
        (status = 200, description = "The interval's versions, oldest first", body = IntervalVersions),
        (status = 400, description = "A missing or malformed obis or start, named", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such device, or no interval stored there", body = ErrorBody),
    ))]
pub(crate) async fn get_interval_versions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<VersionsQuery>,
) -> Result<Json<IntervalVersions>, ApiError> {
    caller.require(Right::Read)?;
    let obis = match query.obis.as_deref() {
        None | Some("") => return Err(bad("obis", "is required, e.g. obis=1-0:1.8.0")),
        Some(text) => text.parse::<ObisCode>().map_err(|error| bad("obis", error))?,
    };
    let start = match query.start.as_deref() {
        None | Some("") => return Err(bad("start", "is required, e.g. start=2026-11-22T08:15:00Z")),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|_| {
                bad(
                    "start",
                    format!("{text:?} is not an RFC 3339 time such as 2026-11-22T08:15:00Z"),
                )
            })?
            .with_timezone(&Utc),
    };
    let rows = load_profile::interval_versions(&state.pool, &caller, DeviceId(id), &obis, start)
        .await
        .map_err(ApiError::from_query)?;
    Ok(Json(IntervalVersions {
        versions: rows.into_iter().map(version).collect(),
    }))
}
