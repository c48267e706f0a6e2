//! A Socomec COUNTIS E33/E43/E44's behaviour on the same simulated sites as
//! the TH40C ([`site_phases`]), with the COUNTIS's own rules:
//!
//! - the tariff in force is the last one written to 0x9E21 (`set_tariff`, the
//!   meter's tariff source being COM), and only its Ea+/Er+ counters grow, so
//!   each total is the sum of T1–T4;
//! - energies count the three-phase total (ΣP, ΣQ): import when it is
//!   positive, export when negative (the simulated sites export around noon
//!   and are leading at night, so every counter moves in a day);
//! - the display's energy balance is import minus export over the tariff
//!   meters of the partial readings ([`CountisModel::balance`]);
//! - partial counters grow with the totals and reset on command (0xE222
//!   bitmask, 0xE224 per tariff, 0x9E40 all on V201);
//! - the E43/E44 measure through CTs: their CT primary/secondary are settable,
//!   and currents, powers and energies are the secondary measurement times
//!   the configured ratio, so a wrong ratio shows as wrong values, as on a
//!   real meter; the E33 measures directly and has no CT registers;
//! - PF is signed by its character (negative = leading), not by direction.
//!
//! Values the reference table does not give (product id, table and software
//! versions) are the simulator's own: 33/43/44, and 200/201 for V200.53/V201.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::model::MeterModel;
use super::site::{Phases, noise, site_phases};
use crate::domain::obis::ObisCode;
use crate::protocol::modbus::frame::Exception;

/// Longest integration step; longer gaps are integrated in steps.
const STEP_SECONDS: i64 = 60;

/// Energy counters: imported/exported active, imported/exported reactive, apparent.
const EA_IMPORT: usize = 0;
const EA_EXPORT: usize = 1;
const ER_IMPORT: usize = 2;
const ER_EXPORT: usize = 3;
const APPARENT: usize = 4;

/// OBIS group C of each counter: totals, and partial counters (128 + C, the
/// profiles' manufacturer-specific codes).
const TOTAL_CODES: [u8; 5] = [1, 2, 3, 4, 9];
const PARTIAL_CODES: [u8; 5] = [129, 130, 131, 132, 137];

/// 0xE222 bits, by counter (reference table: 0x01 Ea+, 0x02 Er+, 0x04 Es, 0x08 Ea−, 0x10 Er−).
const RESET_BITS: [u16; 5] = [0x01, 0x08, 0x02, 0x10, 0x04];

/// 0x9E40's value that resets every partial energy (V201).
const RESET_PARTIAL_ALL: u16 = 0x20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Direct connection up to 100 A, no CT.
    E33,
    /// Via CT.
    E43,
    /// Via CT, MID.
    E44,
}

/// Communication table version of the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// V200.53: no "V201 only" registers, no 0x9E40 partial reset, no 0xE400 address.
    V200,
    V201,
}

/// What chooses the tariff in force (E43/E44 manual, 9.1.1: "COM = Modbus
/// communication, DiG = T1/T2 inputs").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TariffSource {
    /// Writes to 0x9E21 choose it.
    Com,
    /// The T1/T2 inputs choose it (tariff 1 or 2, section 6 "Double
    /// tariff"). The manual does not say that a write to 0x9E21 is then
    /// refused: the simulated meter answers it and keeps the inputs'
    /// tariff, which only a read of 0xC801 shows.
    Inputs,
}

