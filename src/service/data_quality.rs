//! A device's data quality: per month in its site's zone, how many of the
//! intervals it should have are actual, estimated or missing, and how many
//! a first backfill of its meter's load profile has not reached yet
//! (pending).

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use sqlx::PgPool;

use super::load_profile::check_window;
use super::{Caller, ServiceError};
use crate::device::registry::ProfileSet;
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::metering::data_quality::{MonthQuality, add_pending, summarize};
use crate::metering::register_deltas::day_start;
use crate::store::data_quality::{fetch_interval_starts, fetch_quality_device};
use crate::store::load_profile_backfill::{Backfill, fetch_backfill, fetch_oldest_meter_interval};

/// Calendar months summarised when no start is asked for.
pub(crate) const DEFAULT_MONTHS: u32 = 12;

/// One local month.
#[derive(Debug, Clone)]
pub(crate) struct MonthSummary {
    /// `YYYY-MM` in the site's zone.
    pub month: String,
    pub expected: u64,
    pub actual: u64,
    pub estimated: u64,
    pub missing: u64,
    /// Not reached yet by a running first backfill.
    pub pending: u64,
    /// Shares of `expected`, rounded to four decimals; 0 when none are expected.
    pub actual_share: f64,
    pub estimated_share: f64,
    pub missing_share: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct DataQuality {
    /// The interval length `expected` is counted on: the meter's own
    /// load-profile period for a meter read over IEC 62056-21, else the
    /// device's configured length.
    pub interval_minutes: i32,
    /// Oldest first; every month the window touches.
    pub months: Vec<MonthSummary>,
    /// The first backfill of the meter's own load profile, if one was made.
    pub backfill: Option<Backfill>,
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
        pending: month.pending,
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

/// A device's data quality over `[from, to)` (`to` default `now`; `from`
/// default the [`DEFAULT_MONTHS`] calendar months up to `to`), the window
/// checked as a load profile's is.
pub(crate) async fn data_quality(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    device: DeviceId,
    (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    now: DateTime<Utc>,
) -> Result<DataQuality, ServiceError> {
    caller.require(Right::Read)?;
    let to = to.unwrap_or(now);
    if let Some(from) = from {
        check_window(from, to)?;
    }
    device_data_quality(pool, profiles, device, (from, to), DEFAULT_MONTHS, now)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no device {device}")))
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
) -> Result<Option<DataQuality>, ServiceError> {
    let Some(found) = fetch_quality_device(pool, device).await? else {
        return Ok(None);
    };
    let zone: Tz = found.time_zone.tz();
    let from = from.unwrap_or_else(|| months_before(to, zone, months));
    // A meter that keeps its own load profile records at its own period:
    // the one its newest block's header stated, else its profile's.
    let stated = found.meter_period.and_then(|minutes| u32::try_from(minutes).ok());
    let own_period = profiles
        .get(&found.profile)
        .filter(|_| found.iec_address.is_some())
        .and_then(|profile| {
            let listed = profile.iec62056.as_ref()?.load_profile.as_ref()?.interval_minutes;
            Some(stated.unwrap_or(listed))
        });
    let minutes = own_period.unwrap_or_else(|| u32::try_from(found.interval_minutes).unwrap_or(15));
    let starts = fetch_interval_starts(pool, device, from, to).await?;
    let mut months = summarize(from, to, now, found.first_interval, minutes, zone, &starts);
    let backfill = fetch_backfill(pool, device).await?;
    if let Some(running) = backfill.filter(|backfill| backfill.completed_at.is_none()) {
        let oldest = fetch_oldest_meter_interval(pool, device).await?;
        if let Some(pending) = running.pending(oldest) {
            add_pending(&mut months, (from, to), pending, found.first_interval, minutes, zone);
        }
    }
    Ok(Some(DataQuality {
        interval_minutes: i32::try_from(minutes).unwrap_or(15),
        months: months.into_iter().map(month_summary).collect(),
        backfill,
    }))
}
