//! The timing and limits of an IEC 62056-21 session, per line.

use std::time::Duration;

/// Timing and limits of a session. Every value is a default from
/// `docs/PROTOCOLS.md`, "Timing", to verify per meter: keep them
/// configurable per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Longest wait for the first byte of an answer, counted from the end
    /// of our message on the wire (the standard's maximum reaction time,
    /// 1.5 s).
    pub reaction_timeout: Duration,
    /// Longest gap between two bytes of one message (1.5 s). A meter that
    /// stops mid-block fails with a timeout, not a hang.
    pub inter_character_timeout: Duration,
    /// Pause after the meter's last byte before we speak (the minimum
    /// reaction time, 200 ms), so an RS485 transceiver or an optical
    /// head has turned around.
    pub turnaround: Duration,
    /// Wait after the mode C acknowledgement before switching our rate:
    /// it must leave at the old rate, and optical probes behind USB
    /// converters need 250–500 ms. Never shorter than the
    /// acknowledgement's own time on the wire (200 ms at 300 baud).
    pub settle_delay: Duration,
    /// Repeats after a bad BCC (we send NAK) or a NAK from the meter (we
    /// send the command again), before giving up.
    pub max_retries: u32,
    /// Highest rate this line accepts: a mode C offer above it is
    /// answered with a lower rate; a mode B one cannot be negotiated.
    pub max_baud: u32,
    /// Rate of the sign-on: 300 for modes A/B/C; a port that runs the
    /// handshake at a fixed rate (TH40C RS485 ports default to 9600, TH40C
    /// manual §1) sets it here. The line must be at this rate when the
    /// session is created.
    pub initial_baud: u32,
    /// Meters leave programming mode after this long without traffic
    /// (about 60–120 s, `docs/PROTOCOLS.md`, "Timing"); past it the session gives up with
    /// [`super::SessionError::ProgrammingExpired`] instead of talking to a meter
    /// that has gone back to 300 baud.
    pub programming_inactivity: Duration,
    /// Longest one exchange may take, however the meter trickles its
    /// bytes: a readout from its sign-on to its last block, or one
    /// programming-mode command (a load profile included) to its answer's
    /// last block. The inter-character timeout alone lets a meter that
    /// never stops talking hold the line for ever.
    pub exchange_deadline: Duration,
    /// Most characters one answer may carry, its partial blocks together
    /// (each block is bounded on its own by the frame decoder): past it
    /// the answer is abandoned.
    pub max_answer_len: usize,
}

/// Default of [`SessionConfig::exchange_deadline`]: a 2 KB readout in mode
/// A takes about 70 s at 300 baud (10 bits a character), the slowest a
/// meter is read at.
pub(crate) const EXCHANGE_DEADLINE: Duration = Duration::from_secs(120);

/// Default of [`SessionConfig::max_answer_len`]: far above a readout or a
/// day of load profile (a few kB each), far below what could exhaust memory.
pub(crate) const MAX_ANSWER_LEN: usize = 1024 * 1024;

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            reaction_timeout: Duration::from_millis(1500),
            inter_character_timeout: Duration::from_millis(1500),
            turnaround: Duration::from_millis(200),
            settle_delay: Duration::from_millis(300),
            max_retries: 3,
            max_baud: 19200,
            initial_baud: 300,
            programming_inactivity: Duration::from_secs(60),
            exchange_deadline: EXCHANGE_DEADLINE,
            max_answer_len: MAX_ANSWER_LEN,
        }
    }
}
