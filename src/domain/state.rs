//! What the head-end knows of a device's reachability.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Its last poll succeeded.
    Online,
    /// Its last polls failed, past the retry budget.
    Unreachable,
    /// Not polled yet.
    Unknown,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Online => "online",
            DeviceState::Unreachable => "unreachable",
            DeviceState::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> DeviceState {
        match text {
            "online" => DeviceState::Online,
            "unreachable" => DeviceState::Unreachable,
            _ => DeviceState::Unknown,
        }
    }
}
