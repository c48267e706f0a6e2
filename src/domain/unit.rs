//! Units of measure a profile may name. A closed set, so a typo in a profile
//! ("kwh") is refused at load instead of reaching a billing system.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! units {
    ($($variant:ident => $text:literal),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Unit { $($variant),* }

        impl Unit {
            pub const ALL: &'static [Unit] = &[$(Unit::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Unit::$variant => $text),* }
            }
        }
    };
}

units! {
    None => "",
    Wh => "Wh",
    KWh => "kWh",
    MWh => "MWh",
    Varh => "varh",
    KVarh => "kvarh",
    VAh => "VAh",
    KVAh => "kVAh",
    W => "W",
    KW => "kW",
    Var => "var",
    KVar => "kvar",
    VA => "VA",
    KVA => "kVA",
    V => "V",
    A => "A",
    Hz => "Hz",
    Percent => "%",
    CubicMetre => "m3",
    NormalCubicMetre => "Nm3",
    Pulses => "pulses",
    Date => "YYMMDD",
    Time => "hhmmss",
    // An instant (an event's start or end), as Unix seconds.
    Timestamp => "timestamp",
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown unit {0:?}; known units: {known}", known = Unit::ALL.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnitError(String);

impl FromStr for Unit {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Unit::ALL
            .iter()
            .copied()
            .find(|unit| unit.as_str() == text)
            .ok_or_else(|| UnitError(text.to_owned()))
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Unit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

super::column::text_column!(Unit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_listed_unit_back() {
        for unit in Unit::ALL {
            assert_eq!(unit.as_str().parse::<Unit>().unwrap(), *unit);
        }
        assert!("kwh".parse::<Unit>().is_err());
    }
}
