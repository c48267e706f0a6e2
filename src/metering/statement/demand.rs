//! Maximum demand per tariff band: the largest average power over a
//! window, as the meters compute it, from the stored intervals.
//!
//! **Windows** (A1000 manual §1.2 item 2 and §3.2.2; TH40C manual §2,
//! "Registrazione della potenza massima", and §5, "Indicatore di potenza
//! massima"): in block mode a window is one demand cycle of 5, 10, 15, 30
//! or 60 minutes, the cycles following each other; in rolling mode a
//! window of one cycle ends every rolling interval of 1, 2, 3 or 5 minutes,
//! the cycle an integer multiple of it, and a 60-minute cycle only with 2,
//! 3 or 5 minutes. Demand is the energy in the window divided by its
//! length (kW from kWh). Windows are aligned to whole multiples of their
//! step in UTC, which is the local clock's alignment in every zone whose
//! offset is a whole number of steps (Europe/Rome: every step).
//!
//! **The band of a window**: the A1000 manual (§1.2 item 4) says total
//! demand "is not affected when time block is changed, but a rolling
//! interval before the change will be skipped when calculating tariff
//! demand. The recording will start from zero". So a window counts towards
//! a band's maximum only if it lies wholly in that band; one that straddles
//! a switch counts towards the total maximum only. The time of a maximum is
//! the end of its window: the meters register the average power "al
//! termine di ogni periodo di integrazione" (TH40C manual §2).
//!
//! Energy inside a window comes from the intervals by the same
//! cumulative-floor rule as the band split ([`super::energy`]): a window
//! shorter than an interval sees the interval's average, the finest the
//! stored data can tell.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::energy::share_between;
use super::quantity::{Quantity, Slice};
use crate::metering::tou::{BandSplit, Piece};

/// Demand cycles the meters offer, minutes (A1000 §3.2.2, TH40C §5).
pub(crate) const CYCLES: [u32; 5] = [5, 10, 15, 30, 60];
/// Rolling intervals the meters offer, minutes (A1000 §3.2.2, TH40C §5).
pub(crate) const STEPS: [u32; 4] = [1, 2, 3, 5];

/// How demand is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DemandMethod {
    Block { cycle_minutes: u32 },
    Rolling { cycle_minutes: u32, step_minutes: u32 },
}

/// A demand setting the meters do not offer, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub(crate) struct DemandError {
    pub field: &'static str,
    pub reason: String,
}

impl DemandMethod {
    /// A block method; the cycle must be one the meters offer.
    pub(crate) fn block(cycle_minutes: u32) -> Result<Self, DemandError> {
        check_cycle(cycle_minutes)?;
        Ok(DemandMethod::Block { cycle_minutes })
    }

    /// A rolling method, by the rules of the A1000 manual §1.2 item 2.
    pub(crate) fn rolling(cycle_minutes: u32, step_minutes: u32) -> Result<Self, DemandError> {
        check_cycle(cycle_minutes)?;
        let refuse = |reason: String| DemandError {
            field: "step_minutes",
            reason,
        };
        if !STEPS.contains(&step_minutes) {
            return Err(refuse(format!(
                "{step_minutes} is not a rolling interval; use 1, 2, 3 or 5"
            )));
        }
        if cycle_minutes == 60 && step_minutes == 1 {
            return Err(refuse("a 60-minute cycle rolls by 2, 3 or 5 minutes only".into()));
        }
        if cycle_minutes % step_minutes != 0 {
            return Err(refuse(format!(
                "the cycle ({cycle_minutes} min) must be a whole multiple of the rolling interval"
            )));
        }
        Ok(DemandMethod::Rolling {
            cycle_minutes,
            step_minutes,
        })
    }

    pub(crate) fn cycle_minutes(self) -> u32 {
        match self {
            DemandMethod::Block { cycle_minutes } | DemandMethod::Rolling { cycle_minutes, .. } => cycle_minutes,
        }
    }

    /// How far apart window ends are.
    pub(crate) fn step_minutes(self) -> u32 {
        match self {
            DemandMethod::Block { cycle_minutes } => cycle_minutes,
            DemandMethod::Rolling { step_minutes, .. } => step_minutes,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            DemandMethod::Block { .. } => "block",
            DemandMethod::Rolling { .. } => "rolling",
        }
    }
}

impl Default for DemandMethod {
    /// 15-minute blocks: the load-profile period of both the A1000 (§1.6)
    /// and the TH40C (factory default).
    fn default() -> Self {
        DemandMethod::Block { cycle_minutes: 15 }
    }
}

fn check_cycle(cycle_minutes: u32) -> Result<(), DemandError> {
    if CYCLES.contains(&cycle_minutes) {
        Ok(())
    } else {
        Err(DemandError {
            field: "cycle_minutes",
            reason: format!("{cycle_minutes} is not a demand cycle; use 5, 10, 15, 30 or 60"),
        })
    }
}

