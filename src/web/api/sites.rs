//! Sites: `POST /api/v1/sites` creates one (engineer); `GET /api/v1/sites`
//! lists them with their billing schedule; `PATCH /api/v1/sites/{id}` lets
//! an engineer rename a site, set the schedule at which the server closes
//! billing periods for meters that keep no history, the site's time zone,
//! its balance threshold, its TOU audit tolerance and its meters' daily
//! clock synchronisation. The zone is `time_zone` or, as create
//! requests usually spell it, `timezone`, in both bodies.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::{CalendarId, SiteId};
use crate::domain::role::Right;
use crate::service::sites::ClockSync;
use crate::service::{sites, tariff_calendars};
use crate::store::billing_schedule::SiteRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// A site and its billing schedule (local time in its zone).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "Default", "time_zone": "Europe/Paris", "billing_day": 1, "billing_hour": 0,
    "balance_threshold_percent": 5.0, "tou_tolerance_percent": 1.0, "default_calendar_id": null,
    "clock_sync": {"enabled": false, "at": "03:00", "min_drift_s": 1}}))]
pub(crate) struct Site {
    pub id: i64,
    pub name: String,
    /// IANA zone the schedule and derived intervals follow.
    pub time_zone: String,
    /// Day of the month (1–28) the server closes billing periods; null: none.
    pub billing_day: Option<i16>,
    /// Hour (0–23, local) of that day; null when there is no schedule.
    pub billing_hour: Option<i16>,
    /// Share of a parent meter's energy its sub-meters may leave unmetered
    /// before a balance raises `balance_mismatch`, in percent (default 5).
    #[schema(example = 5.0)]
    pub balance_threshold_percent: f64,
    /// How far a meter's own tariff register may differ from the server's
    /// split of a billing period before the TOU audit raises
    /// `tou_mismatch`, in percent of the period's energy (default 1).
    #[schema(example = 1.0)]
    pub tou_tolerance_percent: f64,
    /// The tariff calendar its statements use unless one is named; null: none.
    pub default_calendar_id: Option<i64>,
    /// The daily clock synchronisation of its meters.
    pub clock_sync: ClockSyncBody,
}

/// A site's daily clock synchronisation: while enabled, once a day at `at`
/// (local, in the site's zone) the server queues a `set_clock` for each of
/// its meters that takes one and whose clock was last read at least
/// `min_drift_s` seconds off; at most one a meter a local day.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"enabled": true, "at": "03:10", "min_drift_s": 1}))]
pub(crate) struct ClockSyncBody {
    pub enabled: bool,
    /// Local time `HH:MM`; one the spring DST change skips comes when the
    /// gap ends, one the autumn change repeats at its first occurrence.
    #[schema(example = "03:10")]
    pub at: String,
    /// Smallest drift, in seconds, that gets a meter's clock set.
    #[schema(example = 1)]
    pub min_drift_s: i32,
}

impl From<ClockSync> for ClockSyncBody {
    fn from(sync: ClockSync) -> ClockSyncBody {
        ClockSyncBody {
            enabled: sync.enabled,
            at: sync.at.format("%H:%M").to_string(),
            min_drift_s: sync.min_drift_s,
        }
    }
}

/// A change of a site's clock synchronisation; fields left out keep their
/// value (a new site's: disabled, 03:00, 1 s).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "at": "03:10", "min_drift_s": 1}))]
pub(crate) struct ClockSyncChange {
    pub enabled: Option<bool>,
    /// Local time `HH:MM`, 00:00-23:59.
    pub at: Option<String>,
    /// Seconds, 0-86400.
    pub min_drift_s: Option<i64>,
}

impl From<SiteRow> for Site {
    fn from(row: SiteRow) -> Site {
        Site {
            id: row.id.0,
            name: row.name,
            time_zone: row.time_zone.to_string(),
            billing_day: row.billing_day,
            billing_hour: row.billing_hour,
            balance_threshold_percent: row.balance_threshold_percent,
            tou_tolerance_percent: row.tou_tolerance_percent,
            default_calendar_id: None,
            clock_sync: ClockSync::default().into(),
        }
    }
}

/// Every site.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"sites": [{"id": 1, "name": "Default", "time_zone": "UTC", "billing_day": null, "billing_hour": null,
    "balance_threshold_percent": 5.0, "tou_tolerance_percent": 1.0, "default_calendar_id": null,
    "clock_sync": {"enabled": false, "at": "03:00", "min_drift_s": 1}}]}))]
pub(crate) struct SiteList {
    pub sites: Vec<Site>,
}

/// A site to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Plant A", "timezone": "Europe/Rome"}))]
pub(crate) struct NewSite {
    /// Unique among sites.
    #[schema(example = "Plant A", min_length = 1)]
    pub name: String,
    /// IANA zone, e.g. `Europe/Rome`; required. Also accepted as `timezone`.
    #[serde(alias = "timezone")]
    #[schema(example = "Europe/Rome", value_type = String, required = true, min_length = 1)]
    pub time_zone: Option<String>,
    /// Billing day of the month, 1–28, with `billing_hour`; default none.
    #[schema(minimum = 1, maximum = 28)]
    pub billing_day: Option<i64>,
    /// Local hour, 0–23, with `billing_day`.
    #[schema(minimum = 0, maximum = 23)]
    pub billing_hour: Option<i64>,
    /// Percent above 0 and at most 100; default 5.
    #[schema(example = 5.0)]
    pub balance_threshold_percent: Option<f64>,
}

