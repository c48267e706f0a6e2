//! `GET /api/v1/devices/{id}/data-quality`: per month in the site's zone,
//! how many of a device's intervals are actual, estimated or missing.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

use super::load_profile::{bad, instant};
use crate::device::registry::ProfileSet;
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::metering::data_quality::{MonthQuality, summarize};
use crate::metering::register_deltas::day_start;
use crate::store::StoreError;
use crate::store::data_quality::{fetch_interval_starts, fetch_quality_device};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::state::AppState;

/// The longest window one request may ask for (a year and a day).
const MAX_DAYS: i64 = 366;

/// One local month.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonthSummary {
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
    /// Expected with nothing stored.
    #[schema(example = 20)]
    pub missing: u64,
    /// Shares of `expected`, rounded to four decimals; 0 when none are expected.
    #[schema(example = 0.9722)]
    pub actual_share: f64,
    #[schema(example = 0.0208)]
    pub estimated_share: f64,
    #[schema(example = 0.0069)]
    pub missing_share: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"interval_minutes": 15, "months": [
    {"month": "2026-11", "expected": 2880, "actual": 2800, "estimated": 60, "missing": 20,
     "actual_share": 0.9722, "estimated_share": 0.0208, "missing_share": 0.0069}]}))]
pub struct DataQuality {
    /// The interval length `expected` is counted on: the meter's own
    /// load-profile period for a meter read over IEC 62056-21, else the
    /// device's configured length.
    pub interval_minutes: i32,
    /// Oldest first; every month the window touches.
    pub months: Vec<MonthSummary>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DataQualityQuery {
    /// Start (inclusive), RFC 3339; default the start of the site's month
    /// eleven months before `to`'s (twelve months in all).
    from: Option<String>,
    /// End (exclusive), RFC 3339; default now.
    to: Option<String>,
}

fn rounded(share: f64) -> f64 {
    (share * 10_000.0).round() / 10_000.0
}

fn month_summary(month: MonthQuality) -> MonthSummary {
    MonthSummary {
        month: month.label(),
        expected: month.expected,
        actual: month.actual,
        estimated: month.estimated,
        missing: month.missing,
        actual_share: rounded(month.share(month.actual)),
        estimated_share: rounded(month.share(month.estimated)),
        missing_share: rounded(month.share(month.missing)),
    }
}

/// The start of the local month `months - 1` months before the one holding
/// `to`: a window of `months` calendar months.
fn months_before(to: DateTime<Utc>, zone: Tz, months: u32) -> DateTime<Utc> {
    let local = to.with_timezone(&zone).date_naive();
    NaiveDate::from_ymd_opt(local.year(), local.month(), 1)
        .and_then(|first| first.checked_sub_months(Months::new(months.saturating_sub(1))))
        .map_or(to - TimeDelta::days(365), |first| day_start(first, zone))
}

/// A device's summary over `[from, to)` (`from` none: the `months` calendar
/// months up to `to`, in the site's zone), or `None` when there is no such device.
pub(crate) async fn device_data_quality(
    pool: &PgPool,
    profiles: &ProfileSet,
    device: DeviceId,
    (from, to): (Option<DateTime<Utc>>, DateTime<Utc>),
    months: u32,
    now: DateTime<Utc>,
) -> Result<Option<DataQuality>, StoreError> {
    let Some(found) = fetch_quality_device(pool, device).await? else {
        return Ok(None);
    };
    let zone = found.time_zone.tz();
    let from = from.unwrap_or_else(|| months_before(to, zone, months));
    // A meter that keeps its own load profile records at its own period.
    let own_period = profiles
        .get(&found.profile)
        .filter(|_| found.iec_address.is_some())
        .and_then(|profile| {
            profile
                .iec62056
                .as_ref()?
                .load_profile
                .as_ref()
                .map(|lp| lp.interval_minutes)
        });
    let minutes = own_period.unwrap_or_else(|| u32::try_from(found.interval_minutes).unwrap_or(15));
    let starts = fetch_interval_starts(pool, device, from, to).await?;
    let months = summarize(from, to, now, found.first_interval, minutes, zone, &starts);
    Ok(Some(DataQuality {
        interval_minutes: i32::try_from(minutes).unwrap_or(15),
        months: months.into_iter().map(month_summary).collect(),
    }))
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
pub async fn get_data_quality(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(query): Query<DataQualityQuery>,
) -> Result<Json<DataQuality>, ApiError> {
    caller.require(Right::Read)?;
    let now = state.clock.now();
    let to = instant("to", query.to.as_deref())?.unwrap_or(now);
    let from = instant("from", query.from.as_deref())?;
    if let Some(from) = from {
        if from >= to {
            return Err(bad("from", "must be before to"));
        }
        if to - from > TimeDelta::days(MAX_DAYS) {
            return Err(bad("to", format!("the window may span at most {MAX_DAYS} days")));
        }
    }
    device_data_quality(&state.pool, &state.profiles, DeviceId(id), (from, to), 12, now)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))
}