/// A maximum: the window's energy in milli-units and the window's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peak {
    pub milli: i128,
    pub at: DateTime<Utc>,
    pub cycle_minutes: u32,
}

impl Peak {
    /// The average power of the window in kW (kvar, kVA): milli-units ×
    /// 60 / (10⁶ × cycle minutes).
    pub(crate) fn power(self) -> f64 {
        // Energies of a statement are far below 2^53 mWh.
        #[allow(clippy::cast_precision_loss)]
        let milli = self.milli as f64;
        milli * 60.0 / (1e6 * f64::from(self.cycle_minutes))
    }
}

/// The maxima of one quantity: per band (windows wholly inside it) and
/// over every window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Demand {
    pub by_band: BTreeMap<String, Peak>,
    pub total: Option<Peak>,
}

/// The maximum demand of `quantity` in `[from, to)`: windows wholly inside
/// the period, each window's band by the module doc's rule. Of equal
/// maxima the earliest is kept.
pub(crate) fn maximum_demand(
    slices: &[Slice],
    quantity: &Quantity,
    split: &dyn BandSplit,
    method: DemandMethod,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Demand {
    let step = i64::from(method.step_minutes()) * 60;
    let cycle_cells = i64::from(method.cycle_minutes() / method.step_minutes());
    // Cells of one step, from the first aligned instant at or after `from`.
    let floor = from.timestamp().div_euclid(step) * step;
    let origin = if floor < from.timestamp() { floor + step } else { floor };
    let cell_count = usize::try_from((to.timestamp() - origin).div_euclid(step)).unwrap_or(0);
    if cell_count == 0 {
        return Demand::default();
    }
    let cell_start = |i: i64| DateTime::from_timestamp(origin + i * step, 0).unwrap_or(from);
    let mut cells = vec![0i128; cell_count];
    for slice in slices.iter().filter(|slice| &slice.quantity == quantity) {
        let first = (slice.start.timestamp() - origin).div_euclid(step).max(0);
        let last = (slice.end.timestamp() - origin + step - 1).div_euclid(step);
        for i in first..last.min(cell_count as i64) {
            let start = cell_start(i);
            cells[i as usize] += share_between(slice, start, start + Duration::seconds(step));
        }
    }
    let runs = band_runs(split.pieces(cell_start(0), cell_start(cell_count as i64)));
    let mut demand = Demand::default();
    let mut window: i128 = cells.iter().take(cycle_cells as usize).sum();
    let window_count = cell_count as i64 - cycle_cells + 1;
    for first in 0..window_count.max(0) {
        if first > 0 {
            window += cells[(first + cycle_cells - 1) as usize] - cells[(first - 1) as usize];
        }
        let start = cell_start(first);
        let end = cell_start(first + cycle_cells);
        let peak = Peak {
            milli: window,
            at: end,
            cycle_minutes: method.cycle_minutes(),
        };
        keep_larger(&mut demand.total, peak);
        if let Some(band) = band_of(&runs, start, end) {
            let mut current = demand.by_band.get(band).copied();
            keep_larger(&mut current, peak);
            if let Some(current) = current {
                demand.by_band.insert(band.to_owned(), current);
            }
        }
    }
    demand
}

fn keep_larger(current: &mut Option<Peak>, candidate: Peak) {
    if current.is_none_or(|peak| candidate.milli > peak.milli) {
        *current = Some(candidate);
    }
}

/// Neighbouring pieces of one band merged.
fn band_runs(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut runs: Vec<Piece> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match runs.last_mut() {
            Some(last) if last.band == piece.band && last.to == piece.from => last.to = piece.to,
            _ => runs.push(piece),
        }
    }
    runs
}

/// The band `[start, end)` lies wholly in, if one.
fn band_of(runs: &[Piece], start: DateTime<Utc>, end: DateTime<Utc>) -> Option<&str> {
    let index = runs.partition_point(|run| run.to <= start);
    let run = runs.get(index)?;
    (run.from <= start && end <= run.to).then_some(run.band.as_str())
}

#[cfg(test)]
mod tests {
    use super::super::energy::tests::{FixedHours, at, kwh};
    use super::super::quantity::slices;
    use super::*;

    fn import_slices(values: &[(DateTime<Utc>, u32, f64)]) -> (Vec<Slice>, Quantity) {
        let intervals: Vec<_> = values.iter().map(|(s, m, v)| kwh("1-1:1.29.0", *s, *m, *v)).collect();
        let (slices, _) = slices(&intervals);
        let quantity = slices[0].quantity.clone();
        (slices, quantity)
    }

