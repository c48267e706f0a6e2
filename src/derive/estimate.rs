//! Finds the gaps in every stored load profile and fills them with
//! estimates flagged `estimated`, recording a `profile_gap` event for each
//! gap filled. Runs after derivation, so a gap between derived intervals is
//! final: derivation never goes back before its last derived interval.
//!
//! A meter on an IEC 62056-21 line keeps its own load profile, and the next
//! profile read after an outage fills the outage's intervals from it; its
//! gaps wait [`METER_GRACE_HOURS`] for that before they are estimated. A
//! meter value arriving later for an estimated interval becomes a new
//! version of it (see `store::load_profile::insert_meter_intervals`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;

use super::DeriveServices;
use crate::domain::event::EventKind;
use crate::domain::obis::ObisCode;
use crate::domain::transport::Protocol;
use crate::domain::unit::Unit;
use crate::metering::estimate::{Evidence, Known, PROFILE_WEEKS, SHORT_GAP_MINUTES, estimate, register_increase};
use crate::metering::gaps::{Gap, find_gaps, is_due, last_complete_end};
use crate::store::StoreError;
use crate::store::events::insert_momentary_event;
use crate::store::profile_estimation::{
    EstimationDevice, fetch_estimation_devices, fetch_measured_intervals, fetch_profile_breaks, fetch_profile_codes,
    fetch_register_reads_around, insert_estimated_intervals,
};

/// How far back gaps are looked for: the derivation window.
const WINDOW_DAYS: i64 = 40;

/// How long a gap in a meter's own load profile is left for the meter's
/// history to fill: the worker reads the profile on every history round,
/// so a few hours are many chances.
pub const METER_GRACE_HOURS: i64 = 6;

/// One round over every enabled device and each channel with stored
/// intervals. Returns how many estimated intervals were stored.
pub async fn estimate_gaps(services: &DeriveServices) -> Result<u64, StoreError> {
    let mut stored = 0;
    for device in fetch_estimation_devices(&services.pool).await? {
        stored += estimate_device(services, &device).await?;
    }
    Ok(stored)
}

async fn estimate_device(services: &DeriveServices, device: &EstimationDevice) -> Result<u64, StoreError> {
    let now = services.clock.now();
    let zone = device.time_zone.tz();
    let meter_kept = device.transport.0.protocol() == Protocol::Iec62056;
    let since = now - Duration::days(WINDOW_DAYS);
    let mut stored = 0;
    for code in fetch_profile_codes(&services.pool, device.id, since).await? {
        for found in fetch_profile_breaks(&services.pool, device.id, &code, since, now).await? {
            let before = Known {
                start: found.before_start,
                minutes: minutes(found.before_minutes),
                value: found.before_value,
            };
            let after = match (found.after_start, found.after_minutes, found.after_value) {
                (Some(start), Some(length), Some(value)) => Some(Known {
                    start,
                    minutes: minutes(length),
                    value,
                }),
                _ => None,
            };
            // Only a meter keeping its own profile has a trailing gap: the
            // span its last profile read through to the present returned
            // nothing for (a backfill still catching up has not read it).
            // Derived intervals reach as far as the reads do. The trailing
            // span stops short of the grace period, so the part past it is
            // due while the rest keeps waiting.
            let grace = Duration::hours(METER_GRACE_HOURS);
            let gap = match (after, meter_kept, device.profile_read_at) {
                (Some(after), _, _) => find_gaps(
                    &[(before.start, before.minutes), (after.start, after.minutes)],
                    None,
                    zone,
                ),
                (None, true, Some(read)) => {
                    let until = last_complete_end(now - grace, read, before.minutes, zone);
                    find_gaps(&[(before.start, before.minutes)], Some(until), zone)
                }
                (None, _, _) => Vec::new(),
            };
            let Some(gap) = gap.into_iter().next() else { continue };
            if meter_kept && !is_due(gap.end, now, grace) {
                continue;
            }
            let channel = Channel {
                code: &code,
                unit: found.unit,
                zone,
            };
            stored += estimate_gap(services, device, &channel, &gap, before, after).await?;
        }
    }
    Ok(stored)
}

/// The channel a gap is in.
struct Channel<'a> {
    code: &'a ObisCode,
    unit: Unit,
    zone: Tz,
}

/// Estimates one gap, stores the estimates and records the event.
async fn estimate_gap(
    services: &DeriveServices,
    device: &EstimationDevice,
    channel: &Channel<'_>,
    gap: &Gap,
    before: Known,
    after: Option<Known>,
) -> Result<u64, StoreError> {
    let Channel { code, unit, zone } = *channel;
    let increase = if code.is_cumulative_energy() {
        let longest = Duration::minutes(2 * i64::from(before.minutes));
        let reads =
            fetch_register_reads_around(&services.pool, device.id, code, gap.start - longest, gap.end + longest)
                .await?;
        let wrap = services
            .profiles
            .get(&device.profile)
            .and_then(|profile| profile.energy_wrap(device.energy_unit.as_deref(), device.energy_decimals));
        register_increase(&reads, gap.start, gap.end, longest, wrap)
    } else {
        None
    };
    // Only a long gap is shaped by the weeks before it.
    let history: BTreeMap<DateTime<Utc>, Known> = if gap.minutes() > SHORT_GAP_MINUTES {
        let from = gap.start - Duration::weeks(PROFILE_WEEKS) - Duration::days(1);
        fetch_measured_intervals(&services.pool, device.id, code, from, gap.start)
            .await?
            .into_iter()
            .map(|(start, length, value)| {
                let known = Known {
                    start,
                    minutes: minutes(length),
                    value,
                };
                (start, known)
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let evidence = Evidence {
        before: Some(before),
        after,
        increase,
        history: &history,
        zone,
    };
    let estimates = estimate(gap, &evidence);
    let new = insert_estimated_intervals(&services.pool, device.id, code, unit, &estimates).await?;
    if new > 0 {
        let message = gap_message(code, gap, new, increase.is_some(), after.is_none());
        let now = services.clock.now();
        insert_momentary_event(&services.pool, device.id, &EventKind::ProfileGap, &message, now).await?;
    }
    Ok(new)
}

fn minutes(length: i32) -> u32 {
    u32::try_from(length).unwrap_or(15)
}

/// Names the channel, the span and how it was estimated.
fn gap_message(code: &ObisCode, gap: &Gap, estimated: u64, from_register: bool, trailing: bool) -> String {
    let how = match (gap.minutes() <= SHORT_GAP_MINUTES, from_register, trailing) {
        (true, true, _) => "linearly, the register's increase spread over it",
        (true, false, false) => "linearly between its neighbours",
        (true, false, true) => "holding the last interval's rate",
        (false, true, _) => "from the same weekday's profile, scaled to the register's increase",
        (false, false, _) => "from the same weekday's profile",
    };
    format!(
        "load profile {code}: no intervals from {} to {} ({} min); {estimated} estimated {how}",
        gap.start.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        gap.end.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        gap.minutes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_message_names_the_channel_the_span_and_the_rule() {
        let gap = Gap {
            start: Utc.with_ymd_and_hms(2026, 11, 18, 10, 15, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 11, 18, 11, 0, 0).unwrap(),
            slots: Vec::new(),
        };
        assert_eq!(
            gap_message(&"1-1:1.8.0".parse().unwrap(), &gap, 3, true, false),
            "load profile 1-1:1.8.0: no intervals from 2026-11-18T10:15:00Z to 2026-11-18T11:00:00Z \
             (45 min); 3 estimated linearly, the register's increase spread over it"
        );
    }
}
