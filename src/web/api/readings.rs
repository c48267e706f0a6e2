//! `/api/v1/devices/{id}/registers` and `/readings`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::role::Right;
use crate::service::readings::{self, ReadingsWindow};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// Latest value of one OBIS code.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Register {
    #[schema(example = "1-1:1.8.0")]
    pub obis: String,
    #[schema(example = 12345.67)]
    pub value: f64,
    #[schema(example = "kWh")]
    pub unit: String,
    pub read_at: DateTime<Utc>,
    /// When the device captured the value, where it says (maximum demand time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"device_id": 1, "registers": [{"obis": "1-1:1.8.0", "value": 12345.67, "unit": "kWh", "read_at": "2026-11-22T08:00:00Z"}]}))]
pub(crate) struct Registers {
    pub device_id: i64,
    pub registers: Vec<Register>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReadingPoint {
    pub read_at: DateTime<Utc>,
    pub value: f64,
}

/// One page of readings. Pass `next` as `cursor` to get the following page;
/// it is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"readings": [{"read_at": "2026-11-22T08:00:00Z", "value": 12345.67}], "next": null}))]
pub(crate) struct Readings {
    pub readings: Vec<ReadingPoint>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadingsQuery {
    /// OBIS code, e.g. `1-1:1.8.0`.
    #[param(required = true)]
    obis: Option<String>,
    /// Start (inclusive), RFC 3339.
    from: Option<String>,
    /// End (exclusive), RFC 3339.
    to: Option<String>,
    /// The `next` value of the previous page.
    cursor: Option<String>,
    /// Page size, 1–10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
}

fn instant(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::parameter(
                    field,
                    format!("{text:?} is not an RFC 3339 time such as 2026-11-22T08:00:00Z"),
                )
            })
    })
    .transpose()
}

/// Latest value per OBIS code.
#[utoipa::path(get, path = "/api/v1/devices/{id}/registers", tag = "readings",
    params(("id" = i64, Path, description = "Device id")),
    responses((status = 200, body = Registers), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_registers(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Registers>, ApiError> {
    let registers = readings::latest_registers(&state.pool, &caller, DeviceId(id))
        .await?
        .into_iter()
        .map(|r| Register {
            obis: r.obis.to_string(),
            value: r.value,
            unit: r.unit.to_string(),
            read_at: r.read_at,
            captured_at: r.captured_at,
        })
        .collect();
    Ok(Json(Registers {
        device_id: id,
        registers,
    }))
}

/// Readings of one OBIS code over time, oldest first, paged.
#[utoipa::path(get, path = "/api/v1/devices/{id}/readings", tag = "readings",
    params(("id" = i64, Path, description = "Device id"), ReadingsQuery),
    responses((status = 200, body = Readings), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 400, description = "Missing or invalid obis, from, to, cursor or limit (`invalid_parameter`)", body = ErrorBody)))]
pub(crate) async fn get_readings(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<ReadingsQuery>,
) -> Result<Json<Readings>, ApiError> {
    caller.require(Right::Read)?;
    let obis = query
        .obis
        .as_deref()
        .ok_or_else(|| ApiError::parameter("obis", "is required, e.g. obis=1-1:1.8.0"))?;
    let obis: ObisCode = obis.parse().map_err(|error| ApiError::parameter("obis", error))?;
    let from = instant("from", query.from.as_deref())?;
    let to = instant("to", query.to.as_deref())?;
    let after = instant("cursor", query.cursor.as_deref())?;
    let window = ReadingsWindow {
        obis,
        from,
        to,
        after,
        limit: query.limit,
    };
    let page = readings::readings_page(&state.pool, &caller, DeviceId(id), &window)
        .await
        .map_err(ApiError::from_query)?;
    let readings = page
        .readings
        .into_iter()
        .map(|r| ReadingPoint {
            read_at: r.read_at,
            value: r.value,
        })
        .collect();
    Ok(Json(Readings {
        readings,
        next: page.next,
    }))
}
