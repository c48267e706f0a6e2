//! `/api/v1/buses/{id}/scan` and `/api/v1/scans/{id}`: which addresses answer on a bus.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::jobs::idempotency_key;
use crate::domain::ids::BusId;
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::service::jobs::{self, ScanRequest};
use crate::store::scans::{Found, ScanRow};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// The addresses to probe.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"first_address": 1, "last_address": 20}))]
pub(crate) struct NewScan {
    /// First unit address, 1–247 (default 1).
    pub first_address: Option<i64>,
    /// Last unit address, 1–247 (default 247).
    pub last_address: Option<i64>,
}

/// A scan job and what it found so far.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 3, "bus_id": 1, "first_address": 1, "last_address": 20, "state": "running",
    "probed": 7, "total": 20, "found": [{"address": 3, "profiles": ["th40c"]}], "error": null,
    "requested_by": "commissioning", "created_at": "2026-11-22T08:00:00Z", "finished_at": null}))]
pub(crate) struct Scan {
    pub id: i64,
    pub bus_id: i64,
    pub first_address: i16,
    pub last_address: i16,
    pub state: JobState,
    /// Addresses probed so far, out of `total`.
    pub probed: i32,
    pub total: i32,
    /// Addresses that answered, with the profiles whose identification fits.
    pub found: Vec<Found>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<ScanRow> for Scan {
    fn from(row: ScanRow) -> Scan {
        Scan {
            id: row.id,
            bus_id: row.bus_id.0,
            total: i32::from(row.last_address) - i32::from(row.first_address) + 1,
            first_address: row.first_address,
            last_address: row.last_address,
            state: row.state,
            probed: row.probed,
            found: row.found.0,
            error: row.error,
            requested_by: row.requested_by,
            created_at: row.created_at,
            finished_at: row.finished_at,
        }
    }
}

/// Starts a scan of the bus (engineer). The bus's worker probes each address
/// in the time its scheduled reads leave free; follow progress with `GET /api/v1/scans/{id}`.
/// The job waits in the database until the bus's worker takes it.
#[utoipa::path(post, path = "/api/v1/buses/{id}/scan", tag = "buses", request_body = NewScan,
    params(("id" = i64, Path, description = "Bus id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]([ -~]*[!-~])?$", description = "Queue at most one job per key (1-200 characters)")),
    responses(
        (status = 202, description = "Scan queued", body = Scan),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Address out of range, a malformed Idempotency-Key", body = ErrorBody),
    ))]
pub(crate) async fn create_scan(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    body: Result<ApiJson<NewScan>, ApiError>,
) -> Result<(StatusCode, Json<Scan>), ApiError> {
    // The role first: a request outside it gets 403 whatever its body.
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    let key = idempotency_key(&headers)?;
    let request = ScanRequest {
        first_address: body.first_address,
        last_address: body.last_address,
    };
    let row = jobs::start_scan(&state.pool, &caller, key, BusId(id), request).await?;
    Ok((StatusCode::ACCEPTED, Json(row.into())))
}

/// A scan's progress and findings.
#[utoipa::path(get, path = "/api/v1/scans/{id}", tag = "buses",
    params(("id" = i64, Path, description = "Scan id")),
    responses((status = 200, body = Scan), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_scan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Scan>, ApiError> {
    let row = jobs::get_scan(&state.pool, &caller, id).await?;
    Ok(Json(row.into()))
}
