//! A TH40C's physics: three phases of a plausible load (daily shape, seeded
//! noise, a PV plant that exports around midday), with energies
//! integrated from power, so that every relation a meter guarantees holds:
//! energies never go backwards, rates 1–4 sum to the total (the tariff in
//! force decides which rate grows), phase powers sum to the total, |PF| ≤ 1.

use std::collections::HashMap;
use std::f64::consts::PI;

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::device::obis::ObisCode;

/// Energy quantities by OBIS group C: ±active, ±reactive, ±apparent.
const ENERGY_GROUPS: [u8; 6] = [1, 2, 3, 4, 9, 10];
/// Longest integration step; longer gaps are integrated in steps.
const STEP_SECONDS: i64 = 60;

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
}

fn signed_pf(p: f64, s: f64) -> f64 {
    if s <= f64::EPSILON {
        1.0
    } else {
        (p / s).clamp(-1.0, 1.0)
    }
}

/// Maximum demands by (OBIS group C, rate): value and when it happened.
type DemandLog = HashMap<(u8, u8), (f64, DateTime<Utc>)>;

/// A simulated TH40C.
#[derive(Debug, Clone)]
pub struct Th40cModel {
    seed: u64,
    /// Zone the meter's clock and tariffs run in.
    pub zone: Tz,
    /// Instant up to which energies are integrated.
    integrated_to: DateTime<Utc>,
    /// [group][rate]: rate 0 is the total, 1–4 the tariff rates. kWh, kvarh, kVAh.
    energy: [[f64; 5]; 6],
    /// Billing history: [0] last month, [1] two months ago.
    history: [[[f64; 5]; 6]; 2],
    /// Max demand this period by (group C 1–4, rate 0–4): value, time.
    demand: DemandLog,
    history_demand: [DemandLog; 2],
    /// Meter clock minus true time (changed by clock writes).
    pub clock_offset: Duration,
}