#[derive(Debug, Clone)]
pub struct CountisModel {
    seed: u64,
    pub zone: Tz,
    pub variant: Variant,
    pub firmware: Firmware,
    integrated_to: DateTime<Utc>,
    /// Totals by counter (kWh, kvarh, kVAh).
    totals: [f64; 5],
    /// Ea+ (0) and Er+ (1) by tariff T1–T4.
    by_tariff: [[f64; 4]; 2],
    /// Partial counters by counter.
    partial: [f64; 5],
    /// Partial Ea+ (row 0) and Ea− (row 1) by tariff: the display's "PAR"
    /// tariff meters (E43/E44 manual §10.6), not in the register map, reset
    /// by 0xE224.
    partial_by_tariff: [[f64; 4]; 2],
    /// Tariff in force, 1–4.
    pub tariff: u8,
    /// What chooses the tariff (E43/E44 manual, 9.1.1, SETUP 1).
    pub tariff_source: TariffSource,
    ct_primary: u16,
    ct_secondary: u16,
    /// Ratio of the CT actually fitted: the site's currents are divided by it
    /// on the secondary side and multiplied back by the configured ratio.
    fitted_ratio: f64,
    /// Site size relative to the TH40C sites: an E33 carries at most 100 A.
    load_factor: f64,
    /// Whether the firmware keeps the load curve (0xF000/0xF010); without
    /// it, both answer exception 02.
    pub load_curve: bool,
    /// The load curve's block under the pointer, 0 the newest.
    pub(super) curve_pointer: usize,
    /// A block (0 the newest) sent with a garbled header (record size 5),
    /// as a meter with a firmware fault might.
    pub garbled_block: Option<usize>,
}

/// PF signed by character: positive lagging (P and Q of one sign,
/// quadrants I and III), negative leading.
fn lead_lag_pf(p: f64, q: f64, s: f64) -> f64 {
    if s <= f64::EPSILON {
        return 1.0;
    }
    let magnitude = (p.abs() / s).min(1.0);
    if p * q >= 0.0 { magnitude } else { -magnitude }
}

impl CountisModel {
    pub fn new(variant: Variant, firmware: Firmware, seed: u64, zone: Tz, start: DateTime<Utc>) -> CountisModel {
        let (load_factor, ct_primary) = match variant {
            Variant::E33 => (0.5, 0),
            Variant::E43 | Variant::E44 => (5.0, 800),
        };
        let scale = (8_000.0 + 4_000.0 * noise(seed, 1, 0)) * load_factor;
        let shares = [0.35, 0.30, 0.20, 0.15];
        let mut by_tariff = [[0.0; 4]; 2];
        for (t, share) in shares.iter().enumerate() {
            by_tariff[0][t] = scale * share;
            by_tariff[1][t] = 0.3 * scale * share;
        }
        let totals = [
            by_tariff[0].iter().sum(),
            0.05 * scale,
            by_tariff[1].iter().sum(),
            0.04 * scale,
            1.1 * scale,
        ];
        CountisModel {
            seed,
            zone,
            variant,
            firmware,
            integrated_to: start,
            totals,
            by_tariff,
            partial: totals.map(|total| 0.1 * total),
            partial_by_tariff: [
                by_tariff[0].map(|energy| 0.1 * energy),
                shares.map(|share| 0.1 * totals[EA_EXPORT] * share),
            ],
            tariff: 1,
            tariff_source: TariffSource::Com,
            ct_primary,
            ct_secondary: 5,
            fitted_ratio: f64::from(ct_primary) / 5.0,
            load_factor,
            load_curve: true,
            curve_pointer: 0,
            garbled_block: None,
        }
    }

    /// The configured CT primary and secondary (A).
    pub(super) fn ct(&self) -> (u16, u16) {
        (self.ct_primary, self.ct_secondary)
    }

    fn has_ct(&self) -> bool {
        self.variant != Variant::E33
    }

    /// What the meter measures at `at`: the site's phases scaled to this
    /// meter's size and, behind a CT, by configured over fitted ratio.
    pub fn phases(&self, at: DateTime<Utc>) -> Phases {
        let mut phases = site_phases(self.seed, self.zone, at);
        let factor = if self.has_ct() {
            self.load_factor * (f64::from(self.ct_primary) / f64::from(self.ct_secondary)) / self.fitted_ratio
        } else {
            self.load_factor
        };
        for k in 0..3 {
            phases.current[k] *= factor;
            phases.active[k] *= factor;
            phases.reactive[k] *= factor;
            phases.apparent[k] *= factor;
        }
        phases
    }

