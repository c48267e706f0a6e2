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
/// from then on, and one of the three ends; a command that needs a
/// technician to open the meter's programming window on site waits in
/// `awaiting_field_programming` between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub(crate) enum JobState {
    Queued,
    Running,
    AwaitingFieldProgramming,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::AwaitingFieldProgramming => "awaiting_field_programming",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job is still to be done or under way.
    pub(crate) fn is_pending(self) -> bool {
        matches!(
            self,
            JobState::Queued | JobState::Running | JobState::AwaitingFieldProgramming
        )
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
    /// The TH40C's clock was already set today (TH40C manual, App. E: once
    /// a day); nothing was written.
    ClockSetToday,
    /// The meter's clock is further off than the meter lets a bus command
    /// correct (TH40C manual, App. E: at most 5 minutes); nothing was written.
    ClockTooFar,
    /// The meter refused the write as protected (TH40C: exception 01).
    WriteProtected,
    /// What was read back after the write is not what was written.
    VerificationFailed,
    /// The meter refused the password; nothing more is tried until an
    /// operator sets it again.
    PasswordRefused,
    /// The meter's programming window did not open in time.
    FieldProgrammingExpired,
}

impl JobErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            JobErrorCode::Interrupted => "interrupted",
            JobErrorCode::NotPolled => "not_polled",
            JobErrorCode::Unsupported => "unsupported",
            JobErrorCode::Device => "device",
            JobErrorCode::Store => "store",
            JobErrorCode::ClockSetToday => "clock_set_today",
            JobErrorCode::ClockTooFar => "clock_too_far",
            JobErrorCode::WriteProtected => "write_protected",
            JobErrorCode::VerificationFailed => "verification_failed",
            JobErrorCode::PasswordRefused => "password_refused",
            JobErrorCode::FieldProgrammingExpired => "field_programming_expired",
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
            JobState::AwaitingFieldProgramming,
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
            [
                "queued",
                "running",
                "awaiting_field_programming",
                "succeeded",
                "failed",
                "cancelled"
            ]
        );
    }
}
