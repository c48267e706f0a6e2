//! IANA time zones (`Europe/Paris`): the zone of a site, in which its
//! billing schedule, its derived intervals and its months are local. A name
//! that is not in the IANA database is refused where it is given and is an
//! error where it is loaded, never read as UTC.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A zone of the IANA database, written as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IanaZone(Tz);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)")]
pub struct ZoneError(String);

impl IanaZone {
    pub const UTC: IanaZone = IanaZone(Tz::UTC);

    /// The zone, for the calendar arithmetic of `chrono`.
    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl From<Tz> for IanaZone {
    fn from(zone: Tz) -> IanaZone {
        IanaZone(zone)
    }
}

impl FromStr for IanaZone {
    type Err = ZoneError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<Tz>().map(IanaZone).map_err(|_| ZoneError(text.to_owned()))
    }
}

impl fmt::Display for IanaZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for IanaZone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for IanaZone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

super::column::text_column!(IanaZone);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn refuses_names_outside_the_iana_database() {
        for text in ["", "Mars/Olympus_Mons", "europe/paris", "CET ", "+01:00"] {
            assert_eq!(text.parse::<IanaZone>(), Err(ZoneError(text.to_owned())), "{text:?}");
        }
        assert_eq!(
            "Europe/Paris".parse::<IanaZone>().unwrap().tz(),
            chrono_tz::Europe::Paris
        );
        assert_eq!(IanaZone::UTC.to_string(), "UTC");
    }

    #[test]
    fn serializes_as_its_name() {
        let zone: IanaZone = "Asia/Kolkata".parse().unwrap();
        assert_eq!(serde_json::to_value(zone).unwrap(), "Asia/Kolkata");
        assert_eq!(serde_json::from_value::<IanaZone>("Asia/Kolkata".into()).unwrap(), zone);
        assert!(serde_json::from_value::<IanaZone>("Asia/Atlantis".into()).is_err());
    }

    proptest! {
        #[test]
        fn every_zone_parses_back_from_its_name(index in 0..chrono_tz::TZ_VARIANTS.len()) {
            let zone = IanaZone::from(chrono_tz::TZ_VARIANTS[index]);
            prop_assert_eq!(zone.to_string().parse::<IanaZone>(), Ok(zone));
        }
    }
}
