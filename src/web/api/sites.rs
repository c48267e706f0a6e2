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
use crate::domain::zone::IanaZone;
use crate::store::audit::insert_audit;
use crate::store::billing_schedule::{SiteRow, fetch_sites, update_site_schedule, update_site_zone};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::state::AppState;

/// A site and its billing schedule (local time in its zone).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "Default", "time_zone": "Europe/Paris", "billing_day": 1, "billing_hour": 0}))]
pub struct Site {
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
pub struct SiteList {
    pub sites: Vec<Site>,
}

/// The billing schedule to set: both fields, or both null to remove it;
/// and, optionally, the site's zone. A body with only `time_zone` leaves
/// the schedule as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"billing_day": 1, "billing_hour": 0}))]
pub struct SiteChange {
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
pub async fn list_sites(State(state): State<AppState>, caller: Caller) -> Result<Json<SiteList>, ApiError> {
    caller.require(Right::Read)?;
    let sites = fetch_sites(&state.pool).await?.into_iter().map(Site::from).collect();
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
pub async fn update_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    body: Result<ApiJson<SiteChange>, ApiError>,
) -> Result<Json<Site>, ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(change) = body?;
    let zone = match change.time_zone.as_deref() {
        Some(text) => Some(
            text.parse::<IanaZone>()
                .map_err(|error| ApiError::invalid("time_zone", error))?,
        ),
        None => None,
    };
    let only_zone = zone.is_some() && change.billing_day.is_none() && change.billing_hour.is_none();
    let schedule = schedule(&change)?;
    let id = SiteId(id);
    let missing = || ApiError::not_found(format!("no site {id}"));
    let mut detail = serde_json::Map::new();
    if let Some(zone) = zone {
        update_site_zone(&state.pool, id, zone).await?.ok_or_else(missing)?;
        detail.insert("time_zone".into(), zone.name().into());
    }
    let row = if only_zone {
        fetch_sites(&state.pool)
            .await?
            .into_iter()
            .find(|site| site.id == id)
            .ok_or_else(missing)?
    } else {
        let row = update_site_schedule(&state.pool, id, schedule)
            .await?
            .ok_or_else(missing)?;
        detail.insert("billing_day".into(), row.billing_day.into());
        detail.insert("billing_hour".into(), row.billing_hour.into());
        row
    };
    insert_audit(
        &state.pool,
        &caller.user,
        "update_site",
        &format!("site/{id}"),
        serde_json::Value::Object(detail),
    )
    .await?;
    Ok(Json(Site::from(row)))
}

/// Checks the schedule: both or neither, each in range.
fn schedule(change: &SiteChange) -> Result<Option<(i16, i16)>, ApiError> {
    match (change.billing_day, change.billing_hour) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::invalid("billing_hour", "is required with billing_day")),
        (None, Some(_)) => Err(ApiError::invalid("billing_day", "is required with billing_hour")),
        (Some(day), Some(hour)) => {
            let day = i16::try_from(day)
                .ok()
                .filter(|d| (1..=28).contains(d))
                .ok_or_else(|| ApiError::invalid("billing_day", "must be 1 to 28"))?;
            let hour = i16::try_from(hour)
                .ok()
                .filter(|h| (0..=23).contains(h))
                .ok_or_else(|| ApiError::invalid("billing_hour", "must be 0 to 23"))?;
            Ok(Some((day, hour)))
        }
    }
}
