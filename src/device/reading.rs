//! A value read from a device, named by OBIS: what every driver produces and
//! everything downstream consumes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::obis::ObisCode;
use super::unit::Unit;

/// Quality flags carried with every stored value, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize)]
pub struct Quality(pub i32);

impl Quality {
    pub const GOOD: Quality = Quality(0);
    pub const ESTIMATED: Quality = Quality(1 << 0);
    pub const INTERPOLATED: Quality = Quality(1 << 1);
    pub const GAP: Quality = Quality(1 << 2);
    pub const SPIKE: Quality = Quality(1 << 3);
    pub const NEGATIVE_DELTA: Quality = Quality(1 << 4);
    pub const ROLLOVER: Quality = Quality(1 << 5);
    pub const CLOCK_UNCERTAIN: Quality = Quality(1 << 6);
    pub const EDITED: Quality = Quality(1 << 7);

    const NAMES: [(Quality, &'static str); 8] = [
        (Quality::ESTIMATED, "estimated"),
        (Quality::INTERPOLATED, "interpolated"),
        (Quality::GAP, "gap"),
        (Quality::SPIKE, "spike"),
        (Quality::NEGATIVE_DELTA, "negative_delta"),
        (Quality::ROLLOVER, "rollover"),
        (Quality::CLOCK_UNCERTAIN, "clock_uncertain"),
        (Quality::EDITED, "edited"),
    ];

    pub fn contains(self, other: Quality) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn with(self, other: Quality) -> Quality {
        Quality(self.0 | other.0)
    }

    /// The flags' stable snake_case names, as the API shows them.
    pub fn names(self) -> Vec<&'static str> {
        Quality::NAMES
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect()
    }
}

/// One value from one device at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub obis: ObisCode,
    pub value: f64,
    pub unit: Unit,
    /// When the head-end received it.
    pub read_at: DateTime<Utc>,
    /// When the device captured it, where the device says (a maximum
    /// demand's time of occurrence).
    pub captured_at: Option<DateTime<Utc>>,
    pub quality: Quality,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_combine_and_name_themselves() {
        let quality = Quality::GOOD.with(Quality::ESTIMATED).with(Quality::ROLLOVER);
        assert!(quality.contains(Quality::ESTIMATED));
        assert!(!quality.contains(Quality::SPIKE));
        assert_eq!(quality.names(), vec!["estimated", "rollover"]);
    }
}
