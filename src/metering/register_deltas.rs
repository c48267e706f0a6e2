//! Load-profile intervals derived from a cumulative energy register, for
//! meters that keep no load profile of their own (most Modbus meters).
//!
//! Between two consecutive reads the register is assumed to rise at a
//! constant rate, so a span that straddles an interval boundary is split pro
//! rata by time. Only complete intervals are produced: there must be a read
//! at or before the start and one at or after the end, and no span between
//! consecutive reads overlapping the interval may exceed two intervals (a
//! longer span is a gap, left for estimation rather than smeared evenly).
//!
//! Boundaries are counted from local midnight in the site's zone: interval
//! `k` of a day starts `k × minutes` of elapsed (real) time after that day's
//! local midnight, and the last interval of a day ends at the next local
//! midnight. On a daylight-saving change the day is 23 or 25 hours long;
//! for any length dividing 60 (the usual 5, 15, 30, 60) the grid stays on
//! the wall clock's quarter hours because the offset moves by a whole hour.
//! For other lengths the grid after the change is shifted against the wall
//! clock, and the day's last interval may be shorter: `minutes` on each
//! interval says its real length. Where local midnight does not exist (a
//! zone that springs forward at 00:00) the day starts at its first valid
//! local minute.
//!
//! A decrease between two reads (a meter replaced or reset) yields no
//! consumption for that span: the intervals overlapping it are omitted,
//! except the one ending at or after the later read (`start < t ≤ end`),
//! which is returned with value 0 and `Quality::NEGATIVE_DELTA` so the reset
//! is visible in the series; the later read is the new baseline.
//!
//! A register that counts up to a fixed width wraps to zero past its
//! largest value. Given its wrap point (see [`plausible_wrap`]), a decrease
//! from near the top to near zero is the register wrapping, not a reset:
//! the span's increase is `wrap − before + after`, spread like any other,
//! and every interval it reaches is flagged `Quality::ROLLOVER`.

use chrono::{DateTime, Days, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::domain::quality::Quality;

/// One derived interval: the register's increase over `[start, start + minutes)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DerivedInterval {
    pub start: DateTime<Utc>,
    /// Real length; equals the configured length except at the end of a day
    /// whose length is not a multiple of it.
    pub minutes: u32,
    pub value: f64,
    pub quality: Quality,
}

/// The largest increase a wrap may stand for, as a share of the register's
/// range: a counter near its top that restarts near zero has wrapped; one
/// that falls from mid-range (or from the top to mid-range) was replaced or
/// reset. One percent of a 32-bit register at 0.01 kWh is 429 MWh, far more
/// than any meter adds between two reads; of a 16-bit one at 1 kWh, 655 kWh.
pub const WRAP_SHARE: f64 = 0.01;

/// The increase a decrease from `before` to `after` stands for if the
/// register wrapped at `wrap` (its range: 2^bits × scale), when that is a
/// plausible wrap: both values inside the range and the increase at most
/// [`WRAP_SHARE`] of it. `None` for a decrease that is a reset.
pub fn plausible_wrap(before: f64, after: f64, wrap: f64) -> Option<f64> {
    if !(wrap > 0.0 && after < before && after >= 0.0 && before < wrap) {
        return None;
    }
    let increase = wrap - before + after;
    (increase <= wrap * WRAP_SHARE).then_some(increase)
}

