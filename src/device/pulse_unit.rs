//! What the pulse concentrator's manual (S1000/378, /379, /383) allows an
//! input: its unit, pulse weight, CT and VT ratios, and the errors a
//! setting outside them is. Used by [`super::pulse`] to value the counts
//! and by [`super::pulse_check`] to check the settings read.

use std::ops::RangeInclusive;

use serde::Deserialize;

use crate::domain::obis::ObisCode;
use crate::domain::unit::Unit;

/// What an input counts, as the concentrator's menu names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PulseUnit {
    Pulses,
    KWh,
    Kvarh,
    KVAh,
    CubicMetres,
    NormalCubicMetres,
}

/// Pulse weights the concentrator offers: 1 pulse = 10^n of the unit, n = -3…3.
pub(crate) const WEIGHTS: [f64; 7] = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0];
/// CT ratios the concentrator takes ("CT ratio: 1…9999").
pub(crate) const CT_RATIOS: RangeInclusive<u16> = 1..=9999;
/// VT ratios as loaded, ×10 ("VT ratio: 1…3000,0 … loaded x10").
pub(crate) const VT_RATIOS_X10: RangeInclusive<u16> = 10..=30_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum PulseError {
    #[error("unit code {0} is not one of 0 (pulses) … 5 (Nm3)")]
    UnitCode(u16),
    #[error("weight code {0} is not one of 0 (0.001) … 6 (1000)")]
    WeightCode(u16),
    #[error("CT ratio {0} is outside 1-9999")]
    CtRatio(u16),
    #[error("VT ratio x10 {0} is outside 10-30000 (1.0-3000.0)")]
    VtRatio(u16),
    #[error("OFF time {0} ms is outside 5-300")]
    OffTime(u16),
    #[error("input mode {0} is not one of 0 (Pot Free), 1 (PotAFree), 2 (Pot Live), 3 (GME SØ)")]
    InputMode(u16),
}

impl PulseUnit {
    /// The concentrator's code for the unit (register value).
    pub(crate) fn from_code(code: u16) -> Result<PulseUnit, PulseError> {
        Ok(match code {
            0 => PulseUnit::Pulses,
            1 => PulseUnit::KWh,
            2 => PulseUnit::Kvarh,
            3 => PulseUnit::KVAh,
            4 => PulseUnit::CubicMetres,
            5 => PulseUnit::NormalCubicMetres,
            other => return Err(PulseError::UnitCode(other)),
        })
    }

    pub(crate) fn code(self) -> u16 {
        match self {
            PulseUnit::Pulses => 0,
            PulseUnit::KWh => 1,
            PulseUnit::Kvarh => 2,
            PulseUnit::KVAh => 3,
            PulseUnit::CubicMetres => 4,
            PulseUnit::NormalCubicMetres => 5,
        }
    }

    /// Whether CT and VT ratios apply ("just for energy pulses").
    pub(crate) fn is_energy(self) -> bool {
        matches!(self, PulseUnit::KWh | PulseUnit::Kvarh | PulseUnit::KVAh)
    }

    pub(crate) fn unit(self) -> Unit {
        match self {
            PulseUnit::Pulses => Unit::Pulses,
            PulseUnit::KWh => Unit::KWh,
            PulseUnit::Kvarh => Unit::KVarh,
            PulseUnit::KVAh => Unit::KVAh,
            PulseUnit::CubicMetres => Unit::CubicMetre,
            PulseUnit::NormalCubicMetres => Unit::NormalCubicMetre,
        }
    }

    /// The OBIS code of input `input`'s count. Electricity uses the input as
    /// channel B (`1-3:1.8.0` = import active energy counted on input 3);
    /// volumes use the gas value groups (A = 7: `7-3:3.0.0` volume at
    /// metering conditions, `7-3:13.0.0` converted to normal conditions);
    /// a bare pulse count has no standard code and takes the
    /// manufacturer-specific `0-3:96.128.0`.
    pub(crate) fn obis(self, input: u8) -> ObisCode {
        let text = match self {
            PulseUnit::KWh => format!("1-{input}:1.8.0"),
            PulseUnit::Kvarh => format!("1-{input}:3.8.0"),
            PulseUnit::KVAh => format!("1-{input}:9.8.0"),
            PulseUnit::CubicMetres => format!("7-{input}:3.0.0"),
            PulseUnit::NormalCubicMetres => format!("7-{input}:13.0.0"),
            PulseUnit::Pulses => format!("0-{input}:96.128.0"),
        };
        text.parse().expect("codes built from valid parts")
    }
}
