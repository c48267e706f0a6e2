//! A 12-input pulse concentrator (manual S1000/378, /379, /383) behind the
//! register layout of `profiles/pulse-concentrator.toml`.
//!
//! Each input counts pulses from a meter on the simulated site: energy
//! inputs follow the site's load, volume inputs a gas or water draw with a
//! daily shape. Counts are whole pulses on a 32-bit counter that wraps, as a
//! real counter does (input 12 starts close to the wrap so a head-end meets
//! it).
//!
//! GME SØ mode (manual, "SØ configuration"): the inputs 7–12 come from the
//! site's GME ENEL meter and feed 16 counting registers, positive and
//! negative active and reactive energy, each "subdivided into 4 time slots";
//! inputs 1–6 stay independent counters. Here inputs 7–10 carry +A, −A, +R
//! and −R of that one meter: a meter sends import pulses only while the site
//! imports and export pulses only while it exports, so at any instant at
//! most one of +A/−A and one of +R/−R counts. The manual names neither which
//! input carries which quantity (that is wiring diagram S1000/379, not in
//! the text) nor what selects the time slot: it does not say inputs 11–12
//! are a tariff signal. The simulator therefore takes the slot from a fixed
//! local-time table ([`ConcentratorModel::tariff`]) and lets inputs 11–12
//! count a steady pulse train, tied to no slot.

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;

use super::model::MeterModel;
use super::site::{noise, site_phases};
use crate::device::pulse::{PulseInput, PulseUnit};
use crate::device::pulse_check::OFF_TIME_MS;
use crate::domain::obis::ObisCode;
use crate::protocol::modbus::frame::Exception;

pub const INPUTS: usize = 12;
/// Longest integration step.
const STEP_SECONDS: i64 = 60;
/// Input mode register values (manual: "STATE OF THE INPUTS").
pub const MODE_POT_FREE: u16 = 0;
pub const MODE_GME_S0: u16 = 3;
/// Index of input 7, the first of the GME meter's +A, −A, +R, −R inputs.
const GME_FIRST: usize = 6;

#[derive(Debug, Clone)]
struct Input {
    /// What the input counts by: its last settings in range.
    config: PulseInput,
    /// Pulses counted, with the fraction not yet a whole pulse.
    pulses: f64,
    /// Its five settings as its registers hold them, in range or not: unit
    /// code, weight code, CT ratio, VT ratio ×10, OFF time (ms).
    registers: [u16; 5],
}

#[derive(Debug, Clone)]
pub struct ConcentratorModel {
    seed: u64,
    zone: Tz,
    mode: u16,
    inputs: Vec<Input>,
    /// GME SØ tariff registers: [quantity: +A, −A, +R, −R][tariff 1–4], in pulses.
    tariff_pulses: [[f64; 4]; 4],
    integrated_to: DateTime<Utc>,
}

/// The configuration of each input: unit code, weight code, CT, VT×10.
const CONFIG: [(PulseUnit, u16, u16, u16); INPUTS] = [
    (PulseUnit::KWh, 1, 160, 10), // a 400 V meter on CT 800/5 A: 0.01 kWh pulses × 160
    (PulseUnit::KWh, 2, 1, 10),   // a direct sub-meter, 0.1 kWh per pulse
    (PulseUnit::KWh, 0, 40, 60),  // CT 200/5, VT 600/100 V: 0.001 kWh pulses x 240
    (PulseUnit::Kvarh, 2, 1, 10),
    (PulseUnit::CubicMetres, 1, 1, 10),       // water, 10 l per pulse
    (PulseUnit::NormalCubicMetres, 2, 1, 10), // gas, 0.1 Nm³ per pulse
    (PulseUnit::KWh, 0, 1, 10),               // GME SØ: +A, 1 Wh per pulse
    (PulseUnit::KWh, 0, 1, 10),               // −A
    (PulseUnit::Kvarh, 0, 1, 10),             // +R
    (PulseUnit::Kvarh, 0, 1, 10),             // −R
    (PulseUnit::Pulses, 3, 1, 10),            // GME input 11: a steady pulse train
    (PulseUnit::Pulses, 3, 1, 10),            // GME input 12: the same; starts near the counter's wrap
];

