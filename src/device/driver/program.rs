//! What a command made in programming mode did, and why it did not: the
//! worker records each write with what the meter showed before and after,
//! and acts on each failure differently (waits for someone to start field
//! programming at the meter, asks for the password, gives up).

use crate::protocol::iec62056::session::SessionError;

use super::exchange::Outcome;

/// One write of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteDone {
    /// The address written.
    pub address: String,
    /// The address read before and after (the written one, or the register
    /// that shows the effect).
    pub read: String,
    /// What the meter showed before the write (`None`: it refused the read).
    pub before: Option<String>,
    /// The value written.
    pub written: String,
    /// What it showed after (`None`: refused, or not read because the
    /// command stopped first).
    pub after: Option<String>,
}

/// A command the meter took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramDone {
    pub kind: String,
    pub writes: Vec<WriteDone>,
    /// Every write was verified by its read-back. False only when the
    /// profile says a write cannot be read back (`check = "none"`); a
    /// read-back that does not match is [`ProgramError::NotVerified`].
    pub verified: bool,
}

/// Why a command did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The device's profile has no such command, or its bus is not
    /// IEC 62056-21.
    #[error("{0}")]
    Unsupported(String),
    /// What the command would send cannot be put on the wire (a password
    /// or a value the standard does not allow). Nothing was sent.
    #[error("{0}")]
    Invalid(String),
    /// The meter refused the first write of a command it accepts only in
    /// field programming: nobody started "PRG" at the meter (or it lapsed).
    /// Nothing was written; the command can be sent again once PRG shows.
    #[error(
        "the meter refused the write of {address} with {answer}: it takes this command only in field programming (\"PRG\" on its display)"
    )]
    NotInFieldProgramming { address: String, answer: String },
    /// The meter answered NAK to the password. Nothing was written.
    #[error("the meter refused the password")]
    PasswordRefused,
    /// The meter refused a write: `done` holds the writes it took before.
    #[error("the meter refused the write of {address} with {answer}")]
    WriteRefused {
        address: String,
        answer: String,
        done: Vec<WriteDone>,
    },
    /// Every write was acknowledged, but a read-back does not show it.
    #[error("the meter took the writes but does not show them: {}", mismatches(.0))]
    NotVerified(ProgramDone),
    /// The line failed (no answer, garbled frames, an answer out of turn):
    /// `done` holds the writes acknowledged before; a write under way may
    /// or may not have reached the meter.
    #[error("{error}")]
    Link { error: SessionError, done: Vec<WriteDone> },
}

impl ProgramError {
    /// How the session ended, for the bus statistics.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            ProgramError::Unsupported(_) | ProgramError::Invalid(_) => None,
            ProgramError::Link { error, .. } => Some(match error {
                SessionError::Timeout { .. } | SessionError::DeadlineExceeded { .. } => Outcome::Timeout,
                SessionError::BadBcc { .. } => Outcome::CrcError,
                _ => Outcome::TransportError,
            }),
            _ => Some(Outcome::Exception),
        }
    }

    /// A stable snake_case name of the failure, for job records.
    pub fn code(&self) -> &'static str {
        match self {
            ProgramError::Unsupported(_) => "unsupported",
            ProgramError::Invalid(_) => "invalid",
            ProgramError::NotInFieldProgramming { .. } => "not_in_field_programming",
            ProgramError::PasswordRefused => "password_refused",
            ProgramError::WriteRefused { .. } => "write_refused",
            ProgramError::NotVerified(_) => "not_verified",
            ProgramError::Link { .. } => "link_failed",
        }
    }

    /// Whether the device may be unreachable.
    pub fn is_link_failure(&self) -> bool {
        matches!(self, ProgramError::Link { error, .. } if error.is_link_failure())
    }
}

fn mismatches(done: &ProgramDone) -> String {
    done.writes
        .iter()
        .map(|write| {
            format!(
                "{} wrote {:?}, {} read {:?} before and {:?} after",
                write.address, write.written, write.read, write.before, write.after
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
