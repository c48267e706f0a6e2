//! Jobs: the work an operator asks of a bus, queued in the database until
//! the bus's worker claims it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub(crate) enum JobKind {
    /// Read every register group of a device now, ahead of its schedule.
    ReadNow,
    /// Probe a range of unit addresses of a bus.
    Scan,
    /// Write a profile command to a device.
    Command,
}

/// Where a job is. `queued` until the bus's worker claims it, `running`
/// from then on, and one of the three ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub(crate) enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job is still to be done or under way.
    pub(crate) fn is_pending(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

/// Why a job failed, as its `error.code` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobErrorCode {
    /// The process stopped while the command was being sent: it may have
    /// reached the meter, so it is never sent again.
    Interrupted,
    /// The bus's worker does not poll the device (disabled or removed).
    NotPolled,
    /// The bus's protocol has no such operation.
    Unsupported,
    /// The device or the link failed: no answer, an exception, a bad frame.
    Device,
    /// What the device did could not be stored.
    Store,
}

impl JobErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            JobErrorCode::Interrupted => "interrupted",
            JobErrorCode::NotPolled => "not_polled",
            JobErrorCode::Unsupported => "unsupported",
            JobErrorCode::Device => "device",
            JobErrorCode::Store => "store",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states_are_spelt_as_the_jobs_table_checks_them() {
        let kinds = [JobKind::ReadNow, JobKind::Scan, JobKind::Command];
        let states = [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ];
        let spelt = |value: serde_json::Value| value.as_str().unwrap().to_owned();
        assert_eq!(
            kinds.map(|kind| spelt(serde_json::to_value(kind).unwrap())),
            ["read_now", "scan", "command"].map(str::to_owned)
        );
        assert_eq!(
            states.map(|state| spelt(serde_json::to_value(state).unwrap())),
            states.map(|state| state.as_str().to_owned())
        );
        assert_eq!(
            states.map(JobState::as_str),
            ["queued", "running", "succeeded", "failed", "cancelled"]
        );
    }
}