impl ConcentratorModel {
    pub fn new(seed: u64, zone: Tz, start: DateTime<Utc>, mode: u16) -> ConcentratorModel {
        let inputs = CONFIG
            .iter()
            .enumerate()
            .map(|(index, &(unit, weight, ct, vt))| Input {
                config: PulseInput::from_registers(unit.code(), weight, ct, vt).expect("valid built-in configuration"),
                registers: [unit.code(), weight, ct, vt, 50],
                pulses: if index == INPUTS - 1 {
                    f64::from(u32::MAX - 300)
                } else {
                    (100_000.0 * noise(seed, 40 + index as u64, 0)).floor()
                },
            })
            .collect();
        ConcentratorModel {
            seed,
            zone,
            mode,
            inputs,
            tariff_pulses: [[0.0; 4]; 4],
            integrated_to: start,
        }
    }

    /// Input `input` (1–12) with `settings` (unit code, weight code, CT, VT
    /// ×10, OFF time in ms) in its registers, in range or not, as a unit
    /// whose settings memory holds values its menu never offers; it counts
    /// on by its last settings in range.
    pub fn with_settings(mut self, input: usize, settings: [u16; 5]) -> ConcentratorModel {
        let slot = &mut self.inputs[input - 1];
        let [unit, weight, ct, vt, _] = settings;
        if let Ok(config) = PulseInput::from_registers(unit, weight, ct, vt) {
            slot.config = config;
        }
        slot.registers = settings;
        self
    }

    /// Signed total active (kW) and reactive (kvar) power at `at` of the
    /// GME meter on inputs 7–10: the whole site, positive when imported.
    pub fn gme_power(&self, at: DateTime<Utc>) -> (f64, f64) {
        let phases = site_phases(self.seed, self.zone, at);
        (phases.total_active(), phases.total_reactive())
    }

    /// Pulses per hour on `input` at `at`.
    fn rate(&self, index: usize, at: DateTime<Utc>) -> f64 {
        let input = &self.inputs[index];
        let local = at.with_timezone(&self.zone);
        let hour = f64::from(local.num_seconds_from_midnight()) / 3600.0;
        let per_pulse = input.config.per_pulse();
        if (GME_FIRST..GME_FIRST + 4).contains(&index) {
            // kWh per hour = kW: each input counts one direction only.
            let (p, q) = self.gme_power(at);
            let flow = match index - GME_FIRST {
                0 => p,
                1 => -p,
                2 => q,
                _ => -q,
            };
            return flow.max(0.0) / per_pulse;
        }
        let phases = site_phases(self.seed + index as u64, self.zone, at);
        match input.config.unit {
            // Sub-meters of consuming loads see a share of the site's import.
            PulseUnit::KWh => phases.total_active().abs() * (0.2 + 0.1 * index as f64) / per_pulse,
            PulseUnit::Kvarh | PulseUnit::KVAh => phases.total_reactive().abs() * 0.3 / per_pulse,
            PulseUnit::CubicMetres | PulseUnit::NormalCubicMetres => {
                let draw =
                    0.2 + 1.5 * (-((hour - 7.5) / 1.5).powi(2)).exp() + 1.0 * (-((hour - 19.0) / 2.0).powi(2)).exp();
                draw / per_pulse
            }
            // Inputs 11–12: ten pulses a minute.
            PulseUnit::Pulses => 600.0,
        }
    }

    /// The GME time slot (0–3 for T1–T4) at `at`, from local time.
    pub fn tariff(&self, at: DateTime<Utc>) -> usize {
        match at.with_timezone(&self.zone).hour() {
            8..=18 => 0,
            19..=22 => 1,
            0..=5 => 2,
            _ => 3,
        }
    }

    fn input(code: &ObisCode) -> Option<usize> {
        let text = code.to_string();
        let (_, rest) = text.split_once('-')?;
        let (channel, _) = rest.split_once(':')?;
        let input: usize = channel.parse().ok()?;
        (1..=INPUTS).contains(&input).then(|| input - 1)
    }

    /// The 32-bit counter as the concentrator shows it.
    fn counter(pulses: f64) -> f64 {
        (pulses.floor() as u64 % (1u64 << 32)) as f64
    }
}

impl MeterModel for ConcentratorModel {
    fn advance(&mut self, now: DateTime<Utc>) {
        while self.integrated_to < now {
            let step_end = (self.integrated_to + Duration::seconds(STEP_SECONDS)).min(now);
            let hours = (step_end - self.integrated_to).num_milliseconds() as f64 / 3_600_000.0;
            let middle = self.integrated_to + (step_end - self.integrated_to) / 2;
            let tariff = self.tariff(middle);
            for index in 0..INPUTS {
                let added = self.rate(index, middle) * hours;
                self.inputs[index].pulses += added;
                if self.mode == MODE_GME_S0 && (GME_FIRST..GME_FIRST + 4).contains(&index) {
                    self.tariff_pulses[index - GME_FIRST][tariff] += added;
                }
            }
            self.integrated_to = step_end;
        }
    }

