//! A device's load profile: the newest version of each stored interval
//! over a window, and every version of one interval. A virtual meter's id
//! gives the signed sum of its members' intervals (`meters`).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use sqlx::PgPool;

use super::meters::meter_intervals_of;
use super::{Caller, ServiceError};
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::role::Right;
use crate::metering::balance::virtual_sum::Incomplete;
use crate::store::load_profile::{ProfileInterval, fetch_device_interval_minutes};
use crate::store::profile_corrections::{IntervalVersion, fetch_interval_versions};

/// The longest window one request may ask for: a year of 15-minute
/// intervals of a few channels is still an answer a client can hold.
pub(crate) const MAX_DAYS: i64 = 366;

/// The intervals of a window.
#[derive(Debug)]
pub(crate) struct LoadProfile {
    /// Length of the intervals: the first interval's, or the device's
    /// configured length when there are none.
    pub interval_minutes: i32,
    /// Ascending by start, then OBIS code.
    pub intervals: Vec<ProfileInterval>,
    /// Of a virtual meter: intervals some members lack, left out.
    pub incomplete: Vec<Incomplete>,
}

/// A window `[from, to)` that is not empty and spans at most [`MAX_DAYS`].
pub(crate) fn check_window(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ServiceError> {
    if from >= to {
        return Err(ServiceError::invalid("from", "must be before to"));
    }
    if to - from > TimeDelta::days(MAX_DAYS) {
        return Err(ServiceError::invalid(
            "to",
            format!("the window may span at most {MAX_DAYS} days"),
        ));
    }
    Ok(())
}

/// The interval length configured for a device, or not found.
pub(crate) async fn configured_interval_minutes(pool: &PgPool, device: DeviceId) -> Result<i32, ServiceError> {
    fetch_device_interval_minutes(pool, device)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no device {device}")))
}

/// The newest version of each interval over `[from, to)` (`to` default
/// `now`, `from` default a day before `to`), of one channel or all, of a
/// device or a virtual meter.
pub(crate) async fn load_profile(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
    (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    obis: Option<&ObisCode>,
    now: DateTime<Utc>,
) -> Result<LoadProfile, ServiceError> {
    caller.require(Right::Read)?;
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - TimeDelta::hours(24));
    check_window(from, to)?;
    let meter = meter_intervals_of(pool, device, from, to, obis).await?;
    Ok(LoadProfile {
        interval_minutes: meter.interval_minutes,
        intervals: meter.intervals,
        incomplete: meter.incomplete,
    })
}

/// Every version of one interval, oldest first; not found when the device
/// or the interval is not there.
pub(crate) async fn interval_versions(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
    obis: &ObisCode,
    start: DateTime<Utc>,
) -> Result<Vec<IntervalVersion>, ServiceError> {
    caller.require(Right::Read)?;
    configured_interval_minutes(pool, device).await?;
    let rows = fetch_interval_versions(pool, device, obis, start).await?;
    if rows.is_empty() {
        return Err(ServiceError::not_found(format!(
            "no interval of {obis} starts at {} on device {device}",
            start.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        )));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_not_empty_and_at_most_366_days() {
        let at = |day: i64| DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(day);
        assert!(check_window(at(0), at(1)).is_ok());
        assert!(check_window(at(0), at(366)).is_ok());
        assert_eq!(
            check_window(at(1), at(1)).unwrap_err().to_string(),
            "from: must be before to"
        );
        assert_eq!(
            check_window(at(0), at(367)).unwrap_err().to_string(),
            "to: the window may span at most 366 days"
        );
    }
}