/// Derives the complete intervals covered by `reads` (cumulative register
/// values, any order; equal instants keep the first). `minutes` is clamped
/// to 1–120, the range `devices.interval_minutes` allows. A register that
/// wraps at `wrap` (2^bits × scale, in the reads' unit) gives the increase
/// of a plausible wrap, flagged `rollover`; every other decrease (and every
/// decrease where `wrap` is `None`) is a reset.
pub fn derive_with_wrap(
    reads: &[(DateTime<Utc>, f64)],
    minutes: u32,
    zone: Tz,
    wrap: Option<f64>,
) -> Vec<DerivedInterval> {
    let minutes = minutes.clamp(1, 120);
    let mut reads: Vec<(DateTime<Utc>, f64)> = reads.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    reads.sort_by_key(|(at, _)| *at);
    reads.dedup_by_key(|(at, _)| *at);
    let (Some(&(first, _)), Some(&(last, _))) = (reads.first(), reads.last()) else {
        return Vec::new();
    };
    let longest = Duration::minutes(2 * i64::from(minutes));
    let mut out = Vec::new();
    let (mut start, mut end) = interval_containing(first, minutes, zone);
    // Index of the first span (reads[i], reads[i + 1]) that may overlap the current interval.
    let mut span = 0;
    while start < last {
        while span + 1 < reads.len() && reads[span + 1].0 <= start {
            span += 1;
        }
        let mut value = 0.0;
        let mut usable = start >= first && end <= last;
        let mut reset = false;
        let mut quality = Quality::GOOD;
        let mut i = span;
        while i + 1 < reads.len() && reads[i].0 < end {
            let ((t0, v0), (t1, v1)) = (reads[i], reads[i + 1]);
            let wrapped = wrap.and_then(|wrap| plausible_wrap(v0, v1, wrap));
            let increase = if v1 >= v0 { Some(v1 - v0) } else { wrapped };
            match increase {
                None => {
                    usable = false;
                    reset |= start < t1 && t1 <= end;
                }
                Some(_) if t1 - t0 > longest => usable = false,
                Some(increase) => {
                    let from = t0.max(start);
                    let to = t1.min(end);
                    let share = (to - from).num_milliseconds() as f64 / (t1 - t0).num_milliseconds() as f64;
                    value += increase * share;
                    if wrapped.is_some() {
                        quality = quality.with(Quality::ROLLOVER);
                    }
                }
            }
            i += 1;
        }
        let real_minutes = u32::try_from((end - start).num_minutes()).unwrap_or(minutes);
        if reset {
            out.push(DerivedInterval {
                start,
                minutes: real_minutes,
                value: 0.0,
                quality: Quality::NEGATIVE_DELTA,
            });
        } else if usable {
            out.push(DerivedInterval {
                start,
                minutes: real_minutes,
                value,
                quality,
            });
        }
        (start, end) = interval_containing(end, minutes, zone);
    }
    out
}

/// The grid interval `[start, end)` holding `at`: counted in elapsed time
/// from the local midnight of `at`'s day, cut at the next local midnight.
pub fn interval_containing(at: DateTime<Utc>, minutes: u32, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = at.with_timezone(&zone).date_naive();
    let midnight = day_start(day, zone);
    let next = day
        .checked_add_days(Days::new(1))
        .map_or(at + Duration::days(1), |d| day_start(d, zone));
    let step = i64::from(minutes) * 60_000;
    let k = (at - midnight).num_milliseconds().div_euclid(step);
    let start = midnight + Duration::milliseconds(k * step);
    (start, (start + Duration::milliseconds(step)).min(next))
}

