//! OBIS codes (IEC 62056-61): the one name every value carries inside Ohmnibus.
//!
//! Accepted text forms: `A-B:C.D.E` with an optional billing suffix `*F` or `&F`
//! (`1-1:1.8.0*1` is total import active energy at the last billing reset).
//! Value group C may be a letter (`C`, `F`, `L`, `P`) as the abstract and
//! service codes of IEC 62056-21 readouts use (`0-0:F.F.0`, `0-0:C.50.1`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed OBIS code. Invalid codes cannot be constructed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObisCode {
    medium: u8,
    channel: u8,
    quantity: Group,
    kind: Group,
    tariff: Group,
    billing: Option<u8>,
}

/// One of the groups C, D or E: a number 0–255, or a letter used by
/// IEC 62056-21 for service and abstract registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Group {
    Number(u8),
    Letter(char),
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::Number(n) => write!(f, "{n}"),
            Group::Letter(c) => write!(f, "{c}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OBIS code {text:?}: {reason}")]
pub struct ObisError {
    text: String,
    reason: &'static str,
}

impl ObisCode {
    /// The code without its billing suffix (`1-1:1.8.0*1` → `1-1:1.8.0`).
    pub fn current(&self) -> ObisCode {
        ObisCode {
            billing: None,
            ..self.clone()
        }
    }

    /// The billing-period suffix F (`*1` = last reset), if any.
    pub fn billing(&self) -> Option<u8> {
        self.billing
    }

    /// Value group C as a number, if numeric (1 = active import, 32 = L1 voltage…).
    pub fn quantity(&self) -> Option<u8> {
        match self.quantity {
            Group::Number(n) => Some(n),
            Group::Letter(_) => None,
        }
    }

    /// Value group D as a number, if numeric (7 = instantaneous, 8 = energy, 6 = max demand).
    pub fn kind(&self) -> Option<u8> {
        match self.kind {
            Group::Number(n) => Some(n),
            Group::Letter(_) => None,
        }
    }

    /// Whether it names a cumulative energy register (value group D = 8) as
    /// it stands now (no billing-period suffix): what intervals are derived
    /// from and what the server snapshots at a billing reset.
    pub fn is_cumulative_energy(&self) -> bool {
        self.kind() == Some(8) && self.billing.is_none()
    }

    /// Whether it names the same object whatever its groups A-B: value
    /// group C = 0 (general purpose: billing reset count and times, clock,
    /// identifiers), C = 96–99 (service entries, error registers, lists,
    /// profiles) and the letter codes of IEC 62056-21 readouts (`C.1.0`,
    /// `F.F.0`). Meters differ in the A-B they give these: the TH40C writes
    /// its clock `1-0:0.9.2` and its error register `0-0:F.F.0` (manual,
    /// App. A), and a readout may leave A-B out (`0.1.2*101`).
    pub fn is_general_purpose(&self) -> bool {
        match self.quantity {
            Group::Number(c) => c == 0 || (96..=99).contains(&c),
            Group::Letter(_) => true,
        }
    }

    /// Groups A-B (medium and channel).
    pub fn groups_ab(&self) -> (u8, u8) {
        (self.medium, self.channel)
    }

    /// The same code with groups A-B `medium`-`channel`.
    pub fn with_groups_ab(&self, medium: u8, channel: u8) -> ObisCode {
        ObisCode {
            medium,
            channel,
            ..self.clone()
        }
    }

    /// Value group E as a number, if numeric (0 = total, 1–4 = tariff rates).
    pub fn tariff(&self) -> Option<u8> {
        match self.tariff {
            Group::Number(n) => Some(n),
            Group::Letter(_) => None,
        }
    }
}

fn number(part: &str, text: &str, reason: &'static str) -> Result<u8, ObisError> {
    part.trim().parse::<u8>().map_err(|_| ObisError {
        text: text.to_owned(),
        reason,
    })
}

fn group(part: &str, text: &str, reason: &'static str) -> Result<Group, ObisError> {
    let part = part.trim();
    let mut chars = part.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_uppercase() => Ok(Group::Letter(c)),
        _ => number(part, text, reason).map(Group::Number),
    }
}

