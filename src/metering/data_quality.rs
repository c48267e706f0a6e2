//! How complete a device's load profile is, per month in its site's zone:
//! of the intervals it should have (from its first stored interval up to the
//! last complete one), how many are actual (read or derived), estimated, or
//! missing.
//!
//! "Should have" follows the grid of [`super::register_deltas`]: intervals
//! counted from each local midnight, so a 23-hour spring-forward day has
//! four quarter hours fewer and a 25-hour day four more.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;

use super::register_deltas::{day_start, interval_containing};

/// One local month of a device's intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthQuality {
    pub year: i32,
    pub month: u32,
    /// Complete grid intervals in the month, from the device's first
    /// interval on, within the window asked for.
    pub expected: u64,
    pub actual: u64,
    pub estimated: u64,
    /// Expected intervals with nothing stored.
    pub missing: u64,
    /// Grid intervals a first backfill of the meter's load profile has not
    /// reached yet ([`add_pending`]): neither expected nor missing.
    pub pending: u64,
}

impl MonthQuality {
    /// `2026-11`.
    pub fn label(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// `count` as a share of the expected intervals; 0 when none are expected.
    pub fn share(&self, count: u64) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            count as f64 / self.expected as f64
        }
    }
}

/// How many grid intervals of `minutes` (clamped to 1–120) start in
/// `[from, to)`, days counted from local midnight in `zone`.
pub fn expected_intervals(from: DateTime<Utc>, to: DateTime<Utc>, minutes: u32, zone: Tz) -> u64 {
    if from >= to {
        return 0;
    }
    let step = i64::from(minutes.clamp(1, 120)) * 60_000;
    // Starts k × step after `base` that fall before `until`: k < ceil(span / step).
    let starts_before = |base: DateTime<Utc>, until: DateTime<Utc>| {
        let span = (until - base).num_milliseconds().max(0);
        (span + step - 1) / step
    };
    let last = to.with_timezone(&zone).date_naive();
    let mut day = from.with_timezone(&zone).date_naive();
    let mut count = 0;
    while let Some(next_day) = day.succ_opt() {
        let (midnight, next) = (day_start(day, zone), day_start(next_day, zone));
        let low = starts_before(midnight, from.max(midnight));
        let high = starts_before(midnight, to.min(next));
        count += (high - low).max(0);
        if day >= last {
            break;
        }
        day = next_day;
    }
    u64::try_from(count).unwrap_or(0)
}

/// The summary per local month touching `[from, to)`. `first` is the start
/// of the device's first stored interval (none: nothing is expected yet);
/// `now` bounds the expected intervals to complete ones. `intervals` holds
/// each stored interval start once, with whether it is estimated. An
/// interval stored off the current grid (before the length was changed)
/// still counts where it lies, so a month may show more stored than expected.
pub fn summarize(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    first: Option<DateTime<Utc>>,
    minutes: u32,
    zone: Tz,
    intervals: &[(DateTime<Utc>, bool)],
) -> Vec<MonthQuality> {
    let complete_until = interval_containing(now, minutes, zone).0;
    let first = first.map(|at| interval_containing(at, minutes, zone).0);
    let local = from.with_timezone(&zone).date_naive();
    let mut month = NaiveDate::from_ymd_opt(local.year(), local.month(), 1);
    let mut out = Vec::new();
    while let Some(day) = month {
        let start = day_start(day, zone);
        if start >= to {
            break;
        }
        let next = day.checked_add_months(Months::new(1));
        let end = next.map_or(to, |next| day_start(next, zone));
        let (low, high) = (start.max(from), end.min(to));
        let expected = first.map_or(0, |first| {
            expected_intervals(low.max(first), high.min(complete_until), minutes, zone)
        });
        let (mut actual, mut estimated) = (0, 0);
        for (_, is_estimated) in intervals.iter().filter(|(at, _)| low <= *at && *at < high) {
            if *is_estimated {
                estimated += 1;
            } else {
                actual += 1;
            }
        }
        out.push(MonthQuality {
            year: day.year(),
            month: day.month(),
            expected,
            actual,
            estimated,
            missing: expected.saturating_sub(actual + estimated),
            pending: 0,
        });
        month = next;
    }
    out
}

