//! A site's billing schedule: the instants at which the server closes a
//! billing period for meters that keep no history of their own, and the
//! register values at those instants, interpolated between two reads of
//! one meter.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::domain::quality::Quality;

/// The schedule's instants after `from` and up to `to` (both exclusive of
/// `from`, inclusive of `to`): day `day` (1–28, so every month has it) at
/// hour `hour` local time in `zone`. A local hour skipped by a DST change
/// gives the first instant after the gap; an ambiguous one (clocks set back)
/// gives the earlier, so a period never closes twice.
pub(crate) fn instants(day: u32, hour: u32, zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    // Start one month before `from`'s local month: a zone ahead of UTC can
    // put the instant of `from`'s month before `from`'s UTC date.
    let start = from.with_timezone(&zone);
    let (mut year, mut month) = (start.year(), start.month());
    (year, month) = previous_month(year, month);
    loop {
        let Some(at) = local_instant(year, month, day, hour, zone) else {
            return out;
        };
        if at > to {
            return out;
        }
        if at > from {
            out.push(at);
        }
        (year, month) = next_month(year, month);
    }
}

/// The `count` latest instants of the schedule at or before `at`, newest
/// first: where a meter that resets on this schedule put its last `count`
/// resets, seen at `at`.
pub(crate) fn instants_back(day: u32, hour: u32, zone: Tz, at: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    // One instant a month: `count` + 1 months of 31 days hold them all.
    let months = i64::try_from(count).unwrap_or(i64::MAX / 64).saturating_add(1);
    let from = at - Duration::days(31 * months);
    let mut out = instants(day, hour, zone, from, at);
    out.reverse();
    out.truncate(count);
    out
}

/// The instant of a local date and hour, resolved across DST changes.
fn local_instant(year: i32, month: u32, day: u32, hour: u32, zone: Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, 0, 0)?;
    // Skipped hour: walk forward a minute at a time to the first local time
    // that exists, which is the instant the clocks jumped (gaps are 30 or
    // 60 minutes in the tz database; a day bounds the walk).
    for minutes in 0..=24 * 60 {
        match zone.from_local_datetime(&(naive + Duration::minutes(minutes))) {
            LocalResult::Single(at) => return Some(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, _) => return Some(earlier.with_timezone(&Utc)),
            LocalResult::None => continue,
        }
    }
    None
}

fn next_month(year: i32, month: u32) -> (i32, u32) {
    if month == 12 { (year + 1, 1) } else { (year, month + 1) }
}

fn previous_month(year: i32, month: u32) -> (i32, u32) {
    if month == 1 { (year - 1, 12) } else { (year, month - 1) }
}

/// The value at `at` on the straight line between two reads of a
/// cumulative register (`t0 <= at <= t1`).
pub(crate) fn interpolate((t0, v0): (DateTime<Utc>, f64), (t1, v1): (DateTime<Utc>, f64), at: DateTime<Utc>) -> f64 {
    let span = (t1 - t0).num_milliseconds();
    if span <= 0 {
        return v0;
    }
    let part = (at - t0).num_milliseconds() as f64 / span as f64;
    v0 + (v1 - v0) * part
}

