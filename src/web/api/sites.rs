//! Sites: `GET /api/v1/sites` lists them with their billing schedule;
//! `PATCH /api/v1/sites/{id}` lets an engineer set the schedule at which the
//! server closes billing periods for meters that keep no history, and the
//! site's time zone.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::SiteId;
use crate::domain::role::Right;
use crate::service::sites;
use crate::store::billing_schedule::SiteRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::state::AppState;

/// A site and its billing schedule (local time in its zone).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "Default", "time_zone": "Europe/Paris", "billing_day": 1, "billing_hour": 0}))]
pub(crate) struct Site {
    pub id: i64,
    pub name: String,
    /// IANA zone the schedule and derived intervals follow.
    pub time_zone: String,
    /// Day of the month (1–28) the server closes billing periods; null: none.
    pub billing_day: Option<i16>,
    /// Hour (0–23, local) of that day; null when there is no schedule.
    pub billing_hour: Option<i16>,
}

impl From<SiteRow> for Site {
    fn from(row: SiteRow) -> Site {
        Site {
            id: row.id.0,
            name: row.name,
            time_zone: row.time_zone.to_string(),
            billing_day: row.billing_day,
            billing_hour: row.billing_hour,
        }
    }
}

/// Every site.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"sites": [{"id": 1, "name": "Default", "time_zone": "UTC", "billing_day": null, "billing_hour": null}]}))]
pub(crate) struct SiteList {
    pub sites: Vec<Site>,
}

/// The billing schedule to set: both fields, or both null to remove it;
/// and, optionally, the site's zone. A body with only `time_zone` leaves
/// the schedule as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"billing_day": 1, "billing_hour": 0}))]
pub(crate) struct SiteChange {
    /// Day of the month, 1–28 (every month has it); null removes the schedule.
    pub billing_day: Option<i64>,
    /// Local hour, 0–23; a skipped DST hour closes at the end of the gap, a
    /// repeated one at its first occurrence.
    pub billing_hour: Option<i64>,
    /// IANA zone the schedule, derived intervals and months follow, e.g.
    /// `Europe/Paris`; a name not in the IANA database is refused.
    #[schema(example = "Europe/Paris")]
    pub time_zone: Option<String>,
}

/// List the sites and their billing schedules (viewer).
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites",
    responses(
        (status = 200, description = "Every site", body = SiteList),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(crate) async fn list_sites(State(state): State<AppState>, caller: Caller) -> Result<Json<SiteList>, ApiError> {
    let sites = sites::list_sites(&state.pool, &caller)
        .await?
        .into_iter()
        .map(Site::from)
        .collect();
    Ok(Json(SiteList { sites }))
}

/// Set or remove a site's billing schedule, or set its time zone (engineer).
/// Meters that keep no history of their own get a server-closed billing
/// period at each instant of the schedule, local in the site's zone.
#[utoipa::path(patch, path = "/api/v1/sites/{id}", tag = "sites", request_body = SiteChange,
    params(("id" = i64, Path, description = "Site id")),
    responses(
        (status = 200, description = "Changed", body = Site),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A field is invalid; the message names it", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn update_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<ApiJson<SiteChange>, ApiError>,
) -> Result<Json<Site>, ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(change) = body?;
    let row = sites::update_site(
        &state.pool,
        &caller,
        SiteId(id),
        sites::SiteChange {
            billing_day: change.billing_day,
            billing_hour: change.billing_hour,
            time_zone: change.time_zone.as_deref(),
        },
    )
    .await?;
    Ok(Json(Site::from(row)))
}
