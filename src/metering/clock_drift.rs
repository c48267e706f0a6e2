//! How far a meter's clock is from the server's. A meter shows local wall
//! time in its site's zone with no offset, so the same reading can mean two
//! instants in the autumn fall-back hour, and none in the spring gap.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::device::profile_interval::Interval;
use crate::domain::quality::Quality;

/// The meter's clock minus the server's, in whole seconds: positive when the
/// meter is ahead. `meter` is the wall time the meter shows in `zone`.
///
/// In the fall-back hour the wall time occurs twice; the meter is taken to
/// mean the occurrence nearer the server's time (the smaller |drift|), so a
/// correct meter is never reported an hour off. A wall time that does not
/// exist (the spring-forward gap) cannot be compared: `None`.
pub(crate) fn clock_drift_seconds(meter: NaiveDateTime, zone: Tz, server: DateTime<Utc>) -> Option<i64> {
    let drift = |local: DateTime<Tz>| (local.with_timezone(&Utc) - server).num_seconds();
    zone.from_local_datetime(&meter)
        .earliest()
        .into_iter()
        .chain(zone.from_local_datetime(&meter).latest())
        .map(drift)
        .min_by_key(|d| d.abs())
}

/// Whether `at` lies in one of the spans a meter's clock was known to be
/// off (`clock_drift` events: start, and clear time or `None` while open).
pub(crate) fn in_drift(at: DateTime<Utc>, drifts: &[(DateTime<Utc>, Option<DateTime<Utc>>)]) -> bool {
    drifts
        .iter()
        .any(|(from, until)| *from <= at && until.is_none_or(|until| at < until))
}

/// Flags `clock_uncertain` on each interval a meter recorded that overlaps
/// a span its clock was known to be off (a `clock_drift` event: from the
/// read that found the drift to the read that found the clock right again,
/// `None` while still open). Such an interval may belong to another quarter
/// hour than its time stamp says.
pub(crate) fn flag_clock_uncertain(intervals: &mut [Interval], drifts: &[(DateTime<Utc>, Option<DateTime<Utc>>)]) {
    for interval in intervals {
        let end = interval.start + Duration::minutes(i64::from(interval.minutes));
        let overlaps = drifts
            .iter()
            .any(|(from, until)| *from < end && until.is_none_or(|until| interval.start < until));
        if overlaps {
            interval.quality = interval.quality.with(Quality::CLOCK_UNCERTAIN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::Europe::Paris;

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(&local(y, mo, d, h, mi, s))
    }

    #[test]
    fn winter_meter_ahead() {
        // Paris in January is UTC+1: 13:01:35 local is 12:01:35 UTC, 95 s
        // after the server's 12:00:00.
        let drift = clock_drift_seconds(local(2026, 1, 15, 13, 1, 35), Paris, utc(2026, 1, 15, 12, 0, 0));
        assert_eq!(drift, Some(95));
    }

    #[test]
    fn summer_meter_behind() {
        // Paris in July is UTC+2: 13:59:00 local is 11:59:00 UTC, a minute
        // before the server's 12:00:00.
        let drift = clock_drift_seconds(local(2026, 7, 15, 13, 59, 0), Paris, utc(2026, 7, 15, 12, 0, 0));
        assert_eq!(drift, Some(-60));
    }

    #[test]
    fn fall_back_hour_takes_the_nearer_occurrence() {
        // 25 Oct 2026, Paris goes back from 03:00 CEST to 02:00 CET at 01:00
        // UTC: 02:30 local is 00:30 UTC (CEST) or 01:30 UTC (CET).
        let meter = local(2026, 10, 25, 2, 30, 10);
        // Server at 00:30:00 UTC: the CEST reading is 10 s ahead.
        assert_eq!(clock_drift_seconds(meter, Paris, utc(2026, 10, 25, 0, 30, 0)), Some(10));
        // Server at 01:30:00 UTC: the CET reading is 10 s ahead.
        assert_eq!(clock_drift_seconds(meter, Paris, utc(2026, 10, 25, 1, 30, 0)), Some(10));
        // Server at 01:00:00 UTC: 00:30:10 UTC is 1 790 s behind, 01:30:10
        // UTC is 1 810 s ahead; the nearer is the CEST one.
        assert_eq!(
            clock_drift_seconds(meter, Paris, utc(2026, 10, 25, 1, 0, 0)),
            Some(-1_790)
        );
    }

    #[test]
    fn spring_gap_cannot_be_compared() {
        // 29 Mar 2026, Paris jumps from 02:00 CET to 03:00 CEST: 02:30 never
        // shows on a correct clock.
        let meter = local(2026, 3, 29, 2, 30, 0);
        assert_eq!(clock_drift_seconds(meter, Paris, utc(2026, 3, 29, 1, 0, 0)), None);
    }

    #[test]
    fn across_the_spring_change() {
        // 03:00:05 CEST on 29 Mar 2026 is 01:00:05 UTC: 5 s ahead of the
        // server at 01:00:00 UTC (which is 03:00:00 CEST).
        let drift = clock_drift_seconds(local(2026, 3, 29, 3, 0, 5), Paris, utc(2026, 3, 29, 1, 0, 0));
        assert_eq!(drift, Some(5));
    }

    fn quarter(hour: u32, minute: u32) -> Interval {
        Interval {
            obis: "1-1:1.29.0".parse().unwrap(),
            start: utc(2026, 11, 20, hour, minute, 0),
            minutes: 15,
            value: 1.0,
            unit: crate::domain::unit::Unit::KWh,
            meter_status: String::new(),
            quality: Quality::GOOD,
        }
    }

    #[test]
    fn intervals_overlapping_a_drift_are_uncertain() {
        // Drift found at 10:05, gone at 10:40; another found at 12:00, still open.
        let drifts = [
            (utc(2026, 11, 20, 10, 5, 0), Some(utc(2026, 11, 20, 10, 40, 0))),
            (utc(2026, 11, 20, 12, 0, 0), None),
        ];
        let mut intervals: Vec<Interval> = [(9, 45), (10, 0), (10, 30), (10, 45), (11, 45), (12, 0), (23, 45)]
            .into_iter()
            .map(|(h, m)| quarter(h, m))
            .collect();
        flag_clock_uncertain(&mut intervals, &drifts);
        let flagged: Vec<bool> = intervals
            .iter()
            .map(|i| i.quality.contains(Quality::CLOCK_UNCERTAIN))
            .collect();
        // 09:45-10:00 ends before 10:05; 10:00 and 10:30 overlap the first
        // span; 10:45 starts after it cleared; 11:45-12:00 ends as the second
        // begins; 12:00 and later lie in the open one.
        assert_eq!(flagged, [false, true, true, false, false, true, true]);
    }
}