/// A cumulative register at `at` from the reads just `before` it (at or
/// before) and just `after` it, with the quality it has.
///
/// Read exactly at the instant: that read. Otherwise the straight line
/// between the two (`interpolated`), unless a confirmed meter replacement
/// (`series_start`, the first read of the new meter) lies between them:
/// two meters' registers are not one line. Then the instant belongs to the
/// meter that was in place: before the replacement, the old meter's last
/// read; from it on, the new meter's first. Either is `estimated`: what
/// the meter counted between that read and the instant is not known.
pub(crate) fn register_at(
    before: (DateTime<Utc>, f64),
    after: (DateTime<Utc>, f64),
    at: DateTime<Utc>,
    series_start: Option<DateTime<Utc>>,
) -> (f64, Quality) {
    if before.0 == at {
        return (before.1, Quality::GOOD);
    }
    match series_start {
        Some(start) if before.0 < start && start <= after.0 => {
            let held = if at < start { before.1 } else { after.1 };
            (held, Quality::ESTIMATED)
        }
        _ => (interpolate(before, after, at), Quality::INTERPOLATED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn ambiguous_hour_takes_the_earlier_instant() {
        // Paris leaves CEST (UTC+2) at 03:00 on 2026-10-25: 02:00 happens
        // twice, first at 00:00 UTC (CEST) then at 01:00 UTC (CET).
        let at = instants(
            25,
            2,
            chrono_tz::Europe::Paris,
            utc(2026, 10, 1, 0, 0),
            utc(2026, 10, 31, 0, 0),
        );
        assert_eq!(at, vec![utc(2026, 10, 25, 0, 0)]);
    }

    #[test]
    fn skipped_hour_takes_the_first_instant_after_the_gap() {
        // New York leaves EST (UTC-5) at 02:00 on 2026-03-08: 02:00-03:00
        // local does not exist; 03:00 EDT (UTC-4) is 07:00 UTC.
        let at = instants(
            8,
            2,
            chrono_tz::America::New_York,
            utc(2026, 3, 1, 0, 0),
            utc(2026, 3, 31, 0, 0),
        );
        assert_eq!(at, vec![utc(2026, 3, 8, 7, 0)]);
    }

    #[test]
    fn ordinary_months_in_a_zone_ahead_of_utc() {
        // Paris in winter is UTC+1: the 1st at 00:00 local is 23:00 UTC the
        // day before; in summer (UTC+2) 22:00 UTC.
        let at = instants(
            1,
            0,
            chrono_tz::Europe::Paris,
            utc(2026, 1, 1, 0, 0),
            utc(2026, 5, 1, 0, 0),
        );
        assert_eq!(
            at,
            vec![
                utc(2026, 1, 31, 23, 0),
                utc(2026, 2, 28, 23, 0),
                utc(2026, 3, 31, 22, 0),
                utc(2026, 4, 30, 22, 0)
            ]
        );
    }

    #[test]
    fn from_is_exclusive_and_to_inclusive() {
        let zone = chrono_tz::UTC;
        assert_eq!(
            instants(5, 6, zone, utc(2026, 2, 5, 6, 0), utc(2026, 3, 5, 6, 0)),
            vec![utc(2026, 3, 5, 6, 0)]
        );
    }

    #[test]
    fn instants_back_count_from_the_latest_at_or_before() {
        let zone = chrono_tz::Europe::Rome;
        // Rome is UTC+1 in winter, UTC+2 in summer: the 1st at 00:00 local.
        let at = utc(2026, 11, 30, 23, 0);
        assert_eq!(
            instants_back(1, 0, zone, at, 3),
            vec![
                utc(2026, 11, 30, 23, 0),
                utc(2026, 10, 31, 23, 0),
                utc(2026, 9, 30, 22, 0)
            ]
        );
        // A minute earlier, December's instant is not there yet.
        assert_eq!(
            instants_back(1, 0, zone, at - Duration::minutes(1), 1),
            vec![utc(2026, 10, 31, 23, 0)]
        );
        assert_eq!(instants_back(1, 0, zone, at, 16).len(), 16);
        assert_eq!(instants_back(1, 0, zone, at, 16)[15], utc(2025, 8, 31, 22, 0));
    }

    #[test]
    fn interpolates_on_the_line() {
        let a = (utc(2026, 3, 8, 6, 30), 100.0);
        let b = (utc(2026, 3, 8, 7, 30), 102.0);
        assert!((interpolate(a, b, utc(2026, 3, 8, 7, 0)) - 101.0).abs() < 1e-9);
        assert!((interpolate(a, b, utc(2026, 3, 8, 7, 15)) - 101.5).abs() < 1e-9);
        assert_eq!(interpolate(a, a, a.0), 100.0);
    }

    #[test]
    fn a_register_is_never_interpolated_across_a_meter_replacement() {
        // The old meter read 48 000 kWh at 23:00, the new one 12 kWh at
        // 01:00 (its first read, the replacement's); the instant is 00:00.
        let old = (utc(2026, 3, 31, 23, 0), 48_000.0);
        let new = (utc(2026, 4, 1, 1, 0), 12.0);
        let midnight = utc(2026, 4, 1, 0, 0);
        // The straight line would say 24 006 kWh, neither meter's register.
        assert_eq!(
            register_at(old, new, midnight, Some(new.0)),
            (48_000.0, Quality::ESTIMATED)
        );
        // The new meter in place before the instant (its first read at
        // 23:30, the next at 01:00 is not across it): one meter, the line.
        let replaced = utc(2026, 3, 31, 23, 30);
        let first_new = (replaced, 10.0);
        let (value, quality) = register_at(first_new, new, midnight, Some(replaced));
        assert!((value - (10.0 + 2.0 / 3.0)).abs() < 1e-9, "{value}");
        assert_eq!(quality, Quality::INTERPOLATED);
        // The replacement between the reads and at or before the instant:
        // the new meter's first read.
        assert_eq!(
            register_at(old, new, midnight, Some(utc(2026, 3, 31, 23, 45))),
            (12.0, Quality::ESTIMATED)
        );
        // A replacement long before, or none: the line; a read at the
        // instant: that read.
        let (value, quality) = register_at(
            (utc(2026, 3, 31, 23, 0), 100.0),
            (utc(2026, 4, 1, 1, 0), 104.0),
            midnight,
            Some(utc(2026, 1, 1, 0, 0)),
        );
        assert!((value - 102.0).abs() < 1e-9);
        assert_eq!(quality, Quality::INTERPOLATED);
        assert_eq!(
            register_at((midnight, 7.0), new, midnight, Some(new.0)),
            (7.0, Quality::GOOD)
        );
    }
}