/// The first instant of a local day: midnight, or the first valid local
/// minute after it when the zone skips midnight.
pub fn day_start(day: chrono::NaiveDate, zone: Tz) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    (0..=180)
        .find_map(|m| zone.from_local_datetime(&(midnight + Duration::minutes(m))).earliest())
        .map_or_else(|| Utc.from_utc_datetime(&midnight), |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A register that never wraps: every decrease is a reset.
    fn derive(reads: &[(DateTime<Utc>, f64)], minutes: u32, zone: Tz) -> Vec<DerivedInterval> {
        derive_with_wrap(reads, minutes, zone, None)
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    #[test]
    fn reads_on_boundaries_give_their_differences() {
        let reads = [(at(10, 0), 100.0), (at(10, 15), 101.5), (at(10, 30), 104.0)];
        let got = derive(&reads, 15, Tz::UTC);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].start, got[0].value, got[0].minutes), (at(10, 0), 1.5, 15));
        assert_eq!((got[1].start, got[1].value), (at(10, 15), 2.5));
        assert!(got.iter().all(|i| i.quality == Quality::GOOD));
    }

    #[test]
    fn four_kilowatts_between_07_and_22_is_one_kilowatt_hour_per_quarter() {
        // 4 kW for 15 minutes = 1 kWh per read span; reads 10:07, 10:22, 10:37, 10:52.
        let reads = [
            (at(10, 7), 50.0),
            (at(10, 22), 51.0),
            (at(10, 37), 52.0),
            (at(10, 52), 53.0),
        ];
        let got = derive(&reads, 15, Tz::UTC);
        // Complete: 10:15–10:30 and 10:30–10:45 (10:00 lacks a read before, 10:45 one after 11:00).
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].start, at(10, 15));
        assert_eq!(got[1].start, at(10, 30));
        for interval in got {
            assert!((interval.value - 1.0).abs() < 1e-9, "{interval:?}");
        }
    }

    #[test]
    fn paris_grid_starts_at_local_midnight() {
        // 2026-03-02 Paris is UTC+1: local midnight is 23:00 UTC the day before.
        // 60-minute intervals then start at hh:00 UTC; 7-minute ones count from 23:00 UTC.
        let zone: Tz = "Europe/Paris".parse().unwrap();
        let (start, end) = interval_containing(at(0, 20), 7, zone);
        // 80 minutes since 23:00 UTC → interval 11 starts at 77 min = 00:17 UTC.
        assert_eq!((start, end), (at(0, 17), at(0, 24)));
        let (start, end) = interval_containing(at(0, 20), 120, zone);
        // Two-hour intervals from 23:00 UTC: 23:00–01:00 UTC.
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 3, 1, 23, 0, 0).unwrap());
        assert_eq!(end, at(1, 0));
        // In UTC the same two-hour grid starts at 00:00.
        assert_eq!(interval_containing(at(0, 20), 120, Tz::UTC).0, at(0, 0));
    }

    #[test]
    fn paris_spring_forward_day_is_23_hours_and_quarters_stay_aligned() {
        // 2026-03-29: Paris goes from UTC+1 to UTC+2 at 01:00 UTC. The day runs
        // from 2026-03-28 23:00 UTC to 2026-03-29 22:00 UTC (23 h).
        let zone: Tz = "Europe/Paris".parse().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 3, 29, 21, 50, 0).unwrap();
        let (start, end) = interval_containing(t, 15, zone);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 3, 29, 21, 45, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 29, 22, 0, 0).unwrap());
        // 120-minute grid: 23 h leaves the last interval 60 minutes long (21:00–22:00 UTC).
        let (start, end) = interval_containing(t, 120, zone);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 3, 29, 21, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 29, 22, 0, 0).unwrap());
    }

    #[test]
    fn a_span_longer_than_two_intervals_is_a_gap() {
        let reads = [(at(10, 0), 0.0), (at(10, 15), 1.0), (at(11, 0), 4.0), (at(11, 15), 5.0)];
        let got = derive(&reads, 15, Tz::UTC);
        let starts: Vec<_> = got.iter().map(|i| (i.start, i.value)).collect();
        assert_eq!(starts, vec![(at(10, 0), 1.0), (at(11, 0), 1.0)]);
    }

    #[test]
    fn a_decrease_yields_one_flagged_zero_and_a_new_baseline() {
        // 10:00 100, 10:10 102, 10:20 5 (reset), 10:30 7, 10:45 10.
        let reads = [
            (at(10, 0), 100.0),
            (at(10, 10), 102.0),
            (at(10, 20), 5.0),
            (at(10, 30), 7.0),
            (at(10, 45), 10.0),
        ];
        let got = derive(&reads, 15, Tz::UTC);
        let summary: Vec<_> = got.iter().map(|i| (i.start, i.value, i.quality)).collect();
        // 10:00–10:15 overlaps the decreasing span 10:10–10:20: omitted.
        // 10:15–10:30 holds the later read (10:20): 0, flagged.
        // 10:30–10:45: 7 → 10 = 3 from the new baseline.
        assert_eq!(
            summary,
            vec![
                (at(10, 15), 0.0, Quality::NEGATIVE_DELTA),
                (at(10, 30), 3.0, Quality::GOOD)
            ]
        );
    }

    #[test]
    fn a_16_bit_register_wrapping_gives_its_increase_flagged_rollover() {
        // u16 at scale 1: wraps at 65 536. 65 530 → 65 534 → (wrap) 2 → 5.
        // The wrapped span adds 65 536 − 65 534 + 2 = 4.
        let reads = [
            (at(10, 0), 65_530.0),
            (at(10, 15), 65_534.0),
            (at(10, 30), 2.0),
            (at(10, 45), 5.0),
        ];
        let got = derive_with_wrap(&reads, 15, Tz::UTC, Some(65_536.0));
        let summary: Vec<_> = got.iter().map(|i| (i.start, i.value, i.quality)).collect();
        assert_eq!(
            summary,
            vec![
                (at(10, 0), 4.0, Quality::GOOD),
                (at(10, 15), 4.0, Quality::ROLLOVER),
                (at(10, 30), 3.0, Quality::GOOD),
            ]
        );
        // Without the wrap point the same decrease is a reset.
        let got = derive(&reads, 15, Tz::UTC);
        assert!(got.iter().any(|i| i.quality == Quality::NEGATIVE_DELTA));
    }

    #[test]
    fn a_wrap_straddling_a_boundary_is_split_and_both_sides_flagged() {
        // u32 at scale 0.01 kWh wraps at 42 949 672.96 kWh. 10:10 at
        // 42 949 672.90, 10:20 at 0.04: the span adds 0.06 + 0.04 = 0.10,
        // half before 10:15 and half after. 10:00 → 10:10 adds 0.10 more,
        // 10:20 → 10:30 adds 0.06.
        let wrap = 4_294_967_296.0 * 0.01;
        let reads = [
            (at(10, 0), 42_949_672.80),
            (at(10, 10), 42_949_672.90),
            (at(10, 20), 0.04),
            (at(10, 30), 0.10),
        ];
        let got = derive_with_wrap(&reads, 15, Tz::UTC, Some(wrap));
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].start, got[0].quality), (at(10, 0), Quality::ROLLOVER));
        assert_eq!((got[1].start, got[1].quality), (at(10, 15), Quality::ROLLOVER));
        // 10:00–10:15: 0.10 + 0.05; 10:15–10:30: 0.05 + 0.06.
        assert!((got[0].value - 0.15).abs() < 1e-6, "{:?}", got[0]);
        assert!((got[1].value - 0.11).abs() < 1e-6, "{:?}", got[1]);
    }

    #[test]
    fn a_fall_from_mid_range_is_a_replacement_not_a_wrap() {
        // 30 000 → 5 on a register wrapping at 65 536 would be an increase
        // of 35 541, over half the range: a new meter.
        assert_eq!(plausible_wrap(30_000.0, 5.0, 65_536.0), None);
        // From the top to mid-range neither.
        assert_eq!(plausible_wrap(65_530.0, 30_000.0, 65_536.0), None);
        // 65 500 → 100: 136, within 1 % (655.36).
        assert_eq!(plausible_wrap(65_500.0, 100.0, 65_536.0), Some(136.0));
        // A value beyond the range is not this register wrapping.
        assert_eq!(plausible_wrap(70_000.0, 1.0, 65_536.0), None);
        let reads = [(at(10, 0), 30_000.0), (at(10, 15), 30_010.0), (at(10, 30), 5.0)];
        let got = derive_with_wrap(&reads, 15, Tz::UTC, Some(65_536.0));
        let summary: Vec<_> = got.iter().map(|i| (i.start, i.value, i.quality)).collect();
        assert_eq!(
            summary,
            vec![
                (at(10, 0), 10.0, Quality::GOOD),
                (at(10, 15), 0.0, Quality::NEGATIVE_DELTA)
            ]
        );
    }

    proptest! {
        #[test]
        fn complete_intervals_sum_to_the_increase(
            offset in 0i64..900,
            steps in proptest::collection::vec((1i64..1800, 0.0f64..10.0), 2..40),
        ) {
            // Spans up to 30 minutes never exceed two 15-minute intervals.
            let mut t = at(10, 0) + Duration::seconds(offset);
            let mut v = 1000.0;
            let mut reads = vec![(t, v)];
            for (seconds, increase) in steps {
                t += Duration::seconds(seconds);
                v += increase;
                reads.push((t, v));
            }
            let got = derive(&reads, 15, Tz::UTC);
            prop_assert!(got.iter().all(|i| i.quality == Quality::GOOD && i.value >= 0.0));
            let Some(first) = got.first() else { return Ok(()); };
            let last = got.last().unwrap();
            let from = first.start;
            let to = last.start + Duration::minutes(15);
            // Register at a boundary, by linear interpolation between the reads around it.
            let register = |x: DateTime<Utc>| {
                let j = reads.iter().rposition(|(r, _)| *r <= x).unwrap();
                if reads[j].0 == x { return reads[j].1; }
                let ((t0, v0), (t1, v1)) = (reads[j], reads[j + 1]);
                v0 + (v1 - v0) * (x - t0).num_milliseconds() as f64 / (t1 - t0).num_milliseconds() as f64
            };
            let sum: f64 = got.iter().map(|i| i.value).sum();
            prop_assert!((sum - (register(to) - register(from))).abs() < 1e-6);
            // Contiguous: every interval between the first and the last is there.
            prop_assert_eq!(i64::try_from(got.len()).unwrap(), (to - from).num_minutes() / 15);
        }
    }
}
