//! Quality flags carried with every stored value (readings, intervals,
//! billing periods), as a bit set in an INTEGER column. The bits are fixed:
//! stored rows keep their meaning across releases.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A set of quality flags; `GOOD` is the empty set. Serialized as its
/// number, as it is stored; the API shows [`Quality::names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(transparent)]
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
    /// Stamped more than [`FUTURE_TOLERANCE`](super::clock::FUTURE_TOLERANCE)
    /// ahead of the server's clock when it was stored (a meter clock far
    /// ahead, a server clock that jumped): kept, but never taken as the
    /// latest value nor as where a read or a pass resumes.
    pub const FUTURE_TIMESTAMP: Quality = Quality(1 << 8);

    /// Every flag with its stable name, in bit order.
    pub const FLAGS: [(Quality, &'static str); 9] = [
        (Quality::ESTIMATED, "estimated"),
        (Quality::INTERPOLATED, "interpolated"),
        (Quality::GAP, "gap"),
        (Quality::SPIKE, "spike"),
        (Quality::NEGATIVE_DELTA, "negative_delta"),
        (Quality::ROLLOVER, "rollover"),
        (Quality::CLOCK_UNCERTAIN, "clock_uncertain"),
        (Quality::EDITED, "edited"),
        (Quality::FUTURE_TIMESTAMP, "future_timestamp"),
    ];

    pub fn contains(self, other: Quality) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn with(self, other: Quality) -> Quality {
        Quality(self.0 | other.0)
    }

    /// The flags' stable snake_case names, as the API shows them.
    pub fn names(self) -> Vec<&'static str> {
        Quality::FLAGS
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect()
    }
}

/// The flags' names joined by commas (`estimated,rollover`); empty when good.
impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown quality flag {0:?}; known flags: estimated, interpolated, gap, spike, negative_delta, rollover, clock_uncertain, edited, future_timestamp"
)]
pub struct QualityError(String);

/// Reads the form `Display` writes: flag names separated by commas.
impl FromStr for Quality {
    type Err = QualityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .try_fold(Quality::GOOD, |quality, name| {
                Quality::FLAGS
                    .iter()
                    .find(|(_, known)| *known == name)
                    .map(|(flag, _)| quality.with(*flag))
                    .ok_or_else(|| QualityError(name.to_owned()))
            })
    }
}

impl sqlx::Type<sqlx::Postgres> for Quality {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <i32 as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::postgres::PgHasArrayType for Quality {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <i32 as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for Quality {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <i32 as sqlx::Encode<'_, sqlx::Postgres>>::encode_by_ref(&self.0, buf)
    }
}

/// Every bit pattern is kept as stored: a bit this release does not name
/// is carried along, not dropped.
impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Quality {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Quality(<i32 as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn flags_combine_and_name_themselves() {
        let quality = Quality::GOOD.with(Quality::ESTIMATED).with(Quality::ROLLOVER);
        assert!(quality.contains(Quality::ESTIMATED));
        assert!(!quality.contains(Quality::SPIKE));
        assert_eq!(quality.names(), vec!["estimated", "rollover"]);
        assert_eq!(quality.to_string(), "estimated,rollover");
        assert_eq!(Quality::GOOD.to_string(), "");
    }

    #[test]
    fn refuses_an_unknown_flag() {
        assert_eq!("".parse::<Quality>().unwrap(), Quality::GOOD);
        assert_eq!(
            "spike, edited".parse::<Quality>().unwrap(),
            Quality::SPIKE.with(Quality::EDITED)
        );
        assert_eq!("estimated,bogus".parse::<Quality>(), Err(QualityError("bogus".into())));
    }

    proptest! {
        #[test]
        fn every_set_of_named_flags_round_trips(bits in 0i32..512) {
            let quality = Quality(bits);
            prop_assert_eq!(quality.to_string().parse::<Quality>().unwrap(), quality);
        }
    }
}