    fn instantaneous(&self, c: u8, at: DateTime<Utc>) -> Option<f64> {
        let p = self.phases(at);
        let t = at.timestamp() as f64;
        let line =
            |a: usize, b: usize| (p.voltage[a].powi(2) + p.voltage[b].powi(2) + p.voltage[a] * p.voltage[b]).sqrt();
        let [i1, i2, i3] = p.current;
        Some(match c {
            132 => line(0, 1),
            152 => line(1, 2),
            172 => line(2, 0),
            32 | 52 | 72 => p.voltage[usize::from((c - 32) / 20)],
            14 => 50.0 + 0.04 * (t / 600.0).sin(),
            31 | 51 | 71 => p.current[usize::from((c - 31) / 20)],
            // Neutral current of three currents 120° apart.
            91 => (i1 * i1 + i2 * i2 + i3 * i3 - i1 * i2 - i2 * i3 - i3 * i1)
                .max(0.0)
                .sqrt(),
            1 => p.total_active(),
            3 => p.total_reactive(),
            9 => p.total_apparent(),
            13 => lead_lag_pf(p.total_active(), p.total_reactive(), p.total_apparent()),
            21 | 41 | 61 => p.active[usize::from((c - 21) / 20)],
            23 | 43 | 63 => p.reactive[usize::from((c - 23) / 20)],
            29 | 49 | 69 => p.apparent[usize::from((c - 29) / 20)],
            33 | 53 | 73 => {
                let k = usize::from((c - 33) / 20);
                lead_lag_pf(p.active[k], p.reactive[k], p.apparent[k])
            }
            _ => return None,
        })
    }

    fn firmware_number(&self) -> f64 {
        match self.firmware {
            Firmware::V200 => 200.0,
            Firmware::V201 => 201.0,
        }
    }

