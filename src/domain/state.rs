//! What the head-end knows of a device's reachability.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// Stored in `devices.state` as its lowercase name (the column's
// `devices_state_check` allows exactly these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Its last poll succeeded.
    Online,
    /// Its last polls failed, past the retry budget.
    Unreachable,
    /// Not polled yet.
    Unknown,
    /// Not polled: an engineer disabled it.
    Disabled,
}

impl DeviceState {
    pub const ALL: [DeviceState; 4] = [
        DeviceState::Online,
        DeviceState::Unreachable,
        DeviceState::Unknown,
        DeviceState::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Online => "online",
            DeviceState::Unreachable => "unreachable",
            DeviceState::Unknown => "unknown",
            DeviceState::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device state {0:?}: expected online, unreachable, unknown or disabled")]
pub struct DeviceStateError(String);

impl FromStr for DeviceState {
    type Err = DeviceStateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DeviceState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| DeviceStateError(text.to_owned()))
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

super::column::text_column!(DeviceState);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_displays_and_nothing_else() {
        for state in DeviceState::ALL {
            assert_eq!(state.to_string().parse::<DeviceState>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert!("Online".parse::<DeviceState>().is_err());
        assert!("".parse::<DeviceState>().is_err());
    }
}