    fn value(&self, code: &ObisCode, _now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        let text = code.to_string();
        if text == "0-0:96.134.0" {
            return Some((f64::from(self.mode), None));
        }
        let index = Self::input(code)?;
        let input = &self.inputs[index];
        let value = match (code.quantity(), code.kind(), code.tariff()) {
            (Some(96), Some(129), Some(0)) => Self::counter(input.pulses),
            // GME SØ tariff registers, named after the input that carries the quantity.
            (Some(96), Some(129), Some(t @ 1..=4)) if (GME_FIRST..GME_FIRST + 4).contains(&index) => {
                Self::counter(self.tariff_pulses[index - GME_FIRST][usize::from(t) - 1])
            }
            (Some(96), Some(130), Some(0)) => f64::from(input.registers[0]),
            (Some(96), Some(131), Some(0)) => f64::from(input.registers[1]),
            (Some(96), Some(132), Some(0)) => f64::from(input.registers[4]),
            (Some(0), Some(4), Some(2)) => f64::from(input.registers[2]),
            // VT ratio, stored ×10: the profile scales it by 0.1.
            (Some(0), Some(4), Some(3)) => f64::from(input.registers[3]) / 10.0,
            _ => return None,
        };
        Some((value, None))
    }

    fn command(&mut self, name: &str, values: &[u16], _now: DateTime<Utc>) -> Result<(), Exception> {
        match (name, values) {
            // Bit n−1 resets input n's counter ("12 independent counting
            // registers, resettable through RS485 communication").
            ("reset_counters", [mask]) if *mask != 0 && *mask < 1 << INPUTS => {
                for (index, input) in self.inputs.iter_mut().enumerate() {
                    if mask & (1 << index) != 0 {
                        input.pulses = 0.0;
                    }
                }
                Ok(())
            }
            ("reset_counters", _) => Err(Exception::IllegalDataValue),
            _ => Err(Exception::IllegalDataAddress),
        }
    }

    /// Input `input`'s settings, checked against the manual's ranges (CT
    /// 1-9999, VT 1-3000.0 loaded x10, OFF time 5-300 ms): a value out of
    /// range answers exception 03 and changes nothing. Its count goes on.
    fn configure_input(&mut self, input: u16, values: &[u16]) -> Result<(), Exception> {
        let index = usize::from(input).checked_sub(1).ok_or(Exception::IllegalDataAddress)?;
        let &[unit, weight, ct, vt, off] = values else {
            return Err(Exception::IllegalDataValue);
        };
        let config = PulseInput::from_registers(unit, weight, ct, vt).map_err(|_| Exception::IllegalDataValue)?;
        if !OFF_TIME_MS.contains(&off) {
            return Err(Exception::IllegalDataValue);
        }
        let slot = self.inputs.get_mut(index).ok_or(Exception::IllegalDataAddress)?;
        slot.config = config;
        slot.registers = [unit, weight, ct, vt, off];
        Ok(())
    }