/// Counts into each month of `months` (as [`summarize`] made them for the
/// window `[from, to)`) the grid intervals of `pending` (`[start, end)`,
/// the span a running backfill has not reached) it holds. `first`, the
/// start of the device's first stored interval, cuts the span: from there
/// on intervals are expected, never pending.
pub fn add_pending(
    months: &mut [MonthQuality],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    pending: (DateTime<Utc>, DateTime<Utc>),
    first: Option<DateTime<Utc>>,
    minutes: u32,
    zone: Tz,
) {
    let end = first.map_or(pending.1, |first| {
        pending.1.min(interval_containing(first, minutes, zone).0)
    });
    for month in months {
        let Some(day) = NaiveDate::from_ymd_opt(month.year, month.month, 1) else {
            continue;
        };
        let start = day_start(day, zone);
        let month_end = day
            .checked_add_months(Months::new(1))
            .map_or(to, |next| day_start(next, zone));
        let low = start.max(from).max(pending.0);
        let high = month_end.min(to).min(end);
        month.pending = expected_intervals(low, high, minutes, zone);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn paris() -> Tz {
        "Europe/Paris".parse().unwrap()
    }

    #[test]
    fn a_utc_november_has_30_days_of_96_quarters() {
        let got = expected_intervals(utc(2026, 11, 1, 0, 0), utc(2026, 12, 1, 0, 0), 15, Tz::UTC);
        assert_eq!(got, 30 * 96);
    }

    #[test]
    fn paris_months_with_a_clock_change_lose_or_gain_four_quarters() {
        // March 2026: 31 days, the 29th has 23 hours: 31 × 96 − 4.
        // Paris local month: 2026-02-28 23:00 UTC to 2026-03-31 22:00 UTC.
        let march = expected_intervals(utc(2026, 2, 28, 23, 0), utc(2026, 3, 31, 22, 0), 15, paris());
        assert_eq!(march, 2972);
        // October 2026: 31 days, the 25th has 25 hours: 31 × 96 + 4.
        let october = expected_intervals(utc(2026, 9, 30, 22, 0), utc(2026, 10, 31, 23, 0), 15, paris());
        assert_eq!(october, 2980);
        // Hourly on the spring-forward day alone: 23.
        assert_eq!(
            expected_intervals(utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0), 60, paris()),
            23
        );
    }

    #[test]
    fn a_partial_window_counts_the_starts_inside_it() {
        // 10:07 to 11:00: quarters starting 10:15, 10:30 and 10:45.
        assert_eq!(
            expected_intervals(utc(2026, 11, 2, 10, 7), utc(2026, 11, 2, 11, 0), 15, Tz::UTC),
            3
        );
        // Ending mid-interval still counts the one that started: 10:00, 10:15.
        assert_eq!(
            expected_intervals(utc(2026, 11, 2, 10, 0), utc(2026, 11, 2, 10, 20), 15, Tz::UTC),
            2
        );
        assert_eq!(
            expected_intervals(utc(2026, 11, 2, 10, 0), utc(2026, 11, 2, 10, 0), 15, Tz::UTC),
            0
        );
    }

    #[test]
    fn months_count_from_the_first_interval_to_the_last_complete_one() {
        // Hourly, UTC. First interval 2026-11-20 00:00; now 2026-11-21 01:10,
        // so 01:00 is not complete: 24 + 1 = 25 expected in November.
        // Stored: 20 actual, 2 estimated → 3 missing. October: nothing expected.
        let first = utc(2026, 11, 20, 0, 0);
        let mut intervals: Vec<_> = (0..20).map(|h| (first + Duration::hours(h), false)).collect();
        intervals.push((first + Duration::hours(21), true));
        intervals.push((first + Duration::hours(22), true));
        let got = summarize(
            utc(2026, 10, 15, 0, 0),
            utc(2026, 11, 21, 1, 10),
            utc(2026, 11, 21, 1, 10),
            Some(first),
            60,
            Tz::UTC,
            &intervals,
        );
        assert_eq!(
            got,
            vec![
                MonthQuality {
                    year: 2026,
                    month: 10,
                    expected: 0,
                    actual: 0,
                    estimated: 0,
                    missing: 0,
                    pending: 0
                },
                MonthQuality {
                    year: 2026,
                    month: 11,
                    expected: 25,
                    actual: 20,
                    estimated: 2,
                    missing: 3,
                    pending: 0
                },
            ]
        );
        assert_eq!(got[1].label(), "2026-11");
        assert_eq!(got[1].share(20), 0.8);
        assert_eq!(got[0].share(0), 0.0);
    }

    #[test]
    fn months_are_cut_in_the_site_zone() {
        // 2026-10-31 23:30 UTC is 2026-11-01 00:30 in Paris (UTC+1): November there.
        let at = utc(2026, 10, 31, 23, 30);
        let got = summarize(
            utc(2026, 10, 31, 0, 0),
            utc(2026, 11, 2, 0, 0),
            utc(2026, 11, 2, 0, 0),
            Some(at),
            15,
            paris(),
            &[(at, false)],
        );
        assert_eq!(
            got.iter().map(MonthQuality::label).collect::<Vec<_>>(),
            vec!["2026-10", "2026-11"]
        );
        assert_eq!((got[0].actual, got[1].actual), (0, 1));
        // November in Paris from 00:30 local (the first interval) to 01:00 local on
        // the 2nd (2026-11-02 00:00 UTC): 24.5 h = 98 quarters.
        assert_eq!(got[1].expected, 98);
        assert_eq!(got[1].missing, 97);
    }

    #[test]
    fn a_backfill_span_is_pending_up_to_the_first_stored_interval() {
        // Hourly, UTC. The backfill goes back to 2026-10-30 00:00 and has
        // asked from 2026-11-02 00:00 on, but the meter's first interval is
        // 2026-11-02 05:00: October 30–31 (48 h) and November 1–2 up to
        // 05:00 (29 h) are pending; nothing before the window start is.
        let first = utc(2026, 11, 2, 5, 0);
        let window = (utc(2026, 10, 30, 12, 0), utc(2026, 11, 3, 0, 0));
        let mut months = summarize(
            window.0,
            window.1,
            window.1,
            Some(first),
            60,
            Tz::UTC,
            &[(first, false)],
        );
        add_pending(
            &mut months,
            window,
            (utc(2026, 10, 30, 0, 0), utc(2026, 11, 2, 12, 0)),
            Some(first),
            60,
            Tz::UTC,
        );
        let pending: Vec<_> = months.iter().map(|m| (m.label(), m.pending)).collect();
        assert_eq!(pending, vec![("2026-10".into(), 36), ("2026-11".into(), 29)]);
        // Pending intervals are not expected, hence not missing.
        assert_eq!(months[1].expected, 19);
        assert_eq!(months[1].missing, 18);
    }
}
