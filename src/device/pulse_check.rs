//! Whether a pulse concentrator's settings, as read, are ones its menu
//! offers (manual S1000/378, /379, /383, "Programmable parameters"): input
//! mode Pot Free, PotAFree, Pot Live or GME SØ; per input a unit (pulses,
//! kWh, kvarh, kVAh, m³, Nm³), a pulse weight 0.001–1000, for energy units a
//! CT ratio 1–9999 and a VT ratio 1–3000.0 loaded ×10, and an OFF time of
//! 5–300 ms (the menu's 5, 10, 20, 40, 50, 100, 200 or 300). A value outside them (a firmware
//! or register layout other than the profile's, a corrupted setting) makes
//! the input's count meaningless, so it is reported, input by input.

use std::fmt;
use std::ops::RangeInclusive;

use super::pulse_unit::{CT_RATIOS, PulseError, PulseUnit, VT_RATIOS_X10, WEIGHTS};

/// The input modes ("STATE OF THE INPUTS"), by register value.
const MODES: [&str; 4] = ["Pot Free", "PotAFree", "Pot Live", "GME SØ"];

/// OFF times, in ms: the menu offers 5, 10, 20, 40, 50, 100, 200 and 300;
/// a value between them is taken as the setting of another firmware, as
/// `configure_channel` takes it, not as a fault.
pub(crate) const OFF_TIME_MS: RangeInclusive<u16> = 5..=300;

/// What is wrong with the settings of one input (`input` 1–12), or with
/// the device's input mode (`input` 0).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Misconfigured {
    pub input: u8,
    pub errors: Vec<PulseError>,
}

impl Misconfigured {
    /// What is wrong, without the input's number.
    pub(crate) fn reasons(&self) -> String {
        let errors: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        errors.join(" and ")
    }
}

impl fmt::Display for Misconfigured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.input > 0 {
            write!(f, "input {}: ", self.input)?;
        }
        f.write_str(&self.reasons())
    }
}

/// An input's settings as its registers hold them: unit code, pulse weight
/// code, CT ratio, VT ratio ×10, and the OFF time in ms where the profile
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    pub unit: u16,
    pub weight: u16,
    pub ct_ratio: u16,
    pub vt_ratio_x10: u16,
    pub off_time_ms: Option<u16>,
}

impl Settings {
    /// Every setting out of range, not only the first: an engineer fixing
    /// an input fixes them all at once. CT and VT are checked for energy
    /// units only, the manual's "present just if selected pulse unit = kWh
    /// – kvarh – kVAh".
    pub(crate) fn errors(&self) -> Vec<PulseError> {
        let mut errors = Vec::new();
        let unit = PulseUnit::from_code(self.unit);
        if let Err(error) = &unit {
            errors.push(error.clone());
        }
        if usize::from(self.weight) >= WEIGHTS.len() {
            errors.push(PulseError::WeightCode(self.weight));
        }
        if unit.is_ok_and(PulseUnit::is_energy) {
            if !CT_RATIOS.contains(&self.ct_ratio) {
                errors.push(PulseError::CtRatio(self.ct_ratio));
            }
            if !VT_RATIOS_X10.contains(&self.vt_ratio_x10) {
                errors.push(PulseError::VtRatio(self.vt_ratio_x10));
            }
        }
        if let Some(off) = self.off_time_ms.filter(|off| !OFF_TIME_MS.contains(off)) {
            errors.push(PulseError::OffTime(off));
        }
        errors
    }
}

/// The input mode register's verdict: `None` for one of the four modes.
pub(crate) fn mode_error(mode: u16) -> Option<PulseError> {
    (usize::from(mode) >= MODES.len()).then_some(PulseError::InputMode(mode))
}

/// A register value as the 16-bit setting it was read from (a value that
/// cannot be one reads as `u16::MAX`, out of every range).
fn setting(value: f64) -> u16 {
    let rounded = value.round();
    if (0.0..=f64::from(u16::MAX)).contains(&rounded) {
        rounded as u16
    } else {
        u16::MAX
    }
}

/// The settings of input `input` from the values of its codes (see
/// docs/PROFILES.md, "Pulse devices"); `None` unless all four of unit,
/// weight, CT and VT are there.
pub(crate) fn settings_of(input: u8, value: &impl Fn(&str) -> Option<f64>) -> Option<Settings> {
    Some(Settings {
        unit: setting(value(&format!("0-{input}:96.130.0"))?),
        weight: setting(value(&format!("0-{input}:96.131.0"))?),
        ct_ratio: setting(value(&format!("1-{input}:0.4.2"))?),
        // Stored scaled by 0.1 (the ratio); the device holds it ×10.
        vt_ratio_x10: setting(value(&format!("1-{input}:0.4.3"))? * 10.0),
        off_time_ms: value(&format!("0-{input}:96.132.0")).map(setting),
    })
}