    fn zone(&self) -> Tz {
        self.zone
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn code(text: &str) -> ObisCode {
        text.parse().unwrap()
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn counters_grow_wrap_and_reset() {
        let mut model = ConcentratorModel::new(3, Tz::UTC, start(), MODE_POT_FREE);
        let at = start() + Duration::hours(12);
        let before: Vec<f64> = (1..=12)
            .map(|n| model.value(&code(&format!("0-{n}:96.129.0")), at).unwrap().0)
            .collect();
        model.advance(at);
        let after: Vec<f64> = (1..=12)
            .map(|n| model.value(&code(&format!("0-{n}:96.129.0")), at).unwrap().0)
            .collect();
        for n in 0..11 {
            assert!(after[n] > before[n], "input {} counts", n + 1);
            assert_eq!(after[n].fract(), 0.0, "whole pulses");
        }
        assert!(after[11] < before[11], "input 12 wrapped past 2^32 - 1");
        model.command("reset_counters", &[0b1], at).unwrap();
        assert_eq!(model.value(&code("0-1:96.129.0"), at).unwrap().0, 0.0);
        assert!(model.value(&code("0-2:96.129.0"), at).unwrap().0 > 0.0);
        assert_eq!(
            model.command("reset_counters", &[0x1000], at),
            Err(Exception::IllegalDataValue)
        );
    }

    #[test]
    fn gme_tariff_registers_add_up_to_their_input() {
        let mut model = ConcentratorModel::new(5, Tz::UTC, start(), MODE_GME_S0);
        let at = start() + Duration::hours(30);
        let count =
            |model: &ConcentratorModel, input: u8| model.value(&code(&format!("0-{input}:96.129.0")), at).unwrap().0;
        let before: Vec<f64> = (7..=10).map(|input| count(&model, input)).collect();
        model.advance(at);
        for (k, input) in (7..=10u8).enumerate() {
            let tariffs: Vec<f64> = (1..=4)
                .map(|t| model.value(&code(&format!("0-{input}:96.129.{t}")), at).unwrap().0)
                .collect();
            let counted = count(&model, input) - before[k];
            // Whole pulses in each register: up to one pulse per register lost to rounding.
            let sum: f64 = tariffs.iter().sum();
            assert!(
                (counted - sum).abs() <= 5.0,
                "input {input}: tariffs {sum} vs counted {counted}"
            );
            let used: Vec<usize> = (0..4).filter(|&t| tariffs[t] > 0.0).collect();
            match input {
                // Imports happen in every slot but for the few noon hours
                // (in T1); loads lag from 05:00 on (T3 runs to 05:59).
                7 => assert_eq!(used, [0, 1, 2, 3], "+A {tariffs:?}"),
                9 => assert_eq!(used, [0, 1, 2, 3], "+R {tariffs:?}"),
                // Exports only around noon (T1); leading only before 05:00 (T3).
                8 => assert_eq!(used, [0], "−A {tariffs:?}"),
                _ => assert_eq!(used, [2], "−R {tariffs:?}"),
            }
        }
        assert_eq!(model.value(&code("1-1:0.4.2"), at).unwrap().0, 160.0);
        assert_eq!(model.value(&code("1-3:0.4.3"), at).unwrap().0, 6.0);
    }

    #[test]
    fn gme_import_counts_only_while_importing_and_export_only_while_exporting() {
        let mut model = ConcentratorModel::new(7, Tz::UTC, start(), MODE_GME_S0);
        let read = |model: &ConcentratorModel, text: String| model.value(&code(&text), start()).unwrap().0;
        let snapshot = |model: &ConcentratorModel| -> Vec<f64> {
            (7..=10)
                .map(|input| read(model, format!("0-{input}:96.129.0")))
                .chain(
                    (7..=10)
                        .flat_map(|input| (1..=4).map(move |t| (input, t)))
                        .map(|(input, t)| read(model, format!("0-{input}:96.129.{t}"))),
                )
                .collect()
        };
        let first = snapshot(&model);
        let mut before = first.clone();
        // One integration step at a time, so each step's power is known:
        // the model integrates at the step's middle.
        for step in 0..24 * 60 {
            let from = start() + Duration::minutes(step);
            model.advance(from + Duration::minutes(1));
            let after = snapshot(&model);
            let (p, q) = model.gme_power(from + Duration::seconds(30));
            let grew = |k: usize| after[k] > before[k];
            assert!(!(grew(0) && p <= 0.0), "+A counted while exporting {p} kW at {from}");
            assert!(!(grew(1) && p >= 0.0), "−A counted while importing {p} kW at {from}");
            assert!(!(grew(2) && q <= 0.0), "+R counted while leading {q} kvar at {from}");
            assert!(!(grew(3) && q >= 0.0), "−R counted while lagging {q} kvar at {from}");
            // Only the current time slot's register of each quantity moves.
            let slot = model.tariff(from + Duration::seconds(30));
            for quantity in 0..4 {
                for t in 0..4 {
                    let k = 4 + 4 * quantity + t;
                    assert!(
                        t == slot || after[k] == before[k],
                        "T{} moved in slot T{}",
                        t + 1,
                        slot + 1
                    );
                }
            }
            before = after;
        }
        for (k, name) in ["+A", "−A", "+R", "−R"].iter().enumerate() {
            let counted = before[k] - first[k];
            assert!(counted > 0.0, "{name} counted during the day");
            let by_slot: f64 = (0..4).map(|t| before[4 + 4 * k + t] - first[4 + 4 * k + t]).sum();
            // Whole pulses: each of the four registers rounds down on its own.
            assert!(
                (counted - by_slot).abs() <= 4.0,
                "{name}: {counted} counted, {by_slot} by slot"
            );
        }
    }
}