/// A small deterministic hash → [0, 1).
fn noise(seed: u64, a: u64, b: u64) -> f64 {
    let mut x = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn group_index(c: u8) -> Option<usize> {
    ENERGY_GROUPS.iter().position(|&g| g == c)
}

impl Th40cModel {
    pub fn new(seed: u64, zone: Tz, start: DateTime<Utc>) -> Th40cModel {
        let scale = 8_000.0 + 4_000.0 * noise(seed, 1, 0);
        let shares = [0.35, 0.30, 0.20, 0.15];
        let ratios = [1.0, 0.08, 0.35, 0.05, 1.1, 0.1];
        let mut energy = [[0.0; 5]; 6];
        for (g, ratio) in ratios.iter().enumerate() {
            for (r, share) in shares.iter().enumerate() {
                energy[g][r + 1] = scale * ratio * share;
            }
            energy[g][0] = energy[g][1..].iter().sum();
        }
        let mut history = [[[0.0; 5]; 6]; 2];
        for (months, set) in history.iter_mut().enumerate() {
            for g in 0..6 {
                for r in 1..5 {
                    set[g][r] = energy[g][r] * (1.0 - 0.06 * (months as f64 + 1.0));
                }
                set[g][0] = set[g][1..].iter().sum();
            }
        }
        let mut history_demand = [HashMap::new(), HashMap::new()];
        for (months, set) in history_demand.iter_mut().enumerate() {
            let at = start - Duration::days(20 + 30 * months as i64) - Duration::hours(3);
            let at = at.with_second(0).and_then(|at| at.with_nanosecond(0)).unwrap_or(at);
            for c in 1..=4u8 {
                for r in 0..=4u8 {
                    let value = (if c == 1 { 40.0 } else { 6.0 })
                        * (0.6 + 0.4 * noise(seed, u64::from(c) * 10 + u64::from(r), months as u64));
                    set.insert((c, r), (value, at - Duration::hours(i64::from(r))));
                }
            }
        }
        Th40cModel {
            seed,
            zone,
            integrated_to: start,
            energy,
            history,
            demand: HashMap::new(),
            history_demand,
            clock_offset: Duration::zero(),
        }
    }

    /// Tariff in force at a local time: T1 weekday day, T2 weekday evening,
    /// T3 night, T4 weekends.
    pub fn tariff(&self, at: DateTime<Utc>) -> usize {
        let local = at.with_timezone(&self.zone);
        if local.weekday().number_from_monday() >= 6 {
            return 4;
        }
        match local.hour() {
            8..=18 => 1,
            19..=22 => 2,
            _ => 3,
        }
    }

    /// Instantaneous values at `at` (a pure function of time and seed).
    pub fn phases(&self, at: DateTime<Utc>) -> Phases {
        let local = at.with_timezone(&self.zone);
        let hour = f64::from(local.num_seconds_from_midnight()) / 3600.0;
        let minute = (at.timestamp() / 60) as u64;
        // Daily shape: low at night, a morning and an evening peak.
        let shape =
            0.35 + 0.45 * (PI * (hour - 6.0) / 12.0).sin().max(0.0) + 0.3 * (-((hour - 19.0) / 2.0).powi(2)).exp();
        // Each seed is a different site: its own size and PV plant.
        let size = 0.4 + 1.6 * noise(self.seed, 2, 0);
        let solar = 40.0 * noise(self.seed, 3, 0) * (PI * (hour - 7.0) / 10.0).sin().max(0.0);
        let mut phases = Phases {
            voltage: [0.0; 3],
            current: [0.0; 3],
            active: [0.0; 3],
            reactive: [0.0; 3],
            apparent: [0.0; 3],
        };
        for k in 0..3 {
            let jitter = noise(self.seed, minute, k as u64 + 1);
            let load = 12.0 * size * shape * (0.85 + 0.3 * jitter) * (1.0 + 0.1 * k as f64);
            let p = load - solar / 3.0;
            let pf = 0.86 + 0.12 * noise(self.seed, minute, k as u64 + 11);
            let q = p.abs() * (1.0 / (pf * pf) - 1.0).sqrt() * p.signum();
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

    /// Integrates energies and demand up to `now`. Never goes backwards.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        while self.integrated_to < now {
            let step_end = (self.integrated_to + Duration::seconds(STEP_SECONDS)).min(now);
            let dt = (step_end - self.integrated_to).num_milliseconds() as f64 / 3_600_000.0;
            let middle = self.integrated_to + (step_end - self.integrated_to) / 2;
            let phases = self.phases(middle);
            let rate = self.tariff(middle);
            let (p, q, s) = (phases.total_active(), phases.total_reactive(), phases.total_apparent());
            let increments = [
                p.max(0.0),
                (-p).max(0.0),
                q.max(0.0),
                (-q).max(0.0),
                if p >= 0.0 { s } else { 0.0 },
                if p < 0.0 { s } else { 0.0 },
            ];
            for (g, increment) in increments.iter().enumerate() {
                let added = increment * dt;
                self.energy[g][rate] += added;
                self.energy[g][0] += added;
            }
            let meter_time = step_end + self.clock_offset;
            let meter_time = meter_time
                .with_second(0)
                .unwrap_or(meter_time)
                .with_nanosecond(0)
                .unwrap_or(meter_time);
            for (c, demand) in [
                (1u8, p.max(0.0)),
                (2, (-p).max(0.0)),
                (3, q.max(0.0)),
                (4, (-q).max(0.0)),
            ] {
                for r in [0u8, rate as u8] {
                    let recorded = self.demand.get(&(c, r)).map_or(0.0, |&(value, _)| value);
                    if demand > recorded {
                        self.demand.insert((c, r), (demand, meter_time));
                    }
                }
            }
            self.integrated_to = step_end;
        }
    }

    /// The engineering value of an OBIS code as the meter shows it at `now`
    /// (call [`Th40cModel::advance`] first), and its capture time if it has one.
    /// Signed powers are given under their import code (negative = export).
    pub fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        let (c, d, e) = (code.quantity()?, code.kind()?, code.tariff()?);
        let billing = code.billing();
        match (d, billing) {
            (8, None) => Some((self.energy[group_index(c)?][usize::from(e).min(4)], None)),
            (8, Some(n @ 1..=2)) => Some((
                self.history[usize::from(n) - 1][group_index(c)?][usize::from(e).min(4)],
                None,
            )),
            (6, None) => {
                // No demand recorded yet this period: 0, and a time stamp of MMDD 0000.
                Some(
                    self.demand
                        .get(&(c, e))
                        .map(|&(v, at)| (v, Some(at)))
                        .unwrap_or((0.0, None)),
                )
            }
            (6, Some(n @ 1..=2)) => self.history_demand[usize::from(n) - 1]
                .get(&(c, e))
                .map(|&(v, at)| (v, Some(at))),
            (7, None) => self.instantaneous(c, now).map(|v| (v, None)),
            (9, None) => {
                let local = (now + self.clock_offset).with_timezone(&self.zone);
                match e {
                    2 => Some((
                        f64::from((local.year() % 100) as u32 * 10_000 + local.month() * 100 + local.day()),
                        None,
                    )),
                    1 => Some((
                        f64::from(local.hour() * 10_000 + local.minute() * 100 + local.second()),
                        None,
                    )),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn instantaneous(&self, c: u8, now: DateTime<Utc>) -> Option<f64> {
        let phases = self.phases(now);
        let per_phase = |k: usize, p: &Phases| match c {
            32 | 52 | 72 => p.voltage[k],
            31 | 51 | 71 => p.current[k],
            21 | 41 | 61 => p.active[k],
            23 | 43 | 63 => p.reactive[k],
            29 | 49 | 69 => p.apparent[k] * p.active[k].signum(),
            _ => p.power_factor(k),
        };
        Some(match c {
            1 => phases.total_active(),
            3 => phases.total_reactive(),
            9 => phases.total_apparent() * phases.total_active().signum(),
            13 => phases.total_power_factor(),
            32 | 31 | 21 | 23 | 29 | 33 => per_phase(0, &phases),
            52 | 51 | 41 | 43 | 49 | 53 => per_phase(1, &phases),
            72 | 71 | 61 | 63 | 69 | 73 => per_phase(2, &phases),
            _ => return None,
        })
    }

    /// Sets the meter's clock so it reads `meter_time` at true time `now`.
    pub fn set_clock(&mut self, meter_time: DateTime<Utc>, now: DateTime<Utc>) {
        self.clock_offset = meter_time - now;
    }

    /// The meter's clock in its zone.
    pub fn meter_time(&self, now: DateTime<Utc>) -> DateTime<Tz> {
        (now + self.clock_offset).with_timezone(&self.zone)
    }

    /// Converts local meter fields to an instant, if they name one.
    pub fn local_instant(
        &self,
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<DateTime<Utc>> {
        self.zone
            .with_ymd_and_hms(year, month, day, hour, minute, second)
            .earliest()
            .map(|at| at.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ObisCode {
        text.parse().unwrap()
    }

    #[test]
    fn energies_grow_and_rates_sum_to_the_total() {
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 6, 0, 0).unwrap();
        let mut model = Th40cModel::new(7, Tz::UTC, start);
        let before = model.value(&code("1-1:1.8.0"), start).unwrap().0;
        model.advance(start + Duration::hours(30));
        let now = start + Duration::hours(30);
        for c in ENERGY_GROUPS {
            let total = model.value(&code(&format!("1-1:{c}.8.0")), now).unwrap().0;
            let rates: f64 = (1..=4)
                .map(|r| model.value(&code(&format!("1-1:{c}.8.{r}")), now).unwrap().0)
                .sum();
            assert!((total - rates).abs() < 1e-6 * total, "group {c}: {total} vs {rates}");
        }
        let after = model.value(&code("1-1:1.8.0"), now).unwrap().0;
        assert!(after > before);
        // Some sites export at midday: their export register grows; others never export.
        let noon = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        let exporter = (0..50u64)
            .find(|&seed| Th40cModel::new(seed, Tz::UTC, start).phases(noon).total_active() < 0.0)
            .expect("some simulated site exports at noon");
        let mut model = Th40cModel::new(exporter, Tz::UTC, start);
        let export_before = model.value(&code("1-1:2.8.0"), start).unwrap().0;
        model.advance(now);
        let export = model.value(&code("1-1:2.8.0"), now).unwrap().0;
        assert!(export > export_before, "midday export grows the export register");
    }

    #[test]
    fn phases_add_up_and_power_factor_is_bounded() {
        let model = Th40cModel::new(3, Tz::UTC, Utc::now());
        for hour in 0..24 {
            let at = Utc.with_ymd_and_hms(2026, 6, 1, hour, 17, 0).unwrap();
            let p = model.phases(at);
            let total = model.value(&code("1-1:1.7.0"), at).unwrap().0;
            assert!((total - p.active.iter().sum::<f64>()).abs() < 1e-9);
            for k in 0..3 {
                assert!(p.power_factor(k).abs() <= 1.0);
                let s = (p.active[k].powi(2) + p.reactive[k].powi(2)).sqrt();
                assert!((s - p.apparent[k]).abs() < 1e-9);
            }
        }
    }
}
