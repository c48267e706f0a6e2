//! The simulated site behind every Modbus and IEC meter model: three phases
//! of a plausible load (daily shape, seeded noise, a PV plant that exports
//! around midday), a pure function of time, seed and zone.

use std::f64::consts::PI;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

/// Instantaneous values of the three phases.
#[derive(Debug, Clone, PartialEq)]
pub struct Phases {
    pub voltage: [f64; 3],
    pub current: [f64; 3],
    /// Active power, kW; negative = export.
    pub active: [f64; 3],
    /// Reactive power, kvar; negative = capacitive/export.
    pub reactive: [f64; 3],
    /// Apparent power, kVA (always ≥ 0).
    pub apparent: [f64; 3],
}

impl Phases {
    pub fn total_active(&self) -> f64 {
        self.active.iter().sum()
    }
    pub fn total_reactive(&self) -> f64 {
        self.reactive.iter().sum()
    }
    /// Arithmetic total apparent power (the sum of the phases).
    pub fn total_apparent(&self) -> f64 {
        self.apparent.iter().sum()
    }
    pub fn power_factor(&self, phase: usize) -> f64 {
        signed_pf(self.active[phase], self.apparent[phase])
    }
    pub fn total_power_factor(&self) -> f64 {
        signed_pf(self.total_active(), self.total_apparent())
    }

    /// Powers as the energy registers count them, phase by phase (each
    /// phase's direction is metered on its own, so one exporting phase
    /// grows the export registers while the others import): kW import,
    /// kW export, kvar import, kvar export, kVA import, kVA export.
    pub fn metered(&self) -> [f64; 6] {
        let mut sums = [0.0; 6];
        for k in 0..3 {
            let (p, q, s) = (self.active[k], self.reactive[k], self.apparent[k]);
            sums[0] += p.max(0.0);
            sums[1] += (-p).max(0.0);
            sums[2] += q.max(0.0);
            sums[3] += (-q).max(0.0);
            sums[if p >= 0.0 { 4 } else { 5 }] += s;
        }
        sums
    }
}

/// PF signed by the direction of active power (negative = export), so it
/// stays in [-1, 1] and tells the quadrant together with reactive power.
fn signed_pf(p: f64, s: f64) -> f64 {
    if s <= f64::EPSILON {
        1.0
    } else {
        (p / s).clamp(-1.0, 1.0)
    }
}

/// A small deterministic hash → [0, 1).
pub(crate) fn noise(seed: u64, a: u64, b: u64) -> f64 {
    let mut x = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Daily load shape by local hour: low at night, a morning and an evening peak.
fn load_shape(hour: f64) -> f64 {
    0.35 + 0.45 * (PI * (hour - 6.0) / 12.0).sin().max(0.0) + 0.3 * (-((hour - 19.0) / 2.0).powi(2)).exp()
}

/// Instantaneous values of a simulated site at `at`, a pure function of
/// time, seed and zone; shared by the meter models.
///
/// Each seed is a different site with its own size. Every site has a
/// single-phase PV inverter on phase C (L3), 1.3 to 1.7 times the whole
/// site's midday load, so around noon phase C exports while A and B import
/// and the site as a whole exports active energy for a few hours. Loads are
/// lagging (PF 0.86–0.98), except at night (before 05:00 local), when a
/// fixed capacitor bank on phase B over-compensates the whole site: phase B
/// and the site's total are leading, so the site exports reactive energy.
pub(crate) fn site_phases(seed: u64, zone: Tz, at: DateTime<Utc>) -> Phases {
    let local = at.with_timezone(&zone);
    let hour = f64::from(local.num_seconds_from_midnight()) / 3600.0;
    let minute = (at.timestamp() / 60) as u64;
    let shape = load_shape(hour);
    let size = 0.4 + 1.6 * noise(seed, 2, 0);
    let phase_load = |k: usize| 12.0 * size * (1.0 + 0.1 * k as f64);
    let site_noon: f64 = (0..3).map(phase_load).sum::<f64>() * load_shape(12.0);
    // Above the highest noon load (+15 % jitter) even at the inverter's
    // lowest output (−5 %): 1.3 × 0.95 > 1.15.
    let pv_peak = site_noon * (1.3 + 0.4 * noise(seed, 3, 0));
    // Above the largest lagging reactive load of phases A and C at night
    // (tan φ ≤ 0.6 at PF 0.86, load shape 0.35, +15 % jitter): 0.53 × 12 × size.
    let capacitor_bank = 12.0 * size * 0.8;
    let sun = (PI * (hour - 7.0) / 10.0).sin().max(0.0);
    let mut phases = Phases {
        voltage: [0.0; 3],
        current: [0.0; 3],
        active: [0.0; 3],
        reactive: [0.0; 3],
        apparent: [0.0; 3],
    };
    for k in 0..3 {
        let jitter = noise(seed, minute, k as u64 + 1);
        let load = phase_load(k) * shape * (0.85 + 0.3 * jitter);
        let pf = 0.86 + 0.12 * noise(seed, minute, k as u64 + 11);
        let leading = k == 1 && hour < 5.0;
        let q = if leading {
            -capacitor_bank
        } else {
            load * (1.0 / (pf * pf) - 1.0).sqrt()
        };
        let generation = if k == 2 {
            pv_peak * sun * (0.95 + 0.1 * noise(seed, minute, 21))
        } else {
            0.0
        };
        let p = load - generation;
        let s = (p * p + q * q).sqrt();
        let v = 229.0 + 4.0 * (at.timestamp() as f64 / 900.0 + k as f64).sin() + 2.0 * (jitter - 0.5);
        phases.voltage[k] = v;
        phases.active[k] = p;
        phases.reactive[k] = q;
        phases.apparent[k] = s;
        phases.current[k] = s * 1000.0 / v;
    }
    phases
}
