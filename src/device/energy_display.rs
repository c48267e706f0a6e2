//! How many digits a meter counts its energies on, and in which unit: where
//! its energy registers roll over to zero, and what a register read over
//! Modbus counts in when the meter may be set to MWh.
//!
//! A profile's `[energy_display]` says what the meter type allows; each
//! device says what its meter is set to (`energy_unit`, `energy_decimals`),
//! or the profile's defaults apply.

use serde::Deserialize;

use super::reading::Reading;
use crate::domain::unit::Unit;

/// A meter type's energy registers, from its manual.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyDisplay {
    /// Digits of an energy register, decimals included (the TH40C: 8).
    pub digits: u8,
    /// The fewest and most decimals the meter may be set to show (the
    /// A1000: 1–2).
    #[serde(default)]
    pub min_decimals: u8,
    pub max_decimals: u8,
    /// The decimals of a device that does not say.
    pub decimals: u8,
    /// Whether the meter may count in MWh, Mvarh, MVAh instead of kWh,
    /// kvarh, kVAh (the TH40C may).
    #[serde(default)]
    pub mega_units: bool,
}

/// What one device's meter is set to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnergySetting {
    pub decimals: u8,
    /// Counting in MWh, Mvarh, MVAh.
    pub mega: bool,
}

/// The unit names a device's `energy_unit` may take.
pub const KWH: &str = "kWh";
pub const MWH: &str = "MWh";

impl EnergyDisplay {
    /// The setting of a device whose stored `unit` and `decimals` are
    /// given (`None`: the profile's default).
    pub fn setting(&self, unit: Option<&str>, decimals: Option<i16>) -> EnergySetting {
        EnergySetting {
            decimals: decimals
                .and_then(|d| u8::try_from(d).ok())
                .filter(|d| (self.min_decimals..=self.max_decimals).contains(d))
                .unwrap_or(self.decimals),
            mega: self.mega_units && unit == Some(MWH),
        }
    }

    /// Where an energy register of a meter so set rolls over, in the unit
    /// the head-end stores (kWh, kvarh, kVAh): 10^(digits − decimals) of
    /// the meter's unit.
    pub fn wrap_point(&self, setting: EnergySetting) -> f64 {
        let whole_digits = i32::from(self.digits) - i32::from(setting.decimals);
        let factor = if setting.mega { 1000.0 } else { 1.0 };
        10f64.powi(whole_digits) * factor
    }

    /// Why a device's `energy_unit` or `energy_decimals` does not fit this
    /// meter type, naming the field.
    pub fn check(&self, unit: Option<&str>, decimals: Option<i64>) -> Result<(), (&'static str, String)> {
        match unit {
            None | Some(KWH) => {}
            Some(MWH) if self.mega_units => {}
            Some(MWH) => return Err(("energy_unit", "this meter type counts in kWh only".to_owned())),
            Some(other) => return Err(("energy_unit", format!("{other:?} is neither \"kWh\" nor \"MWh\""))),
        }
        match decimals {
            Some(d) if !(i64::from(self.min_decimals)..=i64::from(self.max_decimals)).contains(&d) => Err((
                "energy_decimals",
                format!(
                    "{d} is outside {}–{} (what this meter type may show)",
                    self.min_decimals, self.max_decimals
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// A register read over Modbus counts in the meter's unit: a meter set to
/// MWh gives its energies in MWh, Mvarh, MVAh, stored ×1000 in kWh, kvarh,
/// kVAh (the units its profile names them in).
pub fn to_stored_units(readings: &mut [Reading], setting: EnergySetting) {
    if !setting.mega {
        return;
    }
    for reading in readings {
        if matches!(reading.unit, Unit::KWh | Unit::KVarh | Unit::KVAh) {
            reading.value *= 1000.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn th40c() -> EnergyDisplay {
        EnergyDisplay {
            digits: 8,
            min_decimals: 0,
            max_decimals: 3,
            decimals: 2,
            mega_units: true,
        }
    }

    #[test]
    fn registers_roll_over_where_the_digits_end() {
        // TH40C, 8 digits: 999999.99 kWh with 2 decimals, 99999.999 MWh with 3.
        let display = th40c();
        assert_eq!(display.wrap_point(display.setting(None, None)), 1_000_000.0);
        let mwh = display.setting(Some("MWh"), Some(3));
        assert_eq!(display.wrap_point(mwh), 100_000_000.0);
        // COUNTIS E33: 0 to 999999.9 kWh, 7 digits with 1 decimal.
        let e33 = EnergyDisplay {
            digits: 7,
            min_decimals: 0,
            max_decimals: 1,
            decimals: 1,
            mega_units: false,
        };
        assert_eq!(e33.wrap_point(e33.setting(None, None)), 1_000_000.0);
        // A meter type that counts in kWh only is never taken as MWh.
        assert!(!e33.setting(Some("MWh"), None).mega);
    }

    #[test]
    fn a_setting_the_meter_type_cannot_have_is_named() {
        let display = th40c();
        assert!(display.check(Some("MWh"), Some(3)).is_ok());
        assert_eq!(display.check(Some("GWh"), None).unwrap_err().0, "energy_unit");
        assert_eq!(display.check(None, Some(4)).unwrap_err().0, "energy_decimals");
        let kwh_only = EnergyDisplay {
            mega_units: false,
            ..display
        };
        assert_eq!(kwh_only.check(Some("MWh"), None).unwrap_err().0, "energy_unit");
    }

    #[test]
    fn an_a1000_shows_one_or_two_decimals_on_seven_digits() {
        // A1000 manual 1.1, item 5: 0 - 99999.99 kWh or 0 - 999999.9 kWh.
        let a1000 = EnergyDisplay {
            digits: 7,
            min_decimals: 1,
            max_decimals: 2,
            decimals: 2,
            mega_units: false,
        };
        assert_eq!(a1000.wrap_point(a1000.setting(None, None)), 100_000.0);
        assert_eq!(a1000.wrap_point(a1000.setting(None, Some(1))), 1_000_000.0);
        assert!(a1000.check(None, Some(1)).is_ok());
        let refused = a1000.check(None, Some(0)).unwrap_err();
        assert_eq!(
            refused,
            (
                "energy_decimals",
                "0 is outside 1–2 (what this meter type may show)".to_owned()
            )
        );
        // A stored setting outside the range falls back to the default.
        assert_eq!(a1000.setting(None, Some(0)).decimals, 2);
    }
}
