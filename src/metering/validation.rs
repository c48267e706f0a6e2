//! Validation of interval energies against what the installation can
//! physically deliver (the "V" of VEE): an interval holding more energy than
//! the meter's circuit could carry at its largest current for the whole
//! interval is a spike, flagged rather than dropped.
//!
//! The bound is the apparent power at full load, `CT ratio × largest
//! terminal current × phase-to-neutral voltage × phases`, times the
//! interval's length. Active and reactive energy never exceed apparent
//! energy, so the same bound serves Wh, varh and VAh channels. Channels in
//! other units (m³, pulses) are not checked.

use crate::device::profile_interval::Interval;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;

/// What bounds a device's consumption physically: the current transformer's
/// ratio (1 for a direct connection), the largest current on the meter's
/// terminals (secondary side), the nominal phase-to-neutral voltage and the
/// number of phases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhysicalLimits {
    pub ct_ratio: f64,
    pub max_current_a: f64,
    pub voltage_v: f64,
    pub phases: u8,
}

impl PhysicalLimits {
    /// The limits where every part is known; `None` (no spike check) when
    /// the largest current is configured neither on the device nor in its
    /// profile, or a part is not a positive number.
    pub fn new(ct_ratio: f64, max_current_a: Option<f64>, voltage_v: f64, phases: u8) -> Option<PhysicalLimits> {
        let max_current_a = max_current_a?;
        let positive = |x: f64| x.is_finite() && x > 0.0;
        (positive(ct_ratio) && positive(max_current_a) && positive(voltage_v) && phases > 0).then_some(PhysicalLimits {
            ct_ratio,
            max_current_a,
            voltage_v,
            phases,
        })
    }

    /// Apparent power at full load, in VA.
    pub fn max_power_va(&self) -> f64 {
        self.ct_ratio * self.max_current_a * self.voltage_v * f64::from(self.phases)
    }

    /// The most energy an interval of `minutes` can hold, in `unit` (`Wh`,
    /// `kWh`, `MWh` and their `varh` / `VAh` counterparts); `None` for a
    /// unit that is not an energy.
    pub fn max_energy(&self, minutes: u32, unit: Unit) -> Option<f64> {
        let per_wh = energy_unit_in_wh(unit)?;
        Some(self.max_power_va() * f64::from(minutes) / 60.0 / per_wh)
    }
}

/// How many watt-hours (or var-hours, volt-ampere-hours) one of `unit` is.
fn energy_unit_in_wh(unit: Unit) -> Option<f64> {
    match unit {
        Unit::Wh | Unit::Varh | Unit::VAh => Some(1.0),
        Unit::KWh | Unit::KVarh | Unit::KVAh => Some(1e3),
        Unit::MWh => Some(1e6),
        _ => None,
    }
}

/// `quality` with `spike` added when `value` exceeds what `limits` allow
/// over `minutes`; unchanged where there are no limits or the unit is not
/// an energy.
pub(crate) fn flag_spike(
    limits: Option<&PhysicalLimits>,
    minutes: u32,
    unit: Unit,
    value: f64,
    quality: Quality,
) -> Quality {
    match limits.and_then(|limits| limits.max_energy(minutes, unit)) {
        Some(max) if value > max => quality.with(Quality::SPIKE),
        _ => quality,
    }
}

/// Flags the spikes among intervals read from a meter's own load profile.
pub(crate) fn flag_interval_spikes(limits: Option<&PhysicalLimits>, intervals: &mut [Interval]) {
    for interval in intervals {
        interval.quality = flag_spike(
            limits,
            interval.minutes,
            interval.unit,
            interval.value,
            interval.quality,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e33() -> PhysicalLimits {
        // COUNTIS E33 manual: direct connection, 100 A per current circuit,
        // 230 V phase/neutral, three phases.
        PhysicalLimits::new(1.0, Some(100.0), 230.0, 3).unwrap()
    }

    #[test]
    fn a_direct_100_a_three_phase_meter_delivers_at_most_17_25_kwh_a_quarter() {
        // 100 A × 230 V × 3 = 69 000 VA; × 0.25 h = 17 250 Wh = 17.25 kWh.
        let limits = e33();
        assert_eq!(limits.max_power_va(), 69_000.0);
        assert!((limits.max_energy(15, Unit::KWh).unwrap() - 17.25).abs() < 1e-12);
        assert!((limits.max_energy(15, Unit::Wh).unwrap() - 17_250.0).abs() < 1e-9);
        assert!((limits.max_energy(15, Unit::KVarh).unwrap() - 17.25).abs() < 1e-12);
        // An hour: 69 kWh = 0.069 MWh.
        assert!((limits.max_energy(60, Unit::MWh).unwrap() - 0.069).abs() < 1e-15);
        assert_eq!(limits.max_energy(15, Unit::CubicMetre), None);
    }

    #[test]
    fn a_ct_connected_single_phase_meter_scales_with_its_ratio() {
        // CT 200/5 = 40, 6 A on the terminals, 230 V, one phase:
        // 40 × 6 × 230 = 55 200 VA; 30 minutes → 27.6 kWh.
        let limits = PhysicalLimits::new(40.0, Some(6.0), 230.0, 1).unwrap();
        assert!((limits.max_energy(30, Unit::KWh).unwrap() - 27.6).abs() < 1e-12);
    }

    #[test]
    fn only_energy_above_the_limit_is_a_spike() {
        let limits = e33();
        let good = Quality::GOOD;
        assert_eq!(flag_spike(Some(&limits), 15, Unit::KWh, 17.25, good), good);
        assert_eq!(flag_spike(Some(&limits), 15, Unit::KWh, 17.26, good), Quality::SPIKE);
        // 17.26 kWh in an hour is well within 69 kWh.
        assert_eq!(flag_spike(Some(&limits), 60, Unit::KWh, 17.26, good), good);
        // Flags already set are kept.
        assert_eq!(
            flag_spike(Some(&limits), 15, Unit::Wh, 20_000.0, Quality::ROLLOVER),
            Quality::ROLLOVER.with(Quality::SPIKE)
        );
        // No limits, or not an energy: no check.
        assert_eq!(flag_spike(None, 15, Unit::KWh, 1e12, good), good);
        assert_eq!(flag_spike(Some(&limits), 15, Unit::CubicMetre, 1e12, good), good);
    }

    #[test]
    fn meter_intervals_are_checked_in_their_own_unit() {
        // 20 000 Wh in a quarter is above 17 250 Wh; 20 kWh in an hour is below 69 kWh.
        let interval = |minutes, value, unit| Interval {
            obis: "1-1:1.29.0".parse().unwrap(),
            start: chrono::Utc::now(),
            minutes,
            value,
            unit,
            meter_status: String::new(),
            quality: Quality::GOOD,
        };
        let mut intervals = [
            interval(15, 20_000.0, crate::domain::unit::Unit::Wh),
            interval(60, 20.0, crate::domain::unit::Unit::KWh),
        ];
        flag_interval_spikes(Some(&e33()), &mut intervals);
        assert_eq!(intervals[0].quality, Quality::SPIKE);
        assert_eq!(intervals[1].quality, Quality::GOOD);
    }

    #[test]
    fn limits_need_a_largest_current() {
        assert_eq!(PhysicalLimits::new(1.0, None, 230.0, 3), None);
        assert_eq!(PhysicalLimits::new(1.0, Some(0.0), 230.0, 3), None);
        assert_eq!(PhysicalLimits::new(1.0, Some(5.0), 230.0, 0), None);
    }
}
