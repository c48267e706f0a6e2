//! Estimates for the missing intervals of a gap.
//!
//! The rules, in order:
//!
//! 1. **Short gap** (at most [`SHORT_GAP_MINUTES`]): linear.
//!    - Where the register's increase `E` over the gap is known, it is
//!      spread in proportion to each slot's length: `E × minutes / gap minutes`.
//!    - Otherwise the rate (value per minute) is interpolated linearly
//!      between the midpoints of the stored intervals on either side of the
//!      gap, taken at each slot's midpoint, times the slot's length. With a
//!      neighbour on one side only (a trailing gap) its rate is held.
//! 2. **Long gap**: shaped by the same weekday's profile. Each slot's shape
//!    is the mean rate of the stored intervals that started at the same
//!    local weekday and time of day in the last [`PROFILE_WEEKS`] weeks
//!    (those that exist; estimates are never used to shape estimates),
//!    times the slot's length. A slot with no such interval takes the
//!    linear value of rule 1. Where `E` is known the shapes are scaled so
//!    they sum to `E` (spread by length if they sum to zero); otherwise they
//!    are the estimate as they are.
//!
//! No neighbour and no history: nothing to estimate from, nothing returned.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;

use super::gaps::{Gap, Slot};
use super::register_deltas::plausible_wrap;

/// The longest gap estimated linearly.
pub const SHORT_GAP_MINUTES: i64 = 120;

/// How many weeks back the same weekday's profile is looked for.
pub const PROFILE_WEEKS: i64 = 4;

/// A stored interval: its start, length and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Known {
    pub start: DateTime<Utc>,
    pub minutes: u32,
    pub value: f64,
}

impl Known {
    fn rate(&self) -> f64 {
        self.value / f64::from(self.minutes.max(1))
    }

    fn middle(&self) -> DateTime<Utc> {
        middle(self.start, self.minutes)
    }
}

/// The midpoint of an interval of `minutes` starting at `start`.
fn middle(start: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
    start + Duration::seconds(i64::from(minutes) * 30)
}

/// What an estimate may go on.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    /// The stored interval ending where the gap starts, if any.
    pub before: Option<Known>,
    /// The stored interval starting where the gap ends, if any.
    pub after: Option<Known>,
    /// The register's increase over the gap, where the channel is a
    /// cumulative register and reads bracket the gap.
    pub increase: Option<f64>,
    /// Measured intervals (not estimates) of the weeks before, by start.
    pub history: &'a BTreeMap<DateTime<Utc>, Known>,
    pub zone: Tz,
}

/// One estimated interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub start: DateTime<Utc>,
    pub minutes: u32,
    pub value: f64,
}

/// Estimates every slot of `gap` by the rules above, or none.
pub fn estimate(gap: &Gap, evidence: &Evidence<'_>) -> Vec<Estimate> {
    let total: f64 = gap.slots.iter().map(|slot| f64::from(slot.minutes)).sum();
    let by_length = |e: f64| -> Vec<f64> {
        gap.slots
            .iter()
            .map(|slot| e * f64::from(slot.minutes) / total)
            .collect()
    };
    let values: Option<Vec<f64>> = if gap.minutes() <= SHORT_GAP_MINUTES {
        match evidence.increase {
            Some(e) => Some(by_length(e)),
            None => gap.slots.iter().map(|slot| linear(slot, evidence)).collect(),
        }
    } else {
        let shape: Option<Vec<f64>> = gap
            .slots
            .iter()
            .map(|slot| same_weekday(slot, evidence).or_else(|| linear(slot, evidence)))
            .collect();
        match (shape, evidence.increase) {
            (Some(shape), Some(e)) => {
                let sum: f64 = shape.iter().sum();
                if sum > 0.0 {
                    Some(shape.iter().map(|v| v * e / sum).collect())
                } else {
                    Some(by_length(e))
                }
            }
            (Some(shape), None) => Some(shape),
            (None, Some(e)) => Some(by_length(e)),
            (None, None) => None,
        }
    };
    values.map_or_else(Vec::new, |values| {
        gap.slots
            .iter()
            .zip(values)
            .map(|(slot, value)| Estimate {
                start: slot.start,
                minutes: slot.minutes,
                value,
            })
            .collect()
    })
}

