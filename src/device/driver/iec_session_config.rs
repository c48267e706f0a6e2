//! The IEC 62056-21 session settings a bus's transport calls for.

use std::time::Duration;

use crate::domain::transport::Transport;
use crate::protocol::iec62056::session::SessionConfig;

/// The session settings a bus's transport calls for: its rates, and for an
/// optical probe its settle delay. A meter may take the standard's 1.5 s
/// to react; `reaction` (the server's answer timeout) lengthens that wait,
/// never shortens it.
pub(crate) fn session_config(transport: &Transport, reaction: Duration) -> SessionConfig {
    let standard = SessionConfig::default();
    let mut config = SessionConfig {
        reaction_timeout: reaction.max(standard.reaction_timeout),
        ..standard
    };
    match transport {
        Transport::Iec62056Serial {
            initial_baud, max_baud, ..
        } => {
            config.initial_baud = *initial_baud;
            config.max_baud = *max_baud;
        }
        Transport::Optical {
            max_baud, settle_ms, ..
        } => {
            config.max_baud = *max_baud;
            config.settle_delay = Duration::from_millis(u64::from(*settle_ms)).max(Duration::from_millis(200));
        }
        _ => {}
    }
    config
}
