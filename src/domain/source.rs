//! Where a stored value came from: who recorded an interval, who closed a
//! billing period. Stored as TEXT (the tables' `*_source_check` constraints
//! allow exactly these names).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source {text:?}: expected {expected}")]
pub struct SourceError {
    text: String,
    expected: &'static str,
}

macro_rules! source_type {
    ($(#[$doc:meta])* $name:ident, $expected:literal, { $($(#[$variant_doc:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_doc])* $variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }
        }

        impl FromStr for $name {
            type Err = SourceError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|source| source.as_str() == text)
                    .ok_or_else(|| SourceError {
                        text: text.to_owned(),
                        expected: $expected,
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        super::column::text_column!($name);
    };
}

source_type!(
    /// Who recorded a load-profile interval (`load_profile_intervals.source`).
    IntervalSource, "meter, derived, estimated or edited", {
        /// Read from the meter's own load profile.
        Meter => "meter",
        /// Derived by the server from a cumulative register.
        Derived => "derived",
        /// Estimated by the server for a gap.
        Estimated => "estimated",
        /// Corrected by an operator.
        Edited => "edited",
    }
);

source_type!(
    /// Who closed a billing period (`billing_periods.source`): the meter
    /// (its own history) or the server (the site's billing schedule, for
    /// meters that keep none).
    BillingSource, "meter or server", {
        Meter => "meter",
        Server => "server",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_what_they_display_and_nothing_else() {
        for source in IntervalSource::ALL {
            assert_eq!(source.to_string().parse::<IntervalSource>(), Ok(*source));
        }
        for source in BillingSource::ALL {
            assert_eq!(source.to_string().parse::<BillingSource>(), Ok(*source));
        }
        assert!("server".parse::<IntervalSource>().is_err());
        assert!("derived".parse::<BillingSource>().is_err());
        assert!("Meter".parse::<BillingSource>().is_err());
    }
}