/// What to change. The billing schedule: both fields, or both null to
/// remove it (in a body with no other field). A body that names neither
/// schedule field but another one leaves the schedule as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"billing_day": 1, "billing_hour": 0}))]
pub(crate) struct SiteChange {
    /// A new name, unique among sites.
    #[schema(min_length = 1)]
    pub name: Option<String>,
    /// Day of the month, 1–28 (every month has it); null removes the schedule.
    #[schema(minimum = 1, maximum = 28)]
    pub billing_day: Option<i64>,
    /// Local hour, 0–23; a skipped DST hour closes at the end of the gap, a
    /// repeated one at its first occurrence.
    #[schema(minimum = 0, maximum = 23)]
    pub billing_hour: Option<i64>,
    /// IANA zone the schedule, derived intervals and months follow, e.g.
    /// `Europe/Paris`; a name not in the IANA database is refused. Also
    /// accepted as `timezone`.
    #[serde(alias = "timezone")]
    #[schema(example = "Europe/Paris")]
    pub time_zone: Option<String>,
    /// Percent above 0 and at most 100.
    pub balance_threshold_percent: Option<f64>,
    /// The TOU audit's tolerance: percent of a billing period's energy by
    /// which a tariff register may differ from the server's split; above 0
    /// and at most 100 (default 1).
    #[schema(example = 0.5)]
    pub tou_tolerance_percent: Option<f64>,
    /// The tariff calendar statements use by default; null clears it, absent
    /// leaves it. An unknown calendar is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, example = 1)]
    pub default_calendar_id: Option<Option<i64>>,
    /// The daily clock synchronisation of its meters.
    pub clock_sync: Option<ClockSyncChange>,
}

/// Tells a field sent as null (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(deserializer).map(Some)
}

/// Create a site (engineer).
#[utoipa::path(post, path = "/api/v1/sites", tag = "sites", request_body = NewSite,
    responses(
        (status = 201, description = "Created", body = Site),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 409, description = "Another site has this name (the message names `name`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (a zone not in the IANA database: `time_zone`); the message names it", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_site(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<NewSite>, ApiError>,
) -> Result<(StatusCode, Json<Site>), ApiError> {
    caller.require(Right::Configure)?;
    let ApiJson(new) = body?;
    let row = sites::create_site(
        &state.pool,
        &caller,
        &sites::NewSite {
            name: &new.name,
            time_zone: new.time_zone.as_deref(),
            billing_day: new.billing_day,
            billing_hour: new.billing_hour,
            balance_threshold_percent: new.balance_threshold_percent,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(Site::from(row))))
}

/// One site.
#[utoipa::path(get, path = "/api/v1/sites/{id}", tag = "sites",
    params(("id" = i64, Path, description = "Site id")),
    responses(
        (status = 200, body = Site),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn get_site(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Site>, ApiError> {
    let row = sites::get_site(&state.pool, &caller, SiteId(id)).await?;
    let calendar = tariff_calendars::site_calendar(&state.pool, row.id).await?;
    let sync = sites::site_clock_sync(&state.pool, &caller, row.id).await?;
    Ok(Json(Site {
        default_calendar_id: calendar.map(|c| c.0),
        clock_sync: sync.into(),
        ..Site::from(row)
    }))
}

/// List the sites and their billing schedules (viewer).
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites",
    responses(
        (status = 200, description = "Every site", body = SiteList),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(crate) async fn list_sites(State(state): State<AppState>, caller: Caller) -> Result<Json<SiteList>, ApiError> {
    let calendars = tariff_calendars::site_calendars(&state.pool).await?;
    let syncs = sites::site_clock_syncs(&state.pool, &caller).await?;
    let sites = sites::list_sites(&state.pool, &caller)
        .await?
        .into_iter()
        .map(|row| {
            let calendar = calendars.get(&row.id).map(|c| c.0);
            let sync = syncs.get(&row.id).copied().unwrap_or_default();
            Site {
                default_calendar_id: calendar,
                clock_sync: sync.into(),
                ..Site::from(row)
            }
        })
        .collect();
    Ok(Json(SiteList { sites }))
}

/// Rename a site, set or remove its billing schedule, set its time zone,
/// its balance threshold, its TOU audit tolerance or its default tariff
/// calendar (engineer).
/// Meters that keep no history of their own get a server-closed billing
/// period at each instant of the schedule, local in the site's zone.
#[utoipa::path(patch, path = "/api/v1/sites/{id}", tag = "sites", request_body = SiteChange,
    params(("id" = i64, Path, description = "Site id")),
    responses(
        (status = 200, description = "Changed", body = Site),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Another site has this name (the message names `name`)", body = ErrorBody),
        (status = 422, description = "A field is invalid; the message names it", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn update_site(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
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
            name: change.name.as_deref(),
            balance_threshold_percent: change.balance_threshold_percent,
            tou_tolerance_percent: change.tou_tolerance_percent,
            default_calendar_id: change.default_calendar_id.map(|id| id.map(CalendarId)),
            clock_sync: change.clock_sync.as_ref().map(|sync| sites::ClockSyncChange {
                enabled: sync.enabled,
                at: sync.at.as_deref(),
                min_drift_s: sync.min_drift_s,
            }),
        },
    )
    .await?;
    let calendar = tariff_calendars::site_calendar(&state.pool, row.id).await?;
    let sync = sites::site_clock_sync(&state.pool, &caller, row.id).await?;
    Ok(Json(Site {
        default_calendar_id: calendar.map(|c| c.0),
        clock_sync: sync.into(),
        ..Site::from(row)
    }))
}
