//! Drivers: how a bus worker talks to the devices of its bus, one per
//! protocol behind one interface. A driver owns the line (opened lazily,
//! dropped after a link failure), sends one exchange at a time, and turns
//! what comes back into OBIS-coded readings; it knows nothing of the
//! database, and the worker decides what to do with what it returns.
//!
//! - [`Driver::read`]: one step of reading a register group of a device (a
//!   Modbus read is one request per step, so higher-priority work goes
//!   between the requests of a long read; an IEC 62056-21 readout is one
//!   whole session).
//! - [`Driver::read_history`]: a stretch of the device's load profile;
//!   [`Driver::read_logbook`] its event logbook.
//! - [`Driver::read_load_curve`]: a Modbus meter's own load curve (the
//!   COUNTIS's), back to what is stored.
//! - [`Driver::write`]: one Modbus write of a command to the device.
//! - [`Driver::program`]: a command to an IEC 62056-21 meter in
//!   programming mode, as its profile's `[iec62056.commands]` says;
//!   [`program_frames`] lists what it would send, for a dry run.
//! - [`Driver::probe`]: what answers at a unit address, for a scan.

pub(crate) mod clock;
pub(crate) mod error;
pub(crate) mod exchange;
mod iec;
pub(crate) mod iec_line;
mod iec_program;
pub(crate) mod iec_program_plan;
pub(crate) mod iec_session_config;
mod modbus;
pub mod modbus_link;
mod modbus_load_curve;
pub(crate) mod probe;
pub(crate) mod program;
pub(crate) mod read_state;
pub(crate) mod target;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use self::error::DriverError;
pub use self::exchange::{Exchange, Outcome};
use self::iec::IecDriver;
pub use self::iec_program_plan::{MASKED_PASSWORD, PlannedFrame, program_frames};
use self::modbus::ModbusDriver;
pub use self::modbus_load_curve::{LoadCurveEnd, LoadCurveRead};
pub use self::program::{ProgramDone, ProgramError, WriteDone};
pub use self::read_state::ReadState;
pub use self::target::{BROADCAST_SENT, CommandDone, MeterStatus, ReadOutput, Step, Target};
use super::command_plan::PlannedWrite;
use super::iec::LoadProfileSettings;
use super::iec_logbook::{LogbookEvent, LogbookSettings};
use super::profile::{LoadCurveSettings, Profile, RegisterGroup};
use super::profile_interval::Interval;
use super::registry::ProfileSet;
use crate::domain::address::UnitAddress;
use crate::domain::clock::Clock;
use crate::domain::transport::{Protocol, Transport};

/// The driver of one bus.
pub enum Driver {
    Modbus(ModbusDriver),
    /// Boxed: it holds a whole session (buffers, settings), the Modbus driver a link.
    Iec(Box<IecDriver>),
}

impl Driver {
    /// The driver for `transport`, waiting up to `timeout` for each answer.
    pub fn new(transport: &Transport, timeout: Duration) -> Driver {
        match transport.protocol() {
            Protocol::Modbus => Driver::Modbus(ModbusDriver::new(transport.clone(), timeout)),
            Protocol::Iec62056 => Driver::Iec(Box::new(IecDriver::new(transport.clone(), timeout))),
        }
    }

    /// Bounds each IEC 62056-21 exchange (a readout, a programming-mode
    /// command) to `deadline` in all; a Modbus exchange is one request,
    /// bounded by the answer timeout already.
    pub fn set_exchange_deadline(&mut self, deadline: Duration) {
        if let Driver::Iec(driver) = self {
            driver.set_exchange_deadline(deadline);
        }
    }

    /// The register groups read of a device, each on its own period: on
    /// Modbus those the profile has registers in; over IEC 62056-21 one
    /// readout, every energy period.
    pub fn groups(&self, profile: &Profile) -> Vec<RegisterGroup> {
        match self {
            Driver::Modbus(_) => RegisterGroup::ALL
                .into_iter()
                .filter(|&group| !profile.blocks(group).is_empty())
                .collect(),
            Driver::Iec(_) => vec![RegisterGroup::Energy],
        }
    }

    /// Sends the next exchange of a read of `group`; `restart` starts the
    /// read from its first request. Returns what the step did and the
    /// exchange it made, if any.
    pub async fn read(
        &mut self,
        target: Target<'_>,
        state: &mut ReadState,
        group: RegisterGroup,
        restart: bool,
        clock: &Clock,
    ) -> (Step, Option<Exchange>) {
        if restart {
            state.restart_group(group);
        }
        match self {
            Driver::Modbus(driver) => driver.read_step(target, state, group, clock).await,
            Driver::Iec(driver) => driver.readout(target, clock).await,
        }
    }

    /// Whether the bus's protocol reads a meter's load profile in IEC
    /// 62056-21 programming mode (a Modbus meter's own load curve is
    /// [`Driver::read_load_curve`]'s).
    pub fn reads_load_profile(&self) -> bool {
        matches!(self, Driver::Iec(_))
    }