/// The register's increase over `[start, end)` from its reads (instant,
/// value; oldest first), where it can be told: the register at each end is
/// a read there or interpolated between the reads around it, no further
/// apart than `longest`; a decrease anywhere in between (a meter replaced
/// or reset) makes the increase unknown. A register that rolls over at
/// `wrap` (its profile's `[energy_display]`) and falls by a plausible wrap
/// ([`plausible_wrap`]) counts on past it.
pub fn register_increase(
    reads: &[(DateTime<Utc>, f64)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    longest: Duration,
    wrap: Option<f64>,
) -> Option<f64> {
    let unwrapped = wrap.map(|wrap| unwrap_rollovers(reads, wrap));
    let reads = unwrapped.as_deref().unwrap_or(reads);
    let at = |x: DateTime<Utc>| -> Option<f64> {
        let after = reads.iter().position(|(t, _)| *t >= x)?;
        let (t1, v1) = reads[after];
        if t1 == x {
            return Some(v1);
        }
        let (t0, v0) = reads[after.checked_sub(1)?];
        if t1 - t0 > longest {
            return None;
        }
        Some(v0 + (v1 - v0) * (x - t0).num_milliseconds() as f64 / (t1 - t0).num_milliseconds() as f64)
    };
    let (from, to) = (at(start)?, at(end)?);
    let inside = reads.windows(2).filter(|pair| pair[1].0 > start && pair[0].0 < end);
    if inside.clone().any(|pair| pair[1].1 < pair[0].1) || to < from {
        return None;
    }
    Some(to - from)
}

/// The reads with every plausible rollover at `wrap` counted on: each
/// value after one is raised by `wrap`, so the series only falls where the
/// meter was reset or replaced.
fn unwrap_rollovers(reads: &[(DateTime<Utc>, f64)], wrap: f64) -> Vec<(DateTime<Utc>, f64)> {
    let mut carried = 0.0;
    let mut out: Vec<(DateTime<Utc>, f64)> = Vec::with_capacity(reads.len());
    for (index, (at, value)) in reads.iter().enumerate() {
        if let Some((_, before)) = index.checked_sub(1).map(|i| reads[i])
            && plausible_wrap(before, *value, wrap).is_some()
        {
            carried += wrap;
        }
        out.push((*at, value + carried));
    }
    out
}

/// Rule 1 without a register: the neighbours' rates interpolated at the
/// slot's midpoint, times its length.
fn linear(slot: &Slot, evidence: &Evidence<'_>) -> Option<f64> {
    let middle = middle(slot.start, slot.minutes);
    let rate = match (evidence.before, evidence.after) {
        (Some(a), Some(b)) => {
            let span = (b.middle() - a.middle()).num_milliseconds() as f64;
            let x = (middle - a.middle()).num_milliseconds() as f64 / span;
            a.rate() + (b.rate() - a.rate()) * x
        }
        (Some(only), None) | (None, Some(only)) => only.rate(),
        (None, None) => return None,
    };
    Some(rate * f64::from(slot.minutes))
}

/// Rule 2's shape: the mean rate at the same local weekday and time in the
/// weeks before, times the slot's length.
fn same_weekday(slot: &Slot, evidence: &Evidence<'_>) -> Option<f64> {
    let local = slot.start.with_timezone(&evidence.zone).naive_local();
    let rates: Vec<f64> = (1..=PROFILE_WEEKS)
        .filter_map(|weeks| {
            let earlier = evidence
                .zone
                .from_local_datetime(&(local - Duration::weeks(weeks)))
                .earliest()?;
            evidence.history.get(&earlier.with_timezone(&Utc))
        })
        .map(Known::rate)
        .collect();
    if rates.is_empty() {
        return None;
    }
    Some(rates.iter().sum::<f64>() / rates.len() as f64 * f64::from(slot.minutes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::gaps::find_gaps;

    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, h, m, 0).unwrap()
    }

    fn known(start: DateTime<Utc>, minutes: u32, value: f64) -> Known {
        Known { start, minutes, value }
    }

    /// Evidence in UTC.
    fn evidence<'a>(
        before: Option<Known>,
        after: Option<Known>,
        increase: Option<f64>,
        history: &'a BTreeMap<DateTime<Utc>, Known>,
    ) -> Evidence<'a> {
        Evidence {
            before,
            after,
            increase,
            history,
            zone: Tz::UTC,
        }
    }

    fn values(estimates: &[Estimate]) -> Vec<(DateTime<Utc>, f64)> {
        estimates.iter().map(|e| (e.start, e.value)).collect()
    }

    fn close(got: &[Estimate], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g.value - w).abs() < 1e-9, "{got:?} against {want:?}");
        }
    }

    #[test]
    fn a_short_gap_interpolates_between_its_neighbours() {
        // 1.0 kWh in 10:00–10:15, 2.0 kWh in 11:00–11:15; midpoints 10:07:30
        // and 11:07:30, an hour apart. The slots' midpoints 10:22:30, 10:37:30
        // and 10:52:30 sit at 1/4, 1/2, 3/4: 1.25, 1.5, 1.75 kWh.
        let before = known(at(18, 10, 0), 15, 1.0);
        let after = known(at(18, 11, 0), 15, 2.0);
        let history = BTreeMap::new();
        let gap = &find_gaps(&[(before.start, 15), (after.start, 15)], None, Tz::UTC)[0];
        let evidence = evidence(Some(before), Some(after), None, &history);
        let got = estimate(gap, &evidence);
        assert_eq!(
            values(&got),
            vec![(at(18, 10, 15), 1.25), (at(18, 10, 30), 1.5), (at(18, 10, 45), 1.75)]
        );
        assert!(got.iter().all(|e| e.minutes == 15));
    }

    #[test]
    fn a_short_gap_spreads_the_register_increase() {
        // Register rose 6 kWh over the 45-minute gap: 2 kWh per quarter.
        let before = known(at(18, 10, 0), 15, 1.0);
        let after = known(at(18, 11, 0), 15, 2.0);
        let history = BTreeMap::new();
        let gap = &find_gaps(&[(before.start, 15), (after.start, 15)], None, Tz::UTC)[0];
        let evidence = evidence(Some(before), Some(after), Some(6.0), &history);
        close(&estimate(gap, &evidence), &[2.0, 2.0, 2.0]);
    }

    #[test]
    fn a_trailing_gap_holds_the_last_rate() {
        let before = known(at(18, 10, 0), 30, 3.0);
        let history = BTreeMap::new();
        let gap = &find_gaps(&[(before.start, 30)], Some(at(18, 11, 30)), Tz::UTC)[0];
        let evidence = evidence(Some(before), None, None, &history);
        close(&estimate(gap, &evidence), &[3.0, 3.0]);
    }

    /// Wednesday 2026-11-18, 08:00–12:00 UTC missing (hourly intervals); the
    /// Wednesdays one and two weeks before hold 1, 2, 3, 4 and 1, 4, 3, 2
    /// kWh at those hours, the two before that nothing.
    fn long_gap() -> (Gap, BTreeMap<DateTime<Utc>, Known>, Known, Known) {
        let before = known(at(18, 7, 0), 60, 5.0);
        let after = known(at(18, 12, 0), 60, 5.0);
        let mut history = BTreeMap::new();
        for (day, week) in [(11, [1.0, 2.0, 3.0, 4.0]), (4, [1.0, 4.0, 3.0, 2.0])] {
            for (hour, value) in (8..12).zip(week) {
                history.insert(at(day, hour, 0), known(at(day, hour, 0), 60, value));
            }
        }
        let gap = find_gaps(&[(before.start, 60), (after.start, 60)], None, Tz::UTC).remove(0);
        (gap, history, before, after)
    }

    #[test]
    fn a_long_gap_takes_the_same_weekdays_mean() {
        // Means per hour: (1+1)/2, (2+4)/2, (3+3)/2, (4+2)/2 = 1, 3, 3, 3.
        let (gap, history, before, after) = long_gap();
        assert_eq!(gap.minutes(), 240);
        let evidence = evidence(Some(before), Some(after), None, &history);
        close(&estimate(&gap, &evidence), &[1.0, 3.0, 3.0, 3.0]);
    }

    #[test]
    fn a_long_gap_is_scaled_to_the_register_increase() {
        // Shape 1, 3, 3, 3 sums to 10; the register rose 20: 2, 6, 6, 6.
        let (gap, history, before, after) = long_gap();
        let evidence = evidence(Some(before), Some(after), Some(20.0), &history);
        close(&estimate(&gap, &evidence), &[2.0, 6.0, 6.0, 6.0]);
    }

    #[test]
    fn a_long_gap_without_history_is_linear_where_it_has_none() {
        // Only 08:00 one week before (2 kWh); the other hours interpolate
        // between 5 kWh at 07:30 and 5 kWh at 12:30: 5 each.
        let (gap, _, before, after) = long_gap();
        let history = BTreeMap::from([(at(11, 8, 0), known(at(11, 8, 0), 60, 2.0))]);
        let evidence = evidence(Some(before), Some(after), None, &history);
        close(&estimate(&gap, &evidence), &[2.0, 5.0, 5.0, 5.0]);
    }

    #[test]
    fn the_same_weekday_is_the_same_local_time_across_a_dst_change() {
        // Paris: Wednesday 2026-11-04 09:00 local is 08:00 UTC (UTC+1);
        // 2026-10-21 09:00 local was 07:00 UTC (UTC+2, before 25 October).
        let zone: Tz = "Europe/Paris".parse().unwrap();
        let slot = Slot {
            start: at(4, 8, 0),
            minutes: 60,
        };
        let october = Utc.with_ymd_and_hms(2026, 10, 21, 7, 0, 0).unwrap();
        let history = BTreeMap::from([(october, known(october, 60, 7.0))]);
        let evidence = Evidence {
            zone,
            ..evidence(None, None, None, &history)
        };
        assert_eq!(same_weekday(&slot, &evidence), Some(7.0));
    }

    #[test]
    fn the_register_increase_is_read_or_interpolated_at_each_end() {
        // Reads 09:50 100, 10:05 103 (10:00 interpolates to 102), a silence,
        // 12:10 140, 12:20 141 (12:15 interpolates to 140.5): 38.5 kWh.
        let reads = [
            (at(18, 9, 50), 100.0),
            (at(18, 10, 5), 103.0),
            (at(18, 12, 10), 140.0),
            (at(18, 12, 20), 141.0),
        ];
        let longest = Duration::minutes(30);
        let got = register_increase(&reads, at(18, 10, 0), at(18, 12, 15), longest, None).unwrap();
        assert!((got - 38.5).abs() < 1e-9, "{got}");
        // An end inside the silence cannot be told.
        assert_eq!(
            register_increase(&reads, at(18, 10, 0), at(18, 11, 0), longest, None),
            None
        );
        // Nor an end before the first read.
        assert_eq!(
            register_increase(&reads, at(18, 9, 0), at(18, 12, 15), longest, None),
            None
        );
        // A decrease in between (a meter replaced) makes it unknown.
        let replaced = [(at(18, 10, 0), 100.0), (at(18, 10, 10), 2.0), (at(18, 10, 20), 4.0)];
        assert_eq!(
            register_increase(&replaced, at(18, 10, 0), at(18, 10, 20), longest, None),
            None
        );
        // The same fall is a reset, not a rollover, for a register that
        // wraps at 100 000 kWh: 98 far below the top.
        assert_eq!(
            register_increase(&replaced, at(18, 10, 0), at(18, 10, 20), longest, Some(100_000.0)),
            None
        );
    }

    #[test]
    fn a_register_rolling_over_at_its_digits_counts_on() {
        // An A1000 at 7 digits, 2 decimals: 99 998.00 at 10:00, 99 999.50
        // at 10:10, 1.00 at 10:20 (rolled over), 2.00 at 10:30. From 10:05
        // (99 998.75) to 10:25 (1.50 + 100 000): 2.75 kWh.
        let reads = [
            (at(18, 10, 0), 99_998.0),
            (at(18, 10, 10), 99_999.5),
            (at(18, 10, 20), 1.0),
            (at(18, 10, 30), 2.0),
        ];
        let longest = Duration::minutes(30);
        let got = register_increase(&reads, at(18, 10, 5), at(18, 10, 25), longest, Some(100_000.0)).unwrap();
        assert!((got - 2.75).abs() < 1e-6, "{got}");
        // Without the wrap point it is a fall: unknown.
        assert_eq!(
            register_increase(&reads, at(18, 10, 5), at(18, 10, 25), longest, None),
            None
        );
    }

    #[test]
    fn nothing_to_go_on_gives_nothing() {
        let history = BTreeMap::new();
        let gap = find_gaps(&[(at(18, 10, 0), 15), (at(18, 10, 30), 15)], None, Tz::UTC).remove(0);
        let evidence = evidence(None, None, None, &history);
        assert!(estimate(&gap, &evidence).is_empty());
    }
}
