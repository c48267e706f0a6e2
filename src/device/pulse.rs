//! Pulse inputs (12-input pulse concentrator, manual S1000/378, /379, /383):
//! what a counted pulse is worth, and the counter's rollover.
//!
//! The manual's rules, restated: each input has a unit (pulses, kWh, kvarh,
//! kVAh, m³, Nm³) and a pulse weight (1 pulse = 0.001 … 1000 of that unit).
//! For the three energy units only, the count is also multiplied by the CT
//! ratio (1–9999) and the VT ratio (1–3000.0, loaded ×10: "for direct
//! connection (ratio 1,0) load 00010, TV 600/100V = ratio 6,0 load 00060").

use std::collections::HashMap;

use super::pulse_check::{Settings, settings_of};
pub(crate) use super::pulse_unit::{CT_RATIOS, PulseError, PulseUnit, VT_RATIOS_X10, WEIGHTS};
use super::reading::Reading;
use crate::domain::obis::ObisCode;

/// An input's configuration as read from the concentrator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PulseInput {
    pub unit: PulseUnit,
    /// Units per pulse.
    pub weight: f64,
    pub ct_ratio: u16,
    /// VT ratio as loaded: ×10.
    pub vt_ratio_x10: u16,
}

impl PulseInput {
    /// Builds an input from its registers: unit code, weight code, CT, VT×10.
    pub(crate) fn from_registers(
        unit: u16,
        weight: u16,
        ct_ratio: u16,
        vt_ratio_x10: u16,
    ) -> Result<PulseInput, PulseError> {
        let unit = PulseUnit::from_code(unit)?;
        let weight = *WEIGHTS.get(usize::from(weight)).ok_or(PulseError::WeightCode(weight))?;
        if unit.is_energy() {
            if !CT_RATIOS.contains(&ct_ratio) {
                return Err(PulseError::CtRatio(ct_ratio));
            }
            if !VT_RATIOS_X10.contains(&vt_ratio_x10) {
                return Err(PulseError::VtRatio(vt_ratio_x10));
            }
        }
        Ok(PulseInput {
            unit,
            weight,
            ct_ratio,
            vt_ratio_x10,
        })
    }

    /// What one pulse is worth in the input's unit.
    pub(crate) fn per_pulse(&self) -> f64 {
        if self.unit.is_energy() {
            self.weight * f64::from(self.ct_ratio) * f64::from(self.vt_ratio_x10) / 10.0
        } else {
            self.weight
        }
    }

    /// Engineering value of a pulse count: pulses × weight × CT × VT.
    #[cfg(test)]
    pub(crate) fn value(&self, pulses: u32) -> f64 {
        f64::from(pulses) * self.per_pulse()
    }
}

/// Pulses counted between two readings of a 32-bit counter that may have
/// wrapped past 2³² − 1 in between (at most once: the poll period is far
/// shorter than a wrap). Never negative.
#[cfg(test)]
pub(crate) fn pulses_between(earlier: u32, later: u32) -> u64 {
    u64::from(later.wrapping_sub(earlier))
}

/// The input mode that turns inputs 7–10 into GME SØ tariff sources.
pub(crate) const MODE_GME_S0: f64 = 3.0;
/// GME SØ: inputs 7, 8, 9, 10 carry +A, −A, +R, −R: OBIS value group C 1–4.
const GME_INPUTS: [(u8, u8); 4] = [(7, 1), (8, 2), (9, 3), (10, 4)];

/// The engineering readings of a pulse device, derived from its raw readings
/// (`0-n:96.129.0` counts and each input's unit, weight, CT and VT codes, as
/// laid out in `profiles/pulse-concentrator.toml`). An input whose settings
/// are out of range has none ([`super::pulse_check`] says why).
pub(crate) fn derive(raw: &[Reading], inputs: u8) -> Vec<Reading> {
    let by_code: HashMap<String, &Reading> = raw.iter().map(|r| (r.obis.to_string(), r)).collect();
    let get = |text: String| by_code.get(&text).copied();
    let value = |code: &str| by_code.get(code).map(|r| r.value);
    let gme = get("0-0:96.134.0".to_owned()).is_some_and(|mode| mode.value == MODE_GME_S0);
    let mut derived = Vec::new();
    let mut configs = HashMap::new();
    for input in 1..=inputs {
        let Some(settings) = settings_of(input, &value) else {
            continue;
        };
        let Settings {
            unit,
            weight,
            ct_ratio,
            vt_ratio_x10,
            ..
        } = settings;
        if let Ok(config) = PulseInput::from_registers(unit, weight, ct_ratio, vt_ratio_x10) {
            configs.insert(input, config);
        }
    }
    for (&input, config) in &configs {
        // In GME SØ mode inputs 7–12 feed the tariff registers instead.
        if gme && input >= 7 {
            continue;
        }
        if let Some(count) = get(format!("0-{input}:96.129.0")) {
            derived.push(Reading {
                obis: config.unit.obis(input),
                value: count.value * config.per_pulse(),
                unit: config.unit.unit(),
                ..count.clone()
            });
        }
    }
    if gme {
        for (input, quantity) in GME_INPUTS {
            let Some(config) = configs.get(&input) else { continue };
            let mut total: Option<Reading> = None;
            for tariff in 1..=4u8 {
                let Some(count) = get(format!("0-{input}:96.129.{tariff}")) else {
                    continue;
                };
                let obis: ObisCode = format!("1-0:{quantity}.8.{tariff}").parse().expect("valid code");
                let reading = Reading {
                    obis,
                    value: count.value * config.per_pulse(),
                    unit: config.unit.unit(),
                    ..count.clone()
                };
                match &mut total {
                    Some(total) => total.value += reading.value,
                    None => {
                        total = Some(Reading {
                            obis: format!("1-0:{quantity}.8.0").parse().expect("valid code"),
                            ..reading.clone()
                        })
                    }
                }
                derived.push(reading);
            }
            derived.extend(total);
        }
    }
    derived.sort_by(|a, b| a.obis.cmp(&b.obis));
    derived
}

