//! `/api/v1/virtual-meters`: a named sum or difference of devices of one
//! site. Its id is usable as a device id in load-profile (and statement)
//! requests: the ids never collide (docs/SITES.md).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::ids::{DeviceId, SiteId, VirtualMeterId};
use crate::domain::role::Right;
use crate::service::virtual_meters::{self, Term};
use crate::store::virtual_meters::VirtualMeterRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// One term: a device, added (`1`) or subtracted (`-1`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"device_id": 3, "sign": 1}))]
pub(crate) struct VirtualMeterTerm {
    /// A device of the virtual meter's site (not another virtual meter).
    pub device_id: i64,
    /// `1` adds the device's intervals, `-1` subtracts them.
    pub sign: i64,
}

/// A virtual meter to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Unmetered loads", "site_id": 1,
    "terms": [{"device_id": 3, "sign": 1}, {"device_id": 4, "sign": -1}]}))]
pub(crate) struct NewVirtualMeter {
    /// Unique on its site.
    #[schema(min_length = 1)]
    pub name: String,
    pub site_id: i64,
    /// At least one; each device once.
    pub terms: Vec<VirtualMeterTerm>,
    /// The device upstream of it in the site's tree, if it is to count as a
    /// sub-meter in the site's balance.
    pub parent_device_id: Option<i64>,
}

/// A virtual meter.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "name": "Unmetered loads", "site_id": 1, "parent_device_id": null,
    "terms": [{"device_id": 3, "sign": 1}, {"device_id": 4, "sign": -1}], "created_at": "2026-12-05T10:00:00Z"}))]
pub(crate) struct VirtualMeter {
    /// From the devices' id sequence: never a device's id.
    pub id: i64,
    pub name: String,
    pub site_id: i64,
    pub parent_device_id: Option<i64>,
    pub terms: Vec<VirtualMeterTerm>,
    pub created_at: DateTime<Utc>,
}

impl From<VirtualMeterRow> for VirtualMeter {
    fn from(row: VirtualMeterRow) -> VirtualMeter {
        VirtualMeter {
            id: row.id.0,
            name: row.name,
            site_id: row.site_id.0,
            parent_device_id: row.parent_device_id.map(|parent| parent.0),
            terms: row
                .term_devices
                .iter()
                .zip(&row.term_signs)
                .map(|(device, sign)| VirtualMeterTerm {
                    device_id: device.0,
                    sign: i64::from(*sign),
                })
                .collect(),
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VirtualMeterList {
    pub virtual_meters: Vec<VirtualMeter>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VirtualMeterQuery {
    /// Only the virtual meters of this site.
    site_id: Option<i64>,
}

/// Create a virtual meter (engineer).
#[utoipa::path(post, path = "/api/v1/virtual-meters", tag = "sites", request_body = NewVirtualMeter,
    responses(
        (status = 201, description = "Created", body = VirtualMeter),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 409, description = "Its site has a virtual meter of this name", body = ErrorBody),
        (status = 422, description = "A field is invalid; the message names it, e.g. `terms[1].device_id`", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_virtual_meter(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<NewVirtualMeter>, ApiError>,
) -> Result<(StatusCode, Json<VirtualMeter>), ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(new) = body?;
    let terms: Vec<Term> = new
        .terms
        .iter()
        .map(|term| Term {
            device_id: term.device_id,
            sign: term.sign,
        })
        .collect();
    let row = virtual_meters::create_virtual_meter(
        &state.pool,
        &caller,
        &virtual_meters::NewVirtualMeter {
            name: &new.name,
            site_id: SiteId(new.site_id),
            parent_device_id: new.parent_device_id.map(DeviceId),
            terms: &terms,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(VirtualMeter::from(row))))
}

/// Every virtual meter, or those of one site.
#[utoipa::path(get, path = "/api/v1/virtual-meters", tag = "sites", params(VirtualMeterQuery),
    responses((status = 200, body = VirtualMeterList), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_virtual_meters(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<VirtualMeterQuery>,
) -> Result<Json<VirtualMeterList>, ApiError> {
    let rows = virtual_meters::list_virtual_meters(&state.pool, &caller, query.site_id.map(SiteId))
        .await
        .map_err(ApiError::from_query)?;
    Ok(Json(VirtualMeterList {
        virtual_meters: rows.into_iter().map(VirtualMeter::from).collect(),
    }))
}

/// One virtual meter.
#[utoipa::path(get, path = "/api/v1/virtual-meters/{id}", tag = "sites",
    params(("id" = i64, Path, description = "Virtual meter id")),
    responses((status = 200, body = VirtualMeter), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_virtual_meter(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<VirtualMeter>, ApiError> {
    let row = virtual_meters::get_virtual_meter(&state.pool, &caller, VirtualMeterId(id)).await?;
    Ok(Json(VirtualMeter::from(row)))
}