impl FromStr for ObisCode {
    type Err = ObisError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| ObisError {
            text: text.to_owned(),
            reason,
        };
        let (ab, rest) = text.split_once(':').ok_or_else(|| err("expected A-B:C.D.E"))?;
        let (a, b) = ab.split_once('-').ok_or_else(|| err("expected A-B before ':'"))?;
        let (cde, billing) = match rest.split_once(['*', '&']) {
            Some((cde, f)) => (cde, Some(number(f, text, "billing suffix must be 0-255")?)),
            None => (rest, None),
        };
        let mut parts = cde.split('.');
        let (Some(c), Some(d), Some(e), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(err("expected three groups C.D.E after ':'"));
        };
        Ok(ObisCode {
            medium: number(a, text, "group A must be 0-255")?,
            channel: number(b, text, "group B must be 0-255")?,
            quantity: group(c, text, "group C must be 0-255 or a capital letter")?,
            kind: group(d, text, "group D must be 0-255 or a capital letter")?,
            tariff: group(e, text, "group E must be 0-255 or a capital letter")?,
            billing,
        })
    }
}

impl fmt::Display for ObisCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}:{}.{}.{}",
            self.medium, self.channel, self.quantity, self.kind, self.tariff
        )?;
        if let Some(billing) = self.billing {
            write!(f, "*{billing}")?;
        }
        Ok(())
    }
}

impl Serialize for ObisCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObisCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

super::column::text_column!(ObisCode);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trips_common_codes() {
        for text in [
            "1-1:1.8.0",
            "1-1:1.8.2*1",
            "1-0:0.9.2",
            "0-0:F.F.0",
            "1-1:72.7.0",
            "0-0:C.50.1*12",
        ] {
            let code: ObisCode = text.parse().unwrap();
            assert_eq!(code.to_string(), text);
        }
    }

    #[test]
    fn exposes_groups() {
        let code: ObisCode = "1-1:1.8.3*2".parse().unwrap();
        assert_eq!(
            (code.quantity(), code.kind(), code.tariff(), code.billing()),
            (Some(1), Some(8), Some(3), Some(2))
        );
        assert_eq!(code.current().to_string(), "1-1:1.8.3");
    }

    #[test]
    fn general_purpose_codes_are_c_0_96_to_99_and_letters() {
        let general = |text: &str| text.parse::<ObisCode>().unwrap().is_general_purpose();
        assert!(general("0-0:0.1.2*101"));
        assert!(general("1-0:0.9.2"));
        assert!(general("0-0:96.1.0"));
        assert!(general("1-0:99.1.0"));
        assert!(general("0-0:C.1.0"));
        assert!(general("0-0:F.F.0"));
        assert!(!general("1-1:1.8.0"));
        assert!(!general("1-1:32.7.0"));
        assert!(!general("1-1:94.7.0"));
        assert!(!general("1-1:181.130.0"));
        let code: ObisCode = "0-0:0.1.2*101".parse().unwrap();
        assert_eq!(code.with_groups_ab(1, 0).to_string(), "1-0:0.1.2*101");
        assert_eq!(code.groups_ab(), (0, 0));
    }

    #[test]
    fn only_current_energy_registers_are_cumulative_energies() {
        let cumulative = |text: &str| text.parse::<ObisCode>().unwrap().is_cumulative_energy();
        assert!(cumulative("1-0:1.8.0"));
        assert!(cumulative("1-1:1.8.0"));
        assert!(cumulative("1-0:2.8.1"));
        assert!(!cumulative("1-0:1.8.0*1"));
        assert!(!cumulative("1-1:1.8.0*1"));
        assert!(!cumulative("1-0:1.7.0"));
        assert!(!cumulative("1-1:1.7.0"));
        assert!(!cumulative("1-0:32.7.0"));
    }

    #[test]
    fn rejects_malformed_codes() {
        for text in [
            "",
            "1.8.0",
            "1-1:1.8",
            "1-1:1.8.0.0",
            "1-1:256.8.0",
            "x-1:1.8.0",
            "1-1:1.8.0*",
        ] {
            assert!(text.parse::<ObisCode>().is_err(), "{text} should be rejected");
        }
    }

    fn group_text() -> impl Strategy<Value = String> {
        prop_oneof![any::<u8>().prop_map(|n| n.to_string()), "[A-Z]"]
    }

    proptest! {
        #[test]
        fn display_and_parse_are_inverse(
            a in any::<u8>(),
            b in any::<u8>(),
            c in group_text(),
            d in group_text(),
            e in group_text(),
            f in proptest::option::of(any::<u8>()),
        ) {
            let text = match f {
                Some(f) => format!("{a}-{b}:{c}.{d}.{e}*{f}"),
                None => format!("{a}-{b}:{c}.{d}.{e}"),
            };
            let code: ObisCode = text.parse().unwrap();
            prop_assert_eq!(code.to_string(), text);
            prop_assert_eq!(code.to_string().parse::<ObisCode>().unwrap(), code);
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,20}") {
            let _ = text.parse::<ObisCode>();
        }
    }
}
