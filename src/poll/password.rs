//! Whether the worker may open programming mode on a device (IEC 62056-21
//! `P1`, for its load profile now, for commands later), and what it does
//! when the meter refuses the password: a meter may lock itself after
//! refused passwords, so a refused one is not sent again until it is set
//! again (docs/OPERATIONS.md, `password_refused`).

use super::context::{DeviceConfig, WorkerServices};
use super::outbox::Record;

/// Why programming mode is not opened on a device now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Withheld {
    /// The meter refused the password; it waits to be set again.
    Refused,
    /// The device's own password is stored but does not open (the server's
    /// key changed, or there is none): the message says which, never the
    /// value.
    Unreadable(String),
}

/// Whether a password may be sent to the device now.
pub(crate) fn programming_allowed(config: &DeviceConfig) -> Result<(), Withheld> {
    if config.password.refused_at.is_some() {
        return Err(Withheld::Refused);
    }
    match &config.password.own {
        Some(Err(error)) => Err(Withheld::Unreadable(error.to_string())),
        _ => Ok(()),
    }
}

/// Withholds programming mode from the device at once and has the refusal
/// stored (the lock and its `password_refused` event), naming whose
/// password it was, never the password.
pub(crate) fn password_refused(config: &mut DeviceConfig, services: &WorkerServices) {
    let at = services.clock.now();
    config.password.refused_at = Some(at);
    let whose = match config.password.set_at {
        Some(set_at) => format!(
            "the device's own password (set {})",
            set_at.format("%Y-%m-%d %H:%M UTC")
        ),
        None => format!("the password of profile {}", config.profile.name),
    };
    let message = format!(
        "{} refused {whose}; nothing is done in programming mode (its load profile is not read) until the password is set again",
        config.name
    );
    tracing::warn!(device = %config.name, "{message}");
    services.outbox.send(Record::PasswordRefused {
        device: config.id,
        tried: config.password.set_at,
        message,
        at,
    });
}
