//! What a driver is given (the device it talks to) and what it gives back
//! (a read's values and what the meter said of itself, a command's end).

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use crate::device::iec_decode::Condition;
use crate::device::profile::Profile;
use crate::device::reading::Reading;
use crate::domain::address::UnitAddress;
use crate::domain::obis::ObisCode;
use crate::domain::secret::Secret;

use super::error::DriverError;

/// The device a driver talks to.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub name: &'a str,
    /// Modbus unit address (0 on an IEC 62056-21 bus).
    pub address: u8,
    /// IEC 62056-21 device address (empty on a Modbus bus).
    pub iec_address: &'a str,
    pub profile: &'a Profile,
    /// Zone of the device's clock.
    pub zone: Tz,
    /// The device's own IEC 62056-21 programming-mode password, overriding
    /// its profile's `[iec62056] password`.
    pub password: Option<&'a Secret>,
}

/// What a complete read gave.
#[derive(Debug, Default)]
pub struct ReadOutput {
    pub readings: Vec<Reading>,
    /// The wall time the meter's clock showed, when the read included it.
    pub meter_clock: Option<NaiveDateTime>,
    /// The meter's status words: conditions they show, and which words were
    /// read (so conditions no longer shown can be cleared). IEC 62056-21.
    pub status: Option<MeterStatus>,
    /// Which meter answered (`device::meter_identity`), when the read
    /// checked: every IEC 62056-21 readout; over Modbus, the first read
    /// after a failure or a start, and hourly.
    pub identity: Option<String>,
}

#[derive(Debug, Default)]
pub struct MeterStatus {
    pub conditions: Vec<Condition>,
    pub words_read: Vec<ObisCode>,
    /// Words that could not be read, each with what the meter wrote.
    pub unreadable: Vec<String>,
}

/// What one step of a read did.
#[derive(Debug)]
pub enum Step {
    /// More requests to go.
    More,
    /// The read is complete.
    Done(ReadOutput),
    Failed(DriverError),
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandDone {
    /// A broadcast's note: nothing comes back from unit 0.
    pub note: Option<&'static str>,
    /// The address the device answers at from now on (an address change).
    pub new_address: Option<UnitAddress>,
}

/// What a broadcast command reports: nothing comes back from unit 0.
pub const BROADCAST_SENT: &str = "sent to all devices (no answer expected)";
