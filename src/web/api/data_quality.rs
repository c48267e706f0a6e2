//! `GET /api/v1/devices/{id}/data-quality`: per month in the site's zone,
//! how many of a device's intervals are actual, estimated or missing, and
//! how many a first backfill of its meter's load profile has not reached.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::load_profile::instant;
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::service::data_quality as service;
use crate::store::load_profile_backfill::Backfill as StoredBackfill;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// One local month.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MonthSummary {
    /// The month in the site's zone, `YYYY-MM`.
    #[schema(example = "2026-11")]
    pub month: String,
    /// Complete intervals of the device's length in the month (within the
    /// window), from its first stored interval on: a month with a 23- or
    /// 25-hour day has four quarter hours fewer or more.
    #[schema(example = 2880)]
    pub expected: u64,
    /// Stored and not estimated (read from the meter or derived).
    #[schema(example = 2800)]
    pub actual: u64,
    /// Estimated for a gap: the newest version of a channel has source
    /// `estimated` or the `estimated` flag.
    #[schema(example = 60)]
    pub estimated: u64,
    /// Expected with nothing stored: a gap.
    #[schema(example = 20)]
    pub missing: u64,
    /// Intervals of the month a first backfill of the meter's load profile
    /// (newest first) has not reached yet, or found no record in while it
    /// runs: not counted in `expected`, so
    /// not `missing` either. 0 once the backfill is complete: what is older
    /// than the meter's oldest data was never recorded.
    #[schema(example = 0)]
    pub pending: u64,
    /// Shares of `expected`, rounded to four decimals; 0 when none are expected.
    #[schema(example = 0.9722)]
    pub actual_share: f64,
    #[schema(example = 0.0208)]
    pub estimated_share: f64,
    #[schema(example = 0.0069)]
    pub missing_share: f64,
}

/// The first read of a meter's own load profile, newest first: a chunk at
/// a time from the present back to the profile's `backfill_days`, past
/// stretches without records (docs/OPERATIONS.md), or to where the meter
/// refuses an older range.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"state": "running", "started_at": "2026-12-06T10:00:00Z",
    "depth_limit": "2026-10-27T10:00:00Z", "oldest_reached": "2026-11-30T10:00:00Z", "completed_at": null}))]
pub(crate) struct LoadProfileBackfill {
    /// `running` (older spans are still being read: pending) or `complete`
    /// (the depth limit was reached, or the meter refused an older range).
    #[schema(example = "running")]
    pub state: BackfillState,
    /// When the first chunk was asked for.
    pub started_at: DateTime<Utc>,
    /// The deepest the backfill goes: its start minus the profile's
    /// `backfill_days`.
    pub depth_limit: DateTime<Utc>,
    /// Everything from here to the present has been read from the meter;
    /// while running, `[depth_limit, oldest_reached)` is pending, and up to
    /// the oldest interval stored if the requests since found no record.
    pub oldest_reached: DateTime<Utc>,
    /// When it completed; null while running.
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BackfillState {
    Running,
    Complete,
}

impl From<StoredBackfill> for LoadProfileBackfill {
    fn from(backfill: StoredBackfill) -> LoadProfileBackfill {
        LoadProfileBackfill {
            state: if backfill.completed_at.is_some() {
                BackfillState::Complete
            } else {
                BackfillState::Running
            },
            started_at: backfill.started_at,
            depth_limit: backfill.depth_limit,
            oldest_reached: backfill.oldest_reached,
            completed_at: backfill.completed_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"interval_minutes": 15, "months": [
    {"month": "2026-11", "expected": 2880, "actual": 2800, "estimated": 60, "missing": 20, "pending": 0,
     "actual_share": 0.9722, "estimated_share": 0.0208, "missing_share": 0.0069}],
    "backfill": {"state": "complete", "started_at": "2026-10-20T10:00:00Z",
     "depth_limit": "2026-09-10T10:00:00Z", "oldest_reached": "2026-10-02T10:00:00Z",
     "completed_at": "2026-10-20T10:04:00Z"}}))]
pub(crate) struct DataQuality {
    /// The interval length `expected` is counted on: the meter's own
    /// load-profile period for a meter read over IEC 62056-21, else the
    /// device's configured length.
    pub interval_minutes: i32,
    /// Oldest first; every month the window touches.
    pub months: Vec<MonthSummary>,
    /// The first backfill of the meter's own load profile (IEC 62056-21);
    /// null for a device that never had one (a Modbus device, or a meter
    /// whose profile was stored before backfills went newest first).
    pub backfill: Option<LoadProfileBackfill>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DataQualityQuery {
    /// Start (inclusive), RFC 3339; default the start of the site's month
    /// eleven months before `to`'s (twelve months in all).
    from: Option<String>,
    /// End (exclusive), RFC 3339; default now.
    to: Option<String>,
}

impl From<service::DataQuality> for DataQuality {
    fn from(quality: service::DataQuality) -> DataQuality {
        DataQuality {
            interval_minutes: quality.interval_minutes,
            months: quality
                .months
                .into_iter()
                .map(|month| MonthSummary {
                    month: month.month,
                    expected: month.expected,
                    actual: month.actual,
                    estimated: month.estimated,
                    missing: month.missing,
                    pending: month.pending,
                    actual_share: month.actual_share,
                    estimated_share: month.estimated_share,
                    missing_share: month.missing_share,
                })
                .collect(),
            backfill: quality.backfill.map(LoadProfileBackfill::from),
        }
    }
}

/// A device's data quality: per month in its site's zone, how many of the
/// intervals it should have are actual, estimated or missing.
#[utoipa::path(get, path = "/api/v1/devices/{id}/data-quality", tag = "readings",
    params(("id" = i64, Path, description = "Device id"), DataQualityQuery),
    responses(
        (status = 200, description = "One entry per month the window touches, oldest first", body = DataQuality),
        (status = 400, description = "Invalid from or to, from not before to, or a window over 366 days", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
#[tracing::instrument(skip(state), fields(user = %caller.user))]
pub(crate) async fn get_data_quality(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DataQualityQuery>,
) -> Result<Json<DataQuality>, ApiError> {
    caller.require(Right::Read)?;
    let to = instant("to", query.to.as_deref())?;
    let from = instant("from", query.from.as_deref())?;
    let quality = service::data_quality(
        &state.pool,
        &state.profiles,
        &caller,
        DeviceId(id),
        (from, to),
        state.clock.now(),
    )
    .await
    .map_err(ApiError::from_query)?;
    Ok(Json(quality.into()))
}