    #[test]
    fn settings_the_meters_do_not_offer_are_refused_by_field() {
        assert_eq!(DemandMethod::block(20).unwrap_err().field, "cycle_minutes");
        assert_eq!(DemandMethod::rolling(60, 1).unwrap_err().field, "step_minutes");
        assert_eq!(DemandMethod::rolling(10, 3).unwrap_err().field, "step_minutes");
        assert_eq!(DemandMethod::rolling(15, 4).unwrap_err().field, "step_minutes");
        assert!(DemandMethod::rolling(60, 5).is_ok());
        assert!(DemandMethod::rolling(15, 3).is_ok());
    }

    #[test]
    fn block_demand_is_the_largest_cycle_and_its_end() {
        // Quarter hours 07:00–09:00 holding 1, 2, 3, 4, 5, 1, 1, 1 kWh; day from 08:00.
        let values: Vec<_> = [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 1.0, 1.0]
            .iter()
            .enumerate()
            .map(|(i, v)| (at(2, 7, 0) + Duration::minutes(15 * i as i64), 15, *v))
            .collect();
        let (slices, quantity) = import_slices(&values);
        let split = FixedHours {
            day_from: 8,
            day_to: 20,
        };
        let method = DemandMethod::block(30).unwrap();
        let demand = maximum_demand(&slices, &quantity, &split, method, at(2, 0, 0), at(3, 0, 0));
        // Half hours: 07:00 3 kWh, 07:30 7 kWh, 08:00 6 kWh, 08:30 2 kWh → 14 kW ending 08:00, night.
        let night = demand.by_band["night"];
        assert_eq!((night.milli, night.at), (7_000_000, at(2, 8, 0)));
        assert!((night.power() - 14.0).abs() < 1e-12);
        let day = demand.by_band["day"];
        assert_eq!((day.milli, day.at), (6_000_000, at(2, 8, 30)));
        assert_eq!(demand.total.unwrap().at, at(2, 8, 0));
    }

    #[test]
    fn a_rolling_window_across_a_switch_counts_for_the_total_only() {
        // 07:45–08:00 4 kWh, 08:00–08:15 4 kWh, the rest nothing; 15-minute cycle rolling by 5.
        let (slices, quantity) = import_slices(&[(at(2, 7, 45), 15, 4.0), (at(2, 8, 0), 15, 4.0)]);
        let split = FixedHours {
            day_from: 8,
            day_to: 20,
        };
        let method = DemandMethod::rolling(15, 5).unwrap();
        let demand = maximum_demand(&slices, &quantity, &split, method, at(2, 0, 0), at(3, 0, 0));
        // Every window of 15 minutes holding 4 kWh (16 kW): 07:45–08:00 (night),
        // 07:50–08:05 (4/3·2 + 4/3 = 4, across the switch), 08:00–08:15 (day).
        assert_eq!(demand.by_band["night"].at, at(2, 8, 0));
        assert_eq!(demand.by_band["day"].at, at(2, 8, 15));
        assert_eq!(demand.total.unwrap().at, at(2, 8, 0), "the earliest of equal maxima");
        assert_eq!(demand.by_band["day"].milli, 4_000_000);
    }

    #[test]
    fn windows_start_on_the_clock_and_lie_inside_the_period() {
        // 4 kWh in each quarter hour 07:00–08:00; the period starts at 07:07
        // and ends at 07:50, so only the blocks 07:15 and 07:30 are whole.
        let values: Vec<_> = (0..4)
            .map(|i| (at(2, 7, 0) + Duration::minutes(15 * i), 15, 4.0 + i as f64))
            .collect();
        let (slices, quantity) = import_slices(&values);
        let split = FixedHours {
            day_from: 8,
            day_to: 20,
        };
        let method = DemandMethod::block(15).unwrap();
        let demand = maximum_demand(&slices, &quantity, &split, method, at(2, 7, 7), at(2, 7, 50));
        let night = demand.by_band["night"];
        assert_eq!((night.milli, night.at), (6_000_000, at(2, 7, 45)));
        assert!(!demand.by_band.contains_key("day"));
    }

    #[test]
    fn a_switch_skips_the_window_it_cuts_in_every_band() {
        // One busy 30 minutes 07:50–08:20 (6 kWh), a 10-minute rolling cycle by 5.
        let (slices, quantity) = import_slices(&[(at(2, 7, 50), 30, 6.0)]);
        let split = FixedHours {
            day_from: 8,
            day_to: 20,
        };
        let method = DemandMethod::rolling(10, 5).unwrap();
        let demand = maximum_demand(&slices, &quantity, &split, method, at(2, 7, 0), at(2, 9, 0));
        // 07:50–08:00 is night (2 kWh), 07:55–08:05 crosses, 08:00–08:10 day (2 kWh).
        assert_eq!(demand.by_band["night"].milli, 2_000_000);
        assert_eq!(demand.by_band["night"].at, at(2, 8, 0));
        assert_eq!(demand.by_band["day"].at, at(2, 8, 10));
    }
}