/// One line for an event or a log: every setting out of range, input by input.
pub(crate) fn describe(found: &[Misconfigured]) -> String {
    let parts: Vec<String> = found.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// The device's settings out of range, input mode first then by input;
/// `None` when `value` (a code's value, from one read or the latest
/// stored) holds none of them, so there is nothing to judge.
pub(crate) fn misconfigured(inputs: u8, value: impl Fn(&str) -> Option<f64>) -> Option<Vec<Misconfigured>> {
    let mode = value("0-0:96.134.0");
    let mut seen = mode.is_some();
    let mut found = Vec::new();
    if let Some(error) = mode.and_then(|mode| mode_error(setting(mode))) {
        found.push(Misconfigured {
            input: 0,
            errors: vec![error],
        });
    }
    for input in 1..=inputs {
        let Some(settings) = settings_of(input, &value) else {
            continue;
        };
        seen = true;
        let errors = settings.errors();
        if !errors.is_empty() {
            found.push(Misconfigured { input, errors });
        }
    }
    seen.then_some(found)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Input `n`'s five registers as the profile lays them out, as stored:
    /// the VT ratio already scaled by 0.1.
    fn input(map: &mut HashMap<String, f64>, n: u8, [unit, weight, ct, vt_x10, off]: [u16; 5]) {
        map.insert(format!("0-{n}:96.130.0"), f64::from(unit));
        map.insert(format!("0-{n}:96.131.0"), f64::from(weight));
        map.insert(format!("1-{n}:0.4.2"), f64::from(ct));
        map.insert(format!("1-{n}:0.4.3"), f64::from(vt_x10) / 10.0);
        map.insert(format!("0-{n}:96.132.0"), f64::from(off));
    }

    fn check(map: &HashMap<String, f64>) -> Option<Vec<Misconfigured>> {
        misconfigured(12, |code| map.get(code).copied())
    }

    fn settings(unit: u16, weight: u16, ct: u16, vt_x10: u16, off: u16) -> Vec<PulseError> {
        Settings {
            unit,
            weight,
            ct_ratio: ct,
            vt_ratio_x10: vt_x10,
            off_time_ms: Some(off),
        }
        .errors()
    }

    /// The manual's limits, each side: weight codes 0-6 (0.001-1000), CT
    /// 1-9999, VT 1.0-3000.0 loaded 10-30000, OFF 5-300 ms.
    #[test]
    fn the_manuals_limits_are_in_range() {
        assert_eq!(settings(1, 0, 1, 10, 5), vec![]);
        assert_eq!(settings(3, 6, 9999, 30_000, 300), vec![]);
        assert_eq!(settings(5, 3, 0, 0, 40), vec![], "no ratios for Nm3");
        assert_eq!(settings(0, 0, 0, 0, 10), vec![], "nor for a bare count");
    }

    #[test]
    fn each_setting_out_of_range_is_named() {
        assert_eq!(settings(6, 0, 1, 10, 50), vec![PulseError::UnitCode(6)]);
        assert_eq!(settings(1, 7, 1, 10, 50), vec![PulseError::WeightCode(7)]);
        assert_eq!(settings(1, 0, 0, 10, 50), vec![PulseError::CtRatio(0)]);
        assert_eq!(settings(2, 0, 10_000, 10, 50), vec![PulseError::CtRatio(10_000)]);
        assert_eq!(settings(3, 0, 1, 9, 50), vec![PulseError::VtRatio(9)]);
        assert_eq!(settings(1, 0, 1, 30_001, 50), vec![PulseError::VtRatio(30_001)]);
        assert_eq!(settings(1, 0, 1, 10, 4), vec![PulseError::OffTime(4)]);
        assert_eq!(settings(1, 0, 1, 10, 301), vec![PulseError::OffTime(301)]);
        assert_eq!(
            settings(1, 9, 0, 10, 0),
            vec![
                PulseError::WeightCode(9),
                PulseError::CtRatio(0),
                PulseError::OffTime(0)
            ],
            "all at once"
        );
    }

    #[test]
    fn the_input_mode_is_one_of_four() {
        assert_eq!(mode_error(0), None);
        assert_eq!(mode_error(3), None);
        assert_eq!(mode_error(4), Some(PulseError::InputMode(4)));
    }

    #[test]
    fn a_device_reports_its_inputs_out_of_range_by_number() {
        let mut map = HashMap::new();
        map.insert("0-0:96.134.0".to_owned(), 0.0);
        input(&mut map, 1, [1, 1, 160, 10, 50]);
        input(&mut map, 4, [1, 2, 0, 10, 50]);
        input(&mut map, 9, [2, 0, 1, 9, 4]);
        let found = check(&map).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].to_string(), "input 4: CT ratio 0 is outside 1-9999");
        assert_eq!(
            found[1].to_string(),
            "input 9: VT ratio x10 9 is outside 10-30000 (1.0-3000.0) \
             and OFF time 4 ms is outside 5-300"
        );
        map.insert("0-0:96.134.0".to_owned(), 4.0);
        assert_eq!(
            check(&map).unwrap()[0].to_string(),
            "input mode 4 is not one of 0 (Pot Free), 1 (PotAFree), 2 (Pot Live), 3 (GME SØ)"
        );
    }

    #[test]
    fn nothing_to_judge_without_settings() {
        let mut map = HashMap::new();
        map.insert("0-1:96.129.0".to_owned(), 12.0);
        assert_eq!(check(&map), None);
        input(&mut map, 2, [4, 1, 0, 0, 20]);
        assert_eq!(check(&map), Some(vec![]));
    }
}