    fn reset_counters(&mut self, mask: u16) -> Result<(), Exception> {
        if mask == 0 || mask > 0x1F {
            return Err(Exception::IllegalDataValue);
        }
        for (counter, bit) in RESET_BITS.iter().enumerate() {
            if mask & bit != 0 {
                self.partial[counter] = 0.0;
                match counter {
                    EA_IMPORT => self.partial_by_tariff[0] = [0.0; 4],
                    EA_EXPORT => self.partial_by_tariff[1] = [0.0; 4],
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn reset_tariff_counters(&mut self, mask: u16) -> Result<(), Exception> {
        if mask == 0 || (mask > 0x0F && mask != 0xFFFF) {
            return Err(Exception::IllegalDataValue);
        }
        for row in &mut self.partial_by_tariff {
            for (t, counter) in row.iter_mut().enumerate() {
                if mask & (1 << t) != 0 {
                    *counter = 0.0;
                }
            }
        }
        Ok(())
    }

    /// Partial Ea+ of tariff `tariff` (1–4): the display's "PAR" tariff
    /// meters, which no published register serves.
    pub fn partial_by_tariff(&self, tariff: u8) -> Option<f64> {
        self.partial_by_tariff[0]
            .get(usize::from(tariff).checked_sub(1)?)
            .copied()
    }

    /// Partial Ea− of tariff `tariff` (1–4), as [`Self::partial_by_tariff`].
    pub fn partial_export_by_tariff(&self, tariff: u8) -> Option<f64> {
        self.partial_by_tariff[1]
            .get(usize::from(tariff).checked_sub(1)?)
            .copied()
    }

    /// The display's active energy balance "BAL kWh" (E43/E44 manual §4.6.2:
    /// (+kWh T1) − (−kWh T1) + (+kWh T2) − (−kWh T2), extended here to the
    /// four tariffs the meter keeps), over the partial tariff meters it is
    /// shown with (§10.6, menu "Par.b"). No published register serves it.
    pub fn balance(&self) -> f64 {
        (0..4)
            .map(|t| self.partial_by_tariff[0][t] - self.partial_by_tariff[1][t])
            .sum()
    }
}

impl MeterModel for CountisModel {
    fn advance(&mut self, now: DateTime<Utc>) {
        let t = usize::from(self.tariff - 1);
        while self.integrated_to < now {
            let step_end = (self.integrated_to + Duration::seconds(STEP_SECONDS)).min(now);
            let hours = (step_end - self.integrated_to).num_milliseconds() as f64 / 3_600_000.0;
            let phases = self.phases(self.integrated_to + (step_end - self.integrated_to) / 2);
            let (p, q) = (phases.total_active(), phases.total_reactive());
            let mut added = [0.0; 5];
            added[EA_IMPORT] = p.max(0.0) * hours;
            added[EA_EXPORT] = (-p).max(0.0) * hours;
            added[ER_IMPORT] = q.max(0.0) * hours;
            added[ER_EXPORT] = (-q).max(0.0) * hours;
            added[APPARENT] = phases.total_apparent() * hours;
            for (counter, energy) in added.iter().enumerate() {
                self.totals[counter] += energy;
                self.partial[counter] += energy;
            }
            self.by_tariff[0][t] += added[EA_IMPORT];
            self.by_tariff[1][t] += added[ER_IMPORT];
            self.partial_by_tariff[0][t] += added[EA_IMPORT];
            self.partial_by_tariff[1][t] += added[EA_EXPORT];
            self.integrated_to = step_end;
        }
    }

    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        let value = match code.to_string().as_str() {
            "0-0:96.14.0" => f64::from(self.tariff),
            "0-0:128.14.0" => 4.0,
            // Three phases with neutral, unbalanced (4NBL): the E4x manual's
            // "three-phase networks with neutral" (6.2).
            "0-0:128.16.0" => 5.0,
            "1-0:0.4.2" if self.has_ct() => f64::from(self.ct_primary),
            "1-0:0.4.5" if self.has_ct() => f64::from(self.ct_secondary),
            "0-0:96.1.1" => 100.0,
            "0-0:96.1.2" => match self.variant {
                Variant::E33 => 33.0,
                Variant::E43 => 43.0,
                Variant::E44 => 44.0,
            },
            "0-0:96.1.3" | "1-0:0.2.0" => self.firmware_number(),
            _ => {
                let (c, d, e) = (code.quantity()?, code.kind()?, code.tariff()?);
                if code.billing().is_some() {
                    return None;
                }
                match (d, e) {
                    (7, 0) => self.instantaneous(c, now)?,
                    (8, 0) => match (
                        TOTAL_CODES.iter().position(|&x| x == c),
                        PARTIAL_CODES.iter().position(|&x| x == c),
                    ) {
                        (Some(counter), _) => self.totals[counter],
                        (_, Some(counter)) => self.partial[counter],
                        _ => return None,
                    },
                    (8, 1..=4) => match c {
                        1 => self.by_tariff[0][usize::from(e - 1)],
                        3 => self.by_tariff[1][usize::from(e - 1)],
                        _ => return None,
                    },
                    _ => return None,
                }
            }
        };
        Some((value, None))
    }

    /// The COUNTIS commands of the profiles; a command the firmware lacks
    /// answers exception 02, a value out of range exception 03.
    fn command(&mut self, name: &str, values: &[u16], _now: DateTime<Utc>) -> Result<(), Exception> {
        let value = *values.first().ok_or(Exception::IllegalDataValue)?;
        match name {
            "set_tariff" => {
                let tariff = u8::try_from(value)
                    .ok()
                    .filter(|t| (1..=4).contains(t))
                    .ok_or(Exception::IllegalDataValue)?;
                if self.tariff_source == TariffSource::Com {
                    self.tariff = tariff;
                }
            }
            "reset_counters" => self.reset_counters(value)?,
            "reset_tariff_counters" => self.reset_tariff_counters(value)?,
            "reset_partial" if self.firmware == Firmware::V201 => {
                if value != RESET_PARTIAL_ALL {
                    return Err(Exception::IllegalDataValue);
                }
                self.partial = [0.0; 5];
                self.partial_by_tariff = [[0.0; 4]; 2];
            }
            "set_address" if self.firmware == Firmware::V201 => {}
            "set_ct_primary" if self.has_ct() => {
                if !(1..=12_000).contains(&value) {
                    return Err(Exception::IllegalDataValue);
                }
                self.ct_primary = value;
            }
            "set_ct_secondary" if self.has_ct() => {
                if value != 1 && value != 5 {
                    return Err(Exception::IllegalDataValue);
                }
                self.ct_secondary = value;
            }
            _ => return Err(Exception::IllegalDataAddress),
        }
        Ok(())
    }

    fn zone(&self) -> Tz {
        self.zone
    }

    fn has_optional_registers(&self) -> bool {
        self.firmware == Firmware::V201
    }

    fn read_own(&mut self, start: u16, count: u16, now: DateTime<Utc>) -> Option<Result<Vec<u16>, Exception>> {
        self.read_curve_or_names(start, count, now)
    }

    fn write_own(&mut self, start: u16, values: &[u16]) -> Option<Result<(), Exception>> {
        self.write_curve(start, values)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn code(text: &str) -> ObisCode {
        text.parse().unwrap()
    }

    fn value(model: &CountisModel, text: &str, now: DateTime<Utc>) -> f64 {
        model.value(&code(text), now).unwrap().0
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn the_tariff_in_force_is_the_one_that_grows_and_totals_add_up() {
        let mut model = CountisModel::new(Variant::E43, Firmware::V201, 4, Tz::UTC, start());
        let mut now = start();
        for tariff in [2u8, 4, 1, 3] {
            model.command("set_tariff", &[u16::from(tariff)], now).unwrap();
            let before: Vec<f64> = (1..=4).map(|t| value(&model, &format!("1-1:1.8.{t}"), now)).collect();
            now += Duration::hours(6);
            model.advance(now);
            for t in 1..=4u8 {
                let after = value(&model, &format!("1-1:1.8.{t}"), now);
                let grew = after > before[usize::from(t - 1)];
                assert_eq!(grew, t == tariff, "T{t} while T{tariff} is in force");
            }
            for c in [1, 3] {
                let total = value(&model, &format!("1-1:{c}.8.0"), now);
                let sum: f64 = (1..=4).map(|t| value(&model, &format!("1-1:{c}.8.{t}"), now)).sum();
                assert!((total - sum).abs() < 1e-9 * total, "{c}.8.0 = T1+…+T4");
            }
        }
        assert_eq!(model.command("set_tariff", &[5], now), Err(Exception::IllegalDataValue));
        assert_eq!(model.tariff, 3);
    }

    #[test]
    fn with_the_inputs_choosing_the_tariff_a_written_tariff_does_not_take() {
        let mut model = CountisModel::new(Variant::E43, Firmware::V201, 4, Tz::UTC, start());
        model.tariff_source = TariffSource::Inputs;
        assert_eq!(model.command("set_tariff", &[3], start()), Ok(()));
        assert_eq!(value(&model, "0-0:96.14.0", start()), 1.0);
    }

    #[test]
    fn partial_counters_grow_with_the_totals_and_reset_by_bitmask() {
        let mut model = CountisModel::new(Variant::E44, Firmware::V201, 9, Tz::UTC, start());
        let now = start() + Duration::days(1);
        let total_before = value(&model, "1-1:1.8.0", start());
        let partial_before = value(&model, "1-1:129.8.0", start());
        model.advance(now);
        let grown = value(&model, "1-1:1.8.0", now) - total_before;
        assert!(grown > 0.0);
        assert!((value(&model, "1-1:129.8.0", now) - partial_before - grown).abs() < 1e-9);
        // 0x01: only partial Ea+ (and its tariff meters).
        model.command("reset_counters", &[0x01], now).unwrap();
        assert_eq!(value(&model, "1-1:129.8.0", now), 0.0);
        assert_eq!(model.partial_by_tariff(1), Some(0.0));
        assert!(model.partial_export_by_tariff(1).unwrap() > 0.0, "partial Ea− kept");
        assert!(value(&model, "1-1:131.8.0", now) > 0.0, "partial Er+ kept");
        assert!(value(&model, "1-1:1.8.0", now) > 0.0, "totals are never reset");
        model.command("reset_counters", &[0x1F], now).unwrap();
        for c in PARTIAL_CODES {
            assert_eq!(value(&model, &format!("1-1:{c}.8.0"), now), 0.0);
        }
        assert_eq!(
            model.command("reset_counters", &[0x40], now),
            Err(Exception::IllegalDataValue)
        );
        model.advance(now + Duration::hours(1));
        assert!(value(&model, "1-1:137.8.0", now) > 0.0, "partial apparent grows again");
        model.command("reset_partial", &[0x20], now).unwrap();
        assert_eq!(value(&model, "1-1:137.8.0", now), 0.0);
    }

    #[test]
    fn a_v200_firmware_lacks_the_v201_commands_and_the_e33_its_ct() {
        let mut e33 = CountisModel::new(Variant::E33, Firmware::V200, 1, Tz::UTC, start());
        assert!(!e33.has_optional_registers());
        assert_eq!(
            e33.command("reset_partial", &[0x20], start()),
            Err(Exception::IllegalDataAddress)
        );
        assert_eq!(
            e33.command("set_address", &[3], start()),
            Err(Exception::IllegalDataAddress)
        );
        assert_eq!(
            e33.command("set_ct_primary", &[100], start()),
            Err(Exception::IllegalDataAddress)
        );
        assert!(e33.value(&code("1-0:0.4.2"), start()).is_none());
        // Direct connection up to 100 A.
        for hour in 0..24 {
            let at = start() + Duration::hours(hour);
            for k in 0..3 {
                assert!(e33.phases(at).current[k] < 100.0);
            }
        }
    }

    #[test]
    fn values_scale_with_the_configured_ct_ratio() {
        let mut model = CountisModel::new(Variant::E43, Firmware::V201, 2, Tz::UTC, start());
        let at = start() + Duration::hours(10);
        let current = value(&model, "1-1:31.7.0", at);
        let power = value(&model, "1-1:1.7.0", at);
        let voltage = value(&model, "1-1:32.7.0", at);
        model.command("set_ct_primary", &[400], at).unwrap();
        assert_eq!(value(&model, "1-0:0.4.2", at), 400.0);
        assert!((value(&model, "1-1:31.7.0", at) - current / 2.0).abs() < 1e-9);
        assert!((value(&model, "1-1:1.7.0", at) - power / 2.0).abs() < 1e-9);
        assert_eq!(value(&model, "1-1:32.7.0", at), voltage, "voltages do not pass the CT");
        assert_eq!(
            model.command("set_ct_secondary", &[2], at),
            Err(Exception::IllegalDataValue)
        );
        assert_eq!(
            model.command("set_ct_primary", &[12_001], at),
            Err(Exception::IllegalDataValue)
        );
    }

    #[test]
    fn power_factor_is_signed_by_character() {
        assert!(lead_lag_pf(10.0, 3.0, 10.44) > 0.0, "import, inductive: lagging");
        assert!(lead_lag_pf(10.0, -3.0, 10.44) < 0.0, "import, capacitive: leading");
        assert!(lead_lag_pf(-10.0, -3.0, 10.44) > 0.0, "export, quadrant III: lagging");
        let model = CountisModel::new(Variant::E43, Firmware::V201, 3, Tz::UTC, start());
        for hour in 0..24 {
            let at = start() + Duration::hours(hour);
            let p = model.phases(at);
            for (k, c) in [33, 53, 73].into_iter().enumerate() {
                let pf = value(&model, &format!("1-1:{c}.7.0"), at);
                assert!(pf.abs() <= 1.0);
                assert_eq!(pf < 0.0, p.active[k] * p.reactive[k] < 0.0, "phase {k} at {hour} h");
            }
            let u12 = value(&model, "1-1:132.7.0", at);
            assert!((380.0..420.0).contains(&u12), "{u12}");
        }
    }

    /// One day in one-minute integration steps, the tariff changed every six
    /// hours; yields each step's start and the model after it.
    fn day_by_minute(model: &mut CountisModel, mut each: impl FnMut(&CountisModel, DateTime<Utc>, [f64; 4])) {
        let counters = |model: &CountisModel, at| {
            ["1-1:1.8.0", "1-1:2.8.0", "1-1:3.8.0", "1-1:4.8.0"].map(|c| value(model, c, at))
        };
        for step in 0..24 * 60 {
            let from = start() + Duration::minutes(step);
            if step % 360 == 0 {
                model.command("set_tariff", &[(step / 360 + 1) as u16], from).unwrap();
            }
            let before = counters(model, from);
            model.advance(from + Duration::minutes(1));
            let after = counters(model, from);
            each(model, from, [0, 1, 2, 3].map(|k| after[k] - before[k]));
        }
    }

    #[test]
    fn import_counts_only_while_importing_and_export_only_while_exporting() {
        let mut model = CountisModel::new(Variant::E43, Firmware::V201, 6, Tz::UTC, start());
        let mut moved = [false; 4];
        day_by_minute(&mut model, |model, from, grown| {
            // The model integrates a step at its middle.
            let phases = model.phases(from + Duration::seconds(30));
            let (p, q) = (phases.total_active(), phases.total_reactive());
            for (k, (flow, name)) in [(p, "Ea+"), (-p, "Ea−"), (q, "Er+"), (-q, "Er−")]
                .into_iter()
                .enumerate()
            {
                assert!(grown[k] >= 0.0, "{name} never runs back");
                assert_eq!(grown[k] > 0.0, flow > 0.0, "{name} at {from}: ΣP {p} kW, ΣQ {q} kvar");
                moved[k] |= grown[k] > 0.0;
            }
        });
        assert_eq!(moved, [true; 4], "the site imports, exports, lags and leads in a day");
    }

    #[test]
    fn the_energy_balance_is_net_import_over_the_tariffs() {
        let mut model = CountisModel::new(Variant::E44, Firmware::V201, 8, Tz::UTC, start());
        let balance_before = model.balance();
        let partial =
            |model: &CountisModel| value(model, "1-1:129.8.0", start()) - value(model, "1-1:130.8.0", start());
        assert!((balance_before - partial(&model)).abs() < 1e-6);
        // ∫ΣP dt by the midpoint rule, from the measured powers alone.
        let mut net = 0.0;
        day_by_minute(&mut model, |model, from, _| {
            net += model.phases(from + Duration::seconds(30)).total_active() / 60.0;
        });
        let balance = model.balance();
        assert!(
            ((balance - balance_before) - net).abs() < 1e-6 * net.abs().max(1.0),
            "{balance} vs {net}"
        );
        // The balance is the partial Ea+ less the partial Ea−, tariff by tariff.
        assert!((balance - partial(&model)).abs() < 1e-6 * balance.abs());
        for t in 1..=4 {
            assert!(model.partial_export_by_tariff(t).is_some());
        }
        assert_eq!(model.partial_export_by_tariff(5), None);
        // Resetting a tariff's meters takes its import and export out of the balance.
        let t1 = model.partial_by_tariff(1).unwrap() - model.partial_export_by_tariff(1).unwrap();
        model.command("reset_tariff_counters", &[0b1], start()).unwrap();
        assert!((model.balance() - (balance - t1)).abs() < 1e-6 * balance.abs());
    }
}