/// Keeps a device's 32-bit pulse counters continuous across their wrap
/// past 2³² − 1, so the stored count, and every value derived from it, never
/// goes backwards. A drop of more than half the counter's range is a wrap
/// (the poll period is far shorter than a wrap); a smaller drop is a reset
/// (over RS485 or the front panel) and is reported, not hidden.
#[derive(Debug, Clone, Default)]
pub(crate) struct Continuity {
    /// Per raw code: the last count the device showed, and wraps seen so far.
    counters: HashMap<String, (u32, u64)>,
}

/// Whether a code is one of the raw pulse counters (`0-n:96.129.t`).
fn is_counter(code: &ObisCode) -> bool {
    code.quantity() == Some(96) && code.kind() == Some(129)
}

const WRAP: u64 = 1 << 32;

impl Continuity {
    /// Starts from the counts stored before (continuous values), so a
    /// restart of the head-end does not lose the wraps already counted.
    pub(crate) fn from_stored(stored: impl IntoIterator<Item = (ObisCode, f64)>) -> Continuity {
        let counters = stored
            .into_iter()
            .filter(|(code, value)| is_counter(code) && *value >= 0.0)
            .map(|(code, value)| {
                let total = value as u64;
                (code.to_string(), ((total % WRAP) as u32, total / WRAP))
            })
            .collect();
        Continuity { counters }
    }

    /// Turns the device's counts in `readings` into continuous counts.
    /// Returns the codes whose counter wrapped, and those whose counter went
    /// back without wrapping (a reset).
    pub(crate) fn apply(&mut self, readings: &mut [Reading]) -> Changes {
        let mut changes = Changes::default();
        for reading in readings.iter_mut().filter(|r| is_counter(&r.obis)) {
            let count = reading.value.clamp(0.0, u32::MAX.into()) as u32;
            let code = reading.obis.to_string();
            let (last, wraps) = self.counters.get(&code).copied().unwrap_or((count, 0));
            let wraps = if count >= last {
                wraps
            } else if last - count > u32::MAX / 2 {
                changes.wrapped.push(code.clone());
                wraps + 1
            } else {
                changes.reset.push(code.clone());
                0
            };
            self.counters.insert(code, (count, wraps));
            reading.value = (wraps * WRAP + u64::from(count)) as f64;
        }
        changes
    }
}

