//! The TH40C's statistics: the largest and smallest instantaneous values,
//! each with the meter time it occurred (TH40C manual, App. G: maxima at
//! 0x1115–0x1161, minima at 0x11C4–0x1210; V and I per phase, P, Q, S, PF,
//! frequency).
//!
//! The manual says neither how often the meter samples them nor when it
//! starts them again; the simulator takes every instantaneous value it
//! serves (and, for a fresh meter, a week of quarter-hour samples before it
//! starts) and never starts them again, so a maximum is never below the
//! instantaneous value served with it, nor a minimum above it.

use std::collections::HashMap;

use chrono::{DateTime, Timelike, Utc};

use super::site::noise;

/// The quantities kept, by OBIS value group C: voltage and current of L1,
/// L2, L3; total active, reactive and apparent power; total power factor;
/// frequency.
pub(crate) const QUANTITIES: [u8; 11] = [32, 52, 72, 31, 51, 71, 1, 3, 9, 13, 14];

/// Which statistic an OBIS code (value groups C and D) names, as the TH40C
/// profile codes them (docs/PROFILES.md, "TH40C statistics"): D = 6
/// maximum and D = 3 minimum, except for the powers, whose D = 6 is the
/// maximum demand: D = 16 and D = 13. Returns the quantity and whether it
/// is the maximum.
pub(crate) fn statistic(c: u8, d: u8) -> Option<(u8, bool)> {
    let power = matches!(c, 1 | 3 | 9);
    let kept = QUANTITIES.contains(&c);
    match d {
        6 if kept && !power => Some((c, true)),
        3 if kept && !power => Some((c, false)),
        16 if power => Some((c, true)),
        13 if power => Some((c, false)),
        _ => None,
    }
}

/// The simulated grid frequency at `at`: 50 Hz within ±0.05 Hz, changing
/// every minute (EN 50160 allows ±1 % for 99.5 % of a year).
pub(crate) fn frequency(seed: u64, at: DateTime<Utc>) -> f64 {
    let minute = (at.timestamp() / 60) as u64;
    50.0 + 0.1 * (noise(seed, minute, 31) - 0.5)
}

/// One quantity's largest and smallest value, each with its meter time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    max: (f64, DateTime<Utc>),
    min: (f64, DateTime<Utc>),
}

/// The maxima and minima so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Extremes(HashMap<u8, Span>);

impl Extremes {
    /// Takes the values of one instant (by C group), seen when the meter's
    /// clock read `meter_time` (kept to the whole second, as the registers
    /// give it). A new extreme replaces an equal old one: the time is that
    /// of the latest occurrence.
    pub(crate) fn sample(&mut self, values: impl IntoIterator<Item = (u8, f64)>, meter_time: DateTime<Utc>) {
        let stamp = meter_time.with_nanosecond(0).unwrap_or(meter_time);
        for (c, value) in values {
            let span = self.0.entry(c).or_insert(Span {
                max: (value, stamp),
                min: (value, stamp),
            });
            if value >= span.max.0 {
                span.max = (value, stamp);
            }
            if value <= span.min.0 {
                span.min = (value, stamp);
            }
        }
    }

    /// The maximum (`true`) or minimum of quantity `c`, with its meter time.
    pub(crate) fn get(&self, c: u8, maximum: bool) -> Option<(f64, DateTime<Utc>)> {
        self.0.get(&c).map(|span| if maximum { span.max } else { span.min })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn codes_name_the_statistic_and_leave_the_demand_alone() {
        assert_eq!(statistic(32, 6), Some((32, true)));
        assert_eq!(statistic(71, 3), Some((71, false)));
        assert_eq!(statistic(14, 6), Some((14, true)));
        assert_eq!(statistic(1, 16), Some((1, true)));
        assert_eq!(statistic(9, 13), Some((9, false)));
        assert_eq!(statistic(1, 6), None, "1-1:1.6.0 is the maximum demand");
        assert_eq!(statistic(2, 16), None);
        assert_eq!(statistic(32, 7), None);
    }

    #[test]
    fn extremes_keep_the_value_and_time_of_the_latest_occurrence() {
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let mut extremes = Extremes::default();
        extremes.sample([(32, 230.0), (1, -2.0)], at);
        extremes.sample([(32, 235.5), (1, 4.0)], at + Duration::milliseconds(61_700));
        extremes.sample([(32, 228.0), (1, -2.0)], at + Duration::minutes(2));
        let later = at + Duration::seconds(61);
        assert_eq!(extremes.get(32, true), Some((235.5, later)), "whole seconds");
        assert_eq!(extremes.get(32, false), Some((228.0, at + Duration::minutes(2))));
        assert_eq!(extremes.get(1, true), Some((4.0, later)));
        assert_eq!(extremes.get(1, false), Some((-2.0, at + Duration::minutes(2))));
        assert_eq!(extremes.get(13, true), None);
    }

    #[test]
    fn frequency_stays_near_50_hz() {
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        for minute in 0..500 {
            let f = frequency(3, at + Duration::minutes(minute));
            assert!((49.95..=50.05).contains(&f), "{f}");
        }
    }
}
