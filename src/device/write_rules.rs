//! The write rules a profile states, as data: how a command's write is
//! verified (`verify` of a `[modbus.commands.NAME]`) and the clock rules the
//! head-end keeps before it writes. `device::command_verify` applies them.

use serde::Deserialize;

/// How a write is verified.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "verify: \"read_back\", { none = \"why\" } or { address, count, expect, within_s }"
)]
pub enum Verify {
    /// `"read_back"` (the default): the written registers are read before
    /// and after, and must then hold what was written.
    Mode(VerifyMode),
    /// `{ none = "why" }`: nothing is read; the reason is the manual's (a
    /// write-only register, a code the meter acts on and forgets).
    Skip { none: String },
    /// `{ address, count, expect }`: other registers tell whether it took.
    Read(VerifyRead),
}

impl Default for Verify {
    fn default() -> Self {
        Verify::Mode(VerifyMode::ReadBack)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    ReadBack,
}

/// Registers read to verify a write, and what they must show after it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRead {
    pub address: u16,
    pub count: u16,
    pub expect: Expect,
    /// For `expect = "clock"`: how far the clock read after the write may
    /// be from the server's time, in seconds.
    #[serde(default)]
    pub within_s: Option<u32>,
}

/// What the registers read after a write must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The values written (a register that reads what it was set to).
    Written,
    /// Every register 0 (a counter after its reset).
    Zero,
    /// Less than before, or zero, as one unsigned number high word first (a
    /// counter after its reset, on a meter that may count again at once).
    Decreased,
    /// The meter's date and time (the profile's `0.9.2`/`0.9.1` registers
    /// in the range), within `within_s` of the server's time.
    Clock,
    /// Any answer (after an address change: the meter answers at the new one).
    Answers,
}

/// The rules of a clock write the head-end keeps before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockRule {
    /// The largest change the meter takes, seconds.
    pub max_change_s: Option<u32>,
    /// At most one set per local day of the meter.
    pub once_per_day: bool,
}
