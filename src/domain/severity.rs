//! How much an event matters to an operator.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How much an event matters: `info`, `warning` or `critical`.
// Stored in `events.severity` as its lowercase name (the column's
// `events_severity_check` allows exactly these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, nothing to do (a billing reset, communication restored).
    Info,
    /// Needs a look (communication lost, a clock off, a gap in the data).
    Warning,
    /// Needs action now (a meter's error condition, its cover opened).
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected info, warning or critical")]
pub struct SeverityError(String);

impl FromStr for Severity {
    type Err = SeverityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
            .ok_or_else(|| SeverityError(text.to_owned()))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

super::column::text_column!(Severity);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_displays_and_nothing_else() {
        for severity in Severity::ALL {
            assert_eq!(severity.to_string().parse::<Severity>(), Ok(severity));
            assert_eq!(serde_json::to_value(severity).unwrap(), severity.as_str());
        }
        assert!("error".parse::<Severity>().is_err());
        assert!("Warning".parse::<Severity>().is_err());
    }
}