    /// Reads the device's load profile from `from` (to `to`, or the present),
    /// as its profile's `settings` say.
    pub async fn read_history(
        &mut self,
        target: Target<'_>,
        settings: &LoadProfileSettings,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> (Result<(Vec<Interval>, Vec<String>), DriverError>, Option<Exchange>) {
        match self {
            Driver::Modbus(_) => (
                Err(DriverError::Unsupported(
                    "Modbus devices keep no load profile the server reads",
                )),
                None,
            ),
            Driver::Iec(driver) => driver.load_profile(target, settings, from, to).await,
        }
    }

    /// Reads the device's event logbook (or programming log, `log` naming
    /// its section) from `after` on (all of it when `None`), as its
    /// profile's `[iec62056.logbook]` says.
    pub async fn read_logbook(
        &mut self,
        target: Target<'_>,
        log: &'static str,
        settings: &LogbookSettings,
        after: Option<DateTime<Utc>>,
    ) -> (Result<(Vec<LogbookEvent>, Vec<String>), DriverError>, Option<Exchange>) {
        match self {
            Driver::Modbus(_) => (
                Err(DriverError::Unsupported(
                    "Modbus devices keep no logbook the server reads",
                )),
                None,
            ),
            Driver::Iec(driver) => driver.logbook(target, log, settings, after).await,
        }
    }

    /// Reads a Modbus meter's own load curve back to `stored` (the newest
    /// interval stored), as its profile's `[modbus.load_curve]` says; each
    /// exchange made is in `exchanges`.
    pub async fn read_load_curve(
        &mut self,
        target: Target<'_>,
        state: &mut ReadState,
        settings: &LoadCurveSettings,
        stored: Option<DateTime<Utc>>,
        exchanges: &mut Vec<Exchange>,
    ) -> Result<LoadCurveRead, DriverError> {
        match self {
            Driver::Modbus(driver) => driver.load_curve(target, state, settings, stored, exchanges).await,
            Driver::Iec(_) => Err(DriverError::Unsupported(
                "a Modbus load curve; an IEC 62056-21 meter's load profile is read in programming mode",
            )),
        }
    }

    /// Sends one planned write of a command with `words` (see
    /// `device::command_plan`); `new_address` when it moves the device,
    /// whose answer then comes from there.
    pub async fn write(
        &mut self,
        target: Target<'_>,
        write: &PlannedWrite,
        words: &[u16],
        new_address: Option<UnitAddress>,
    ) -> (Result<CommandDone, DriverError>, Option<Exchange>) {
        match self {
            Driver::Modbus(driver) => driver.write(target, write, words, new_address).await,
            Driver::Iec(_) => (Err(IEC_COMMANDS), None),
        }
    }

    /// Runs command `kind` (`set_clock`, `billing_reset`, …) of the
    /// device's profile in IEC 62056-21 programming mode with `password`,
    /// clock values being `now` in the device's zone: each write with what
    /// the meter showed before and after. See [`ProgramError`] for the
    /// failures a worker acts on.
    pub async fn program(
        &mut self,
        target: Target<'_>,
        kind: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> (Result<ProgramDone, ProgramError>, Option<Exchange>) {
        match self {
            Driver::Modbus(_) => (
                Err(ProgramError::Unsupported(
                    "programming mode is IEC 62056-21; a Modbus device takes its commands as register writes".into(),
                )),
                None,
            ),
            Driver::Iec(driver) => driver.program(target, kind, password, now).await,
        }
    }

    /// Reads `count` registers at `start` of the device at unit `unit` (the
    /// registers a command's write is verified by).
    pub async fn read_registers(
        &mut self,
        target: Target<'_>,
        unit: u8,
        start: u16,
        count: u16,
    ) -> (Result<Vec<u16>, DriverError>, Option<Exchange>) {
        match self {
            Driver::Modbus(driver) => driver.read_registers(target, unit, start, count).await,
            Driver::Iec(_) => (Err(IEC_COMMANDS), None),
        }
    }

    /// What answers at `address`: `None` nothing; else the profiles whose
    /// identification fits it.
    pub async fn probe(&mut self, address: u8, profiles: &ProfileSet) -> Result<Option<Vec<String>>, DriverError> {
        match self {
            Driver::Modbus(driver) => Ok(probe::probe(driver.link(), address, profiles).await?),
            Driver::Iec(_) => Err(DriverError::Unsupported(
                "a scan probes Modbus unit addresses; an IEC 62056-21 line has none to probe",
            )),
        }
    }
}

const IEC_COMMANDS: DriverError =
    DriverError::Unsupported("register writes are Modbus; an IEC 62056-21 bus takes none");

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Driver::Modbus(_) => f.write_str("Driver::Modbus"),
            Driver::Iec(_) => f.write_str("Driver::Iec"),
        }
    }
}

#[cfg(test)]
mod iec_program_tests;