/// Counters that wrapped or were reset in one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub wrapped: Vec<String>,
    pub reset: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::unit::Unit;

    /// The manual's example: unit kWh, weight 10: every pulse adds 10 kWh.
    #[test]
    fn each_pulse_adds_its_weight() {
        let input = PulseInput::from_registers(1, 4, 1, 10).unwrap();
        assert_eq!(input.per_pulse(), 10.0);
        assert_eq!(input.value(7), 70.0);
    }

    /// The manual's example: a 400 V direct meter with CT 800/5 A: VT = 1
    /// (loaded 10), CT = 160. A meter giving 1 pulse per 0.01 kWh of its
    /// secondary then counts 1.6 kWh of primary energy per pulse.
    #[test]
    fn energy_pulses_take_the_transformer_ratios() {
        let input = PulseInput::from_registers(1, 1, 160, 10).unwrap();
        assert!((input.per_pulse() - 1.6).abs() < 1e-12);
        // VT 600/100 V is ratio 6.0, loaded 60.
        let input = PulseInput::from_registers(2, 3, 160, 60).unwrap();
        assert!((input.per_pulse() - 960.0).abs() < 1e-9);
        assert_eq!(input.unit.obis(4).to_string(), "1-4:3.8.0");
    }

    #[test]
    fn ratios_apply_only_to_energy() {
        let gas = PulseInput::from_registers(5, 2, 0, 0).unwrap();
        assert_eq!(gas.per_pulse(), 0.1);
        assert_eq!(gas.unit.unit().as_str(), "Nm3");
        assert_eq!(gas.unit.obis(9).to_string(), "7-9:13.0.0");
        let count = PulseInput::from_registers(0, 3, 0, 0).unwrap();
        assert_eq!(count.value(12345), 12345.0);
        assert_eq!(count.unit.obis(12).to_string(), "0-12:96.128.0");
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        assert_eq!(PulseInput::from_registers(6, 0, 1, 10), Err(PulseError::UnitCode(6)));
        assert_eq!(PulseInput::from_registers(1, 7, 1, 10), Err(PulseError::WeightCode(7)));
        assert_eq!(PulseInput::from_registers(1, 0, 0, 10), Err(PulseError::CtRatio(0)));
        assert_eq!(
            PulseInput::from_registers(1, 0, 10_000, 10),
            Err(PulseError::CtRatio(10_000))
        );
        assert_eq!(PulseInput::from_registers(1, 0, 1, 9), Err(PulseError::VtRatio(9)));
        assert_eq!(
            PulseInput::from_registers(1, 0, 1, 30_001),
            Err(PulseError::VtRatio(30_001))
        );
    }

    fn reading(code: &str, value: f64) -> Reading {
        Reading {
            obis: code.parse().unwrap(),
            value,
            unit: Unit::None,
            read_at: chrono::Utc::now(),
            captured_at: None,
            quality: crate::domain::quality::Quality::GOOD,
        }
    }

    fn input(n: u8, count: f64, unit: u16, weight: u16, ct: f64, vt: f64) -> Vec<Reading> {
        vec![
            reading(&format!("0-{n}:96.129.0"), count),
            reading(&format!("0-{n}:96.130.0"), f64::from(unit)),
            reading(&format!("0-{n}:96.131.0"), f64::from(weight)),
            reading(&format!("1-{n}:0.4.2"), ct),
            reading(&format!("1-{n}:0.4.3"), vt),
        ]
    }

    #[test]
    fn derives_engineering_values_from_raw_registers() {
        let mut raw = vec![reading("0-0:96.134.0", 0.0)];
        raw.extend(input(1, 1_000.0, 1, 1, 160.0, 1.0)); // 1000 pulses × 0.01 kWh × 160 = 1600 kWh
        raw.extend(input(5, 250.0, 5, 2, 1.0, 1.0)); // 250 × 0.1 Nm³ = 25 Nm³ (no ratios)
        raw.extend(input(6, 9.0, 1, 0, 0.0, 1.0)); // CT 0: refused
        let derived = derive(&raw, 12);
        let value = |code: &str| {
            derived
                .iter()
                .find(|r| r.obis.to_string() == code)
                .map(|r| (r.value, r.unit.as_str()))
        };
        assert_eq!(value("1-1:1.8.0"), Some((1_600.0, "kWh")));
        assert_eq!(value("7-5:13.0.0"), Some((25.0, "Nm3")));
        assert_eq!(derived.len(), 2, "none for input 6");
    }

    #[test]
    fn gme_tariff_registers_become_energies_per_tariff_and_totals() {
        let mut raw = vec![reading("0-0:96.134.0", 3.0)];
        raw.extend(input(7, 99.0, 1, 0, 1.0, 1.0)); // +A, 0.001 kWh per pulse
        raw.extend((1..=4).map(|t| reading(&format!("0-7:96.129.{t}"), f64::from(t) * 1_000.0)));
        let derived = derive(&raw, 12);
        let value = |code: &str| derived.iter().find(|r| r.obis.to_string() == code).unwrap().value;
        assert_eq!(value("1-0:1.8.1"), 1.0);
        assert_eq!(value("1-0:1.8.4"), 4.0);
        assert_eq!(value("1-0:1.8.0"), 10.0);
        assert!(
            derived.iter().all(|r| r.obis.to_string() != "1-7:1.8.0"),
            "input 7 is a tariff source here"
        );
    }

    #[test]
    fn counts_stay_continuous_across_the_wrap_and_a_restart() {
        let mut continuity = Continuity::default();
        let mut first = vec![reading("0-12:96.129.0", f64::from(u32::MAX - 10))];
        assert_eq!(continuity.apply(&mut first), Changes::default());
        assert_eq!(first[0].value, f64::from(u32::MAX - 10));
        let mut wrapped = vec![reading("0-12:96.129.0", 20.0)];
        assert_eq!(continuity.apply(&mut wrapped).wrapped, vec!["0-12:96.129.0".to_owned()]);
        assert_eq!(wrapped[0].value, 4_294_967_296.0 + 20.0, "2^32 + 20");
        // After a restart, the stored continuous count seeds the state.
        let mut restarted = Continuity::from_stored([("0-12:96.129.0".parse().unwrap(), wrapped[0].value)]);
        let mut later = vec![reading("0-12:96.129.0", 25.0)];
        restarted.apply(&mut later);
        assert_eq!(later[0].value, 4_294_967_296.0 + 25.0);
        // A reset (a small drop) is reported and restarts the count.
        let mut reset = vec![reading("0-12:96.129.0", 3.0)];
        assert_eq!(restarted.apply(&mut reset).reset, vec!["0-12:96.129.0".to_owned()]);
        assert_eq!(reset[0].value, 3.0);
    }

    #[test]
    fn a_wrapped_counter_never_goes_negative() {
        assert_eq!(pulses_between(10, 25), 15);
        assert_eq!(pulses_between(u32::MAX - 4, 5), 10);
        assert_eq!(pulses_between(7, 7), 0);
    }
}
