//! Why a session step failed, told apart as a dead or garbled line or a
//! meter that answered and refused.

use std::io;
use std::time::Duration;

use super::dataset::DataSetError;
use super::frame::{CommandKind, EncodeError, FrameError};
use super::message::MeterMessage;
use super::profile_block::ProfileError;

/// Why a session step failed. [`SessionError::is_link_failure`] tells a
/// dead or garbled line apart from a meter that answered and refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no answer from the meter while waiting for {waiting_for}")]
    Timeout { waiting_for: &'static str },
    /// The exchange outlasted [`super::SessionConfig::exchange_deadline`]
    /// (a meter that keeps talking, or trickles).
    #[error("the exchange took longer than {deadline:?} while waiting for {waiting_for}")]
    DeadlineExceeded {
        waiting_for: &'static str,
        deadline: Duration,
    },
    /// An answer longer than [`super::SessionConfig::max_answer_len`].
    #[error("the answer grew past {limit} characters without its end")]
    AnswerTooLong { limit: usize },
    #[error("block check failed {attempts} times in a row")]
    BadBcc { attempts: u32 },
    #[error("bad frame from the meter: {0}")]
    Frame(#[from] FrameError),
    #[error("expected {expected} from the meter, got {got}")]
    UnexpectedMessage { expected: &'static str, got: String },
    #[error("the meter offers {offered} baud without negotiation; this line accepts at most {max}")]
    BaudNotSupported { offered: u32, max: u32 },
    #[error("the meter refused the password")]
    PasswordRefused,
    /// The meter answered a command with an error, e.g. `(ERROR)` or `#0001`.
    #[error("the meter answered with an error: {0}")]
    MeterError(String),
    /// The meter answered NAK to every repeat of a command.
    #[error("the meter answered NAK to {command:?} {attempts} times")]
    Nak { command: CommandKind, attempts: u32 },
    #[error("the session is not in programming mode")]
    NotProgramming,
    /// No traffic for longer than the meter stays in programming mode.
    #[error("programming mode lapsed after {idle:?} without traffic")]
    ProgrammingExpired { idle: Duration },
    /// A request of ours that cannot be put on the wire.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("unreadable data sets: {0}")]
    DataSets(#[from] DataSetError),
    #[error("unreadable load profile: {0}")]
    Profile(ProfileError),
    #[error("link failed: {0}")]
    Io(#[from] io::Error),
}

impl SessionError {
    /// True when the line failed or lost step with the meter (no answer,
    /// garbled frames, an answer out of turn): the device may be
    /// unreachable. False when the meter answered and refused, or when the
    /// request itself was invalid.
    pub fn is_link_failure(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::DeadlineExceeded { .. }
                | Self::AnswerTooLong { .. }
                | Self::BadBcc { .. }
                | Self::Frame(_)
                | Self::UnexpectedMessage { .. }
                | Self::BaudNotSupported { .. }
                | Self::ProgrammingExpired { .. }
                | Self::Io(_)
        )
    }
}

impl From<ProfileError> for SessionError {
    fn from(error: ProfileError) -> Self {
        match error {
            ProfileError::Refused(answer) => Self::MeterError(answer),
            other => Self::Profile(other),
        }
    }
}

/// The error for an answer out of turn, naming what came.
pub(super) fn unexpected(expected: &'static str, got: &MeterMessage) -> SessionError {
    let got = match got {
        MeterMessage::Identification(ident) => format!(
            "identification /{}{}{}",
            ident.manufacturer,
            char::from(ident.baud_char),
            ident.identification
        ),
        MeterMessage::Ack => "ACK".into(),
        MeterMessage::Nak => "NAK".into(),
        MeterMessage::Data(block) => format!("data block {:?}", block.text.chars().take(40).collect::<String>()),
        MeterMessage::Command(command) => format!("command {:?}", command.kind),
    };
    SessionError::UnexpectedMessage { expected, got }
}
