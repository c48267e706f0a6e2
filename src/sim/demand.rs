//! Maximum demand: the largest average power over a demand period, per
//! quantity and tariff rate, with the meter time it happened.
//!
//! The TH40C manual gives demand registers (App. G, 0x9010.., time stamps
//! 0xA010.. as MMDD and HHMM) but not the demand period; the simulator uses
//! fixed 15-minute blocks aligned on the quarter hour, the common default of
//! European meters. A block counts for the rate in force when it starts
//! (tariffs change on whole hours, so a block never straddles two rates).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Timelike, Utc};

/// Length of one demand period.
pub(crate) const PERIOD_SECONDS: i64 = 900;

/// Maximum demands by (OBIS group C 1–4, rate 0–4; 0 = any rate): value in
/// kW or kvar, and the meter time the period ended (whole minutes).
pub(crate) type DemandLog = HashMap<(u8, u8), (f64, DateTime<Utc>)>;

/// The demand period in progress and the maxima so far.
#[derive(Debug, Clone)]
pub(crate) struct DemandMeter {
    block_rate: u8,
    /// Energy of the block so far by group C 1–4: kWh import, kWh export,
    /// kvarh import, kvarh export.
    block_energy: [f64; 4],
    /// Hours of the block seen so far (less than a period for the first,
    /// partial block after start).
    block_hours: f64,
    pub maxima: DemandLog,
}

impl DemandMeter {
    pub(crate) fn new(rate: u8, maxima: DemandLog) -> DemandMeter {
        DemandMeter {
            block_rate: rate,
            block_energy: [0.0; 4],
            block_hours: 0.0,
            maxima,
        }
    }

    /// Adds one integration step (which never crosses a period boundary).
    pub(crate) fn add(&mut self, energy: [f64; 4], hours: f64) {
        for (sum, added) in self.block_energy.iter_mut().zip(energy) {
            *sum += added;
        }
        self.block_hours += hours;
    }

    /// Ends the block: its average powers become maxima where they exceed
    /// them, stamped `meter_end`; the next block counts for `next_rate`.
    pub(crate) fn close(&mut self, meter_end: DateTime<Utc>, next_rate: u8) {
        let stamp = whole_minute(meter_end);
        if self.block_hours > 0.0 {
            for (index, energy) in self.block_energy.iter().enumerate() {
                let average = energy / self.block_hours;
                let c = index as u8 + 1;
                for rate in [0, self.block_rate] {
                    let entry = self.maxima.entry((c, rate)).or_insert((0.0, stamp));
                    if average > entry.0 {
                        *entry = (average, stamp);
                    }
                }
            }
        }
        self.block_rate = next_rate;
        self.block_energy = [0.0; 4];
        self.block_hours = 0.0;
    }
}

/// The first period boundary strictly after `at`.
pub(crate) fn next_boundary(at: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = at.timestamp();
    let next = (seconds.div_euclid(PERIOD_SECONDS) + 1) * PERIOD_SECONDS;
    DateTime::from_timestamp(next, 0).unwrap_or(at + Duration::seconds(PERIOD_SECONDS))
}

/// The period boundary at or before `at`.
pub(crate) fn floor_to_period(at: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = at.timestamp().div_euclid(PERIOD_SECONDS) * PERIOD_SECONDS;
    DateTime::from_timestamp(seconds, 0).unwrap_or(at)
}

/// `at` without seconds: MMDD/HHMM registers carry whole minutes.
pub(crate) fn whole_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_second(0).and_then(|at| at.with_nanosecond(0)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_maximum_is_the_largest_block_average() {
        let mut meter = DemandMeter::new(1, DemandLog::new());
        let end = Utc.with_ymd_and_hms(2026, 1, 5, 9, 15, 0).unwrap();
        // 15 minutes at 4 kW, then 15 minutes at 2 kW with a 1-minute 60 kW spike:
        // the second block averages (14 × 2 + 60) / 15 kW.
        for _ in 0..15 {
            meter.add([4.0 / 60.0, 0.0, 1.0 / 60.0, 0.0], 1.0 / 60.0);
        }
        meter.close(end, 2);
        for minute in 0..15 {
            let kw = if minute == 7 { 60.0 } else { 2.0 };
            meter.add([kw / 60.0, 0.0, 0.0, 0.0], 1.0 / 60.0);
        }
        meter.close(end + Duration::minutes(15), 2);
        let (value, at) = meter.maxima[&(1, 0)];
        assert!((value - 88.0 / 15.0).abs() < 1e-9, "{value}");
        assert_eq!(at, end + Duration::minutes(15));
        assert!((meter.maxima[&(1, 1)].0 - 4.0).abs() < 1e-9);
        assert_eq!(meter.maxima[&(1, 1)].1, end);
        assert_eq!(meter.maxima[&(1, 2)], (value, at));
        assert_eq!(meter.maxima[&(2, 0)].0, 0.0);
    }

    #[test]
    fn boundaries_are_quarter_hours() {
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 9, 14, 59).unwrap();
        assert_eq!(next_boundary(at), Utc.with_ymd_and_hms(2026, 1, 5, 9, 15, 0).unwrap());
        let on = Utc.with_ymd_and_hms(2026, 1, 5, 9, 15, 0).unwrap();
        assert_eq!(next_boundary(on), Utc.with_ymd_and_hms(2026, 1, 5, 9, 30, 0).unwrap());
        assert_eq!(floor_to_period(at), Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    }
}
