//! What a meter recorded, for a device or a virtual meter alike: the ids
//! share one sequence (migration `site_tree`), so a load profile, a
//! statement or a balance takes either by its id.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::ServiceError;
use crate::domain::ids::{DeviceId, VirtualMeterId};
use crate::domain::obis::ObisCode;
use crate::metering::balance::virtual_sum::{Incomplete, Member, MemberInterval, virtual_sum};
use crate::metering::statement::DataStart;
use crate::store::load_profile::{ProfileInterval, fetch_device_interval_minutes, fetch_load_profile};
use crate::store::load_profile_backfill::{fetch_backfill, fetch_oldest_meter_interval};
use crate::store::virtual_meters::fetch_virtual_meter;

/// A meter's intervals over a window.
#[derive(Debug, Clone)]
pub(crate) struct MeterIntervals {
    /// The first interval's length, or the (first member) device's
    /// configured length when there are none.
    pub interval_minutes: i32,
    /// The newest version of each interval, by start then OBIS code. For a
    /// virtual meter, the signed sums where every member has the interval.
    pub intervals: Vec<ProfileInterval>,
    /// For a virtual meter: the intervals some members lack, left out of
    /// `intervals` (a partial sum would read as a smaller real value).
    pub incomplete: Vec<Incomplete>,
}

/// The intervals of device or virtual meter `id` in `[from, to)`, all
/// channels; not found when `id` is neither. No role check: the use case
/// that calls it has made one.
pub(crate) async fn meter_intervals(
    pool: &PgPool,
    id: DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<MeterIntervals, ServiceError> {
    meter_intervals_of(pool, id, from, to, None).await
}

/// [`meter_intervals`] of one channel, or all when `obis` is `None`.
pub(crate) async fn meter_intervals_of(
    pool: &PgPool,
    id: DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    obis: Option<&ObisCode>,
) -> Result<MeterIntervals, ServiceError> {
    if let Some(configured) = fetch_device_interval_minutes(pool, id).await? {
        let intervals = fetch_load_profile(pool, id, from, to, obis).await?;
        return Ok(MeterIntervals {
            interval_minutes: intervals.first().map_or(configured, |row| row.interval_minutes),
            intervals,
            incomplete: Vec::new(),
        });
    }
    let Some(meter) = fetch_virtual_meter(pool, VirtualMeterId(id.0)).await? else {
        return Err(ServiceError::not_found(format!("no device or virtual meter {id}")));
    };
    let mut members = Vec::with_capacity(meter.term_devices.len());
    for (device, sign) in meter.term_devices.iter().zip(&meter.term_signs) {
        let rows = fetch_load_profile(pool, *device, from, to, obis).await?;
        members.push(Member {
            device: *device,
            sign: if *sign < 0 { -1 } else { 1 },
            intervals: rows.into_iter().map(member_interval).collect(),
        });
    }
    let mut sum = virtual_sum(&members);
    // A member still backfilling has not lost what it lacks before the
    // oldest it reached (or asked without records below its oldest stored
    // interval): that is pending.
    for device in &meter.term_devices {
        let Some((low, high)) = pending_span(pool, *device).await? else {
            continue;
        };
        for gap in &mut sum.incomplete {
            if low <= gap.start && gap.start < high && gap.missing.contains(device) {
                gap.missing.retain(|member| member != device);
                gap.pending.push(*device);
            }
        }
    }
    let intervals: Vec<ProfileInterval> = sum.intervals.into_iter().map(profile_interval).collect();
    let interval_minutes = match (intervals.first(), meter.term_devices.first()) {
        (Some(first), _) => first.interval_minutes,
        (None, Some(device)) => fetch_device_interval_minutes(pool, *device).await?.unwrap_or(15),
        (None, None) => 15,
    };
    Ok(MeterIntervals {
        interval_minutes,
        intervals,
        incomplete: sum.incomplete,
    })
}

fn member_interval(row: ProfileInterval) -> MemberInterval {
    MemberInterval {
        obis: row.obis,
        start: row.interval_start,
        minutes: row.interval_minutes,
        value: row.value,
        unit: row.unit,
        quality: row.quality,
        source: row.source,
        version: row.version,
    }
}

fn profile_interval(sum: MemberInterval) -> ProfileInterval {
    ProfileInterval {
        obis: sum.obis,
        interval_start: sum.start,
        interval_minutes: sum.minutes,
        value: sum.value,
        unit: sum.unit,
        quality: sum.quality,
        source: sum.source,
        version: sum.version,
        // A sum of several meters' intervals: no one meter's status.
        meter_status: String::new(),
    }
}

/// The span a running first backfill of the device's meter's load profile
/// leaves pending (`Backfill::pending`); none once it is complete.
async fn pending_span(pool: &PgPool, device: DeviceId) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, ServiceError> {
    let Some(running) = fetch_backfill(pool, device)
        .await?
        .filter(|backfill| backfill.completed_at.is_none())
    else {
        return Ok(None);
    };
    let oldest = fetch_oldest_meter_interval(pool, device).await?;
    Ok(running.pending(oldest))
}

/// Where the device's own data starts, as the first backfill of its
/// meter's load profile tells (none for a virtual meter).
pub(crate) async fn data_start(pool: &PgPool, device: DeviceId) -> Result<DataStart, ServiceError> {
    Ok(match fetch_backfill(pool, device).await? {
        None => DataStart::Unknown,
        Some(backfill) if backfill.completed_at.is_none() => {
            let oldest = fetch_oldest_meter_interval(pool, device).await?;
            DataStart::Pending(backfill.pending(oldest).map_or(backfill.oldest_reached, |(_, end)| end))
        }
        Some(_) => fetch_oldest_meter_interval(pool, device)
            .await?
            .map_or(DataStart::Unknown, DataStart::Recorded),
    })
}
