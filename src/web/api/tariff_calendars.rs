//! `/api/v1/tariff-calendars`: tariff calendars (docs/TARIFFS.md), their
//! versions, and the band of each step of a period.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::load_profile::instant;
use crate::domain::ids::CalendarId;
use crate::domain::role::Right;
use crate::metering::tou::definition::{CalendarDefinition, example};
use crate::service::tariff_calendars::{self, StoredCalendar};
use crate::store::tariff_calendars::{CalendarRow, VersionRow};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// A calendar to create: a preset by name, or a full definition with a name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"preset": "it-arera-f123"}))]
pub(crate) struct NewCalendar {
    /// Unique name; the preset's name when absent with `preset`; required
    /// with `definition`.
    #[schema(min_length = 1)]
    pub name: Option<String>,
    /// `it-arera-f123` (the Italian F1/F2/F3 bands and national holidays,
    /// Europe/Rome) or `a1000-4-rate` (four rates within the Blue Star
    /// A1000's limits).
    pub preset: Option<String>,
    /// A full definition (see the `CalendarDefinition` schema), instead of
    /// a preset.
    pub definition: Option<CalendarDefinition>,
    /// When the first version takes effect (RFC 3339); now when absent. The
    /// first version also applies before it.
    pub effective_from: Option<DateTime<Utc>>,
}

/// A new version of a calendar.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"effective_from": "2027-01-01T00:00:00+01:00", "definition": example()}))]
pub(crate) struct NewVersion {
    /// When it takes effect: after the newest version's `effective_from`.
    /// A passive calendar that becomes active then.
    pub effective_from: DateTime<Utc>,
    pub definition: CalendarDefinition,
}

/// What was created.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1}))]
pub(crate) struct Created {
    pub id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "version": 2}))]
pub(crate) struct CreatedVersion {
    pub id: i64,
    pub version: i32,
}

/// A calendar in a list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CalendarSummary {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// How many versions it has.
    pub versions: i64,
    /// When its newest version takes effect.
    pub latest_effective_from: DateTime<Utc>,
}

impl From<CalendarRow> for CalendarSummary {
    fn from(row: CalendarRow) -> CalendarSummary {
        CalendarSummary {
            id: row.id.0,
            name: row.name,
            created_at: row.created_at,
            versions: row.versions,
            latest_effective_from: row.latest_effective_from,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"calendars": [{"id": 1, "name": "it-arera-f123", "created_at": "2026-12-05T10:00:00Z",
    "versions": 1, "latest_effective_from": "2026-12-05T10:00:00Z"}]}))]
pub(crate) struct CalendarList {
    pub calendars: Vec<CalendarSummary>,
}

/// A calendar with every version, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "plant", "created_at": "2026-12-05T10:00:00Z", "versions": [
    {"version": 1, "effective_from": "2026-01-01T00:00:00Z", "created_at": "2026-12-05T10:00:00Z",
     "created_by": "eng", "definition": example()}]}))]
pub(crate) struct CalendarDetail {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub versions: Vec<CalendarVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CalendarVersion {
    pub version: i32,
    /// From this instant until the next version's, this definition applies.
    pub effective_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[schema(value_type = CalendarDefinition)]
    pub definition: serde_json::Value,
}

impl From<VersionRow> for CalendarVersion {
    fn from(row: VersionRow) -> CalendarVersion {
        CalendarVersion {
            version: row.version,
            effective_from: row.effective_from,
            created_at: row.created_at,
            created_by: row.created_by,
            definition: row.definition,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ClassifyQuery {
    /// Start (inclusive), RFC 3339.
    #[param(required = true)]
    from: Option<String>,
    /// End (exclusive), RFC 3339.
    #[param(required = true)]
    to: Option<String>,
    /// Step of real time, 1–1440 minutes; default 15.
    step_minutes: Option<String>,
}

/// The band of each step.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"intervals": [
    {"start": "2026-01-07T06:45:00Z", "tariff": "F2"},
    {"start": "2026-01-07T07:00:00Z", "tariff": "F1"}]}))]
