//! Why a driver could not do what it was asked.

use super::modbus_link::LinkError;
use crate::protocol::iec62056::session::SessionError;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Modbus(#[from] LinkError),
    #[error(transparent)]
    Iec(#[from] SessionError),
    /// The bus's protocol has no such operation.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The device's profile does not say how.
    #[error("{0}")]
    Profile(String),
}

impl DriverError {
    /// The meter refused the programming-mode password (IEC 62056-21 `P1`
    /// answered NAK or with an error).
    pub fn is_password_refused(&self) -> bool {
        matches!(self, DriverError::Iec(SessionError::PasswordRefused))
    }

    /// The meter answered the request with an error of its own (`(ERROR)`,
    /// `#nnnn`): it was heard, and said no.
    pub fn is_meter_error(&self) -> bool {
        matches!(self, DriverError::Iec(SessionError::MeterError(_)))
    }

    /// The device did not answer usably: no answer, a garbled or cut one,
    /// a link that failed. Not a refusal (an exception, a meter's error)
    /// nor a profile that cannot be read.
    pub fn is_silence(&self) -> bool {
        match self {
            DriverError::Modbus(LinkError::Exception { .. }) => false,
            DriverError::Modbus(_) => true,
            DriverError::Iec(error) => error.is_link_failure(),
            DriverError::Unsupported(_) | DriverError::Profile(_) => false,
        }
    }

    /// A failure as an engineer reads it: the Modbus exception by number
    /// and name, "no answer" for a Modbus timeout.
    pub fn describe(&self) -> String {
        match self {
            DriverError::Modbus(LinkError::Exception { code, .. }) => {
                format!("device answered Modbus exception {:02X} ({code})", u8::from(*code))
            }
            DriverError::Modbus(LinkError::Timeout(_)) => "no answer".to_owned(),
            other => other.to_string(),
        }
    }
}