pub(crate) struct Classification {
    pub intervals: Vec<ClassifiedStep>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClassifiedStep {
    /// The step's start.
    pub start: DateTime<Utc>,
    /// The band in force at the step's start.
    pub tariff: String,
}

/// Create a tariff calendar from a preset or a definition (engineer).
#[utoipa::path(post, path = "/api/v1/tariff-calendars", tag = "tariffs", request_body = NewCalendar,
    responses(
        (status = 201, description = "Created", body = Created),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "An unknown preset, or an invalid definition: the message names \
            every field at fault, e.g. `definition.seasons[1].from: overlaps seasons[0]`", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_calendar(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<NewCalendar>, ApiError>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let ApiJson(new) = body?;
    let id = tariff_calendars::create_calendar(
        &state.pool,
        &caller,
        tariff_calendars::NewCalendar {
            name: new.name,
            preset: new.preset,
            definition: new.definition,
            effective_from: new.effective_from,
        },
        state.clock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(Created { id: id.0 })))
}

/// List the tariff calendars (any role).
#[utoipa::path(get, path = "/api/v1/tariff-calendars", tag = "tariffs",
    responses(
        (status = 200, description = "Every calendar, by id", body = CalendarList),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(crate) async fn list_calendars(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CalendarList>, ApiError> {
    let calendars = tariff_calendars::list_calendars(&state.pool, &caller)
        .await?
        .into_iter()
        .map(CalendarSummary::from)
        .collect();
    Ok(Json(CalendarList { calendars }))
}

/// A tariff calendar with every version (any role).
#[utoipa::path(get, path = "/api/v1/tariff-calendars/{id}", tag = "tariffs",
    params(("id" = i64, Path, description = "Calendar id")),
    responses(
        (status = 200, description = "The calendar", body = CalendarDetail),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn get_calendar(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CalendarDetail>, ApiError> {
    let StoredCalendar { calendar, versions } =
        tariff_calendars::get_calendar(&state.pool, &caller, CalendarId(id)).await?;
    Ok(Json(CalendarDetail {
        id: calendar.id.0,
        name: calendar.name,
        created_at: calendar.created_at,
        versions: versions.into_iter().map(CalendarVersion::from).collect(),
    }))
}

/// Add a version that takes effect at `effective_from` (engineer): from
/// then on, it splits time; before, the earlier versions still do.
#[utoipa::path(post, path = "/api/v1/tariff-calendars/{id}/versions", tag = "tariffs", request_body = NewVersion,
    params(("id" = i64, Path, description = "Calendar id")),
    responses(
        (status = 201, description = "Added", body = CreatedVersion),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "An invalid definition (every field at fault named), or \
            `effective_from` not after the newest version's", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    body: Result<ApiJson<NewVersion>, ApiError>,
) -> Result<(StatusCode, Json<CreatedVersion>), ApiError> {
    // The role first: a request outside it gets 403 whatever its body.
    caller.require(Right::Configure)?;
    let ApiJson(new) = body?;
    let version = tariff_calendars::create_version(
        &state.pool,
        &caller,
        CalendarId(id),
        &new.definition,
        new.effective_from,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedVersion { id, version })))
}

/// The band of each step of real time from `from` to `to` (any role): one
/// entry per step (a 25-hour local day has 100 quarter hours), each with
/// the band in force at the step's start, under the version in force then.
#[utoipa::path(get, path = "/api/v1/tariff-calendars/{id}/classify", tag = "tariffs",
    params(("id" = i64, Path, description = "Calendar id"), ClassifyQuery),
    responses(
        (status = 200, description = "One entry per step", body = Classification),
        (status = 400, description = "from or to missing or not RFC 3339", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 400, description = "A malformed from, to or step_minutes; to not after from, step_minutes \
            outside 1–1440, or more than 527040 steps (a leap year of minutes)", body = ErrorBody),
    ))]
pub(crate) async fn classify(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<ClassifyQuery>,
) -> Result<Json<Classification>, ApiError> {
    let required = |field: &str, at: Option<DateTime<Utc>>| {
        at.ok_or_else(|| ApiError::parameter(field, "is required (RFC 3339, e.g. 2026-01-01T00:00:00+01:00)"))
    };
    let from = required("from", instant("from", query.from.as_deref())?)?;
    let to = required("to", instant("to", query.to.as_deref())?)?;
    let step_minutes = match query.step_minutes.as_deref() {
        None | Some("") => 15,
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::parameter("step_minutes", format!("{text:?} is not a whole number of minutes")))?,
    };
    let steps = tariff_calendars::classify(&state.pool, &caller, CalendarId(id), (from, to), step_minutes)
        .await
        .map_err(ApiError::from_query)?;
    Ok(Json(Classification {
        intervals: steps
            .into_iter()
            .map(|(start, tariff)| ClassifiedStep { start, tariff })
            .collect(),
    }))
}
