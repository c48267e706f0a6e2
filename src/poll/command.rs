//! Work an operator asks of a bus, as the bus's worker (the one owner of
//! the line) takes it from its inbox and does it between its scheduled
//! reads. The jobs come from the database through the bus's claimer
//! (see `jobs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::command::{Command, CommandKind};
use crate::domain::ids::DeviceId;

/// Something for a bus worker to do.
#[derive(Debug, Clone, PartialEq)]
pub enum BusCommand {
    /// Probe unit addresses `first..=last` and record what answers in scan job `job`.
    Scan { job: i64, first: u8, last: u8 },
    /// Read every register group of `device` now, ahead of the schedule,
    /// and record the outcome in read job `job`.
    ReadNow { job: i64, device: DeviceId },
    /// Carry out a command on `device` (or, broadcast, on every device of
    /// the bus at unit 0) and record the outcome in command job `job`. Goes
    /// before everything else on the bus.
    Write(Box<Write>),
}

/// A command to a device, as checked against its profile when queued.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub job: i64,
    pub device: DeviceId,
    pub command: Command,
    /// For a command already waiting for field programming: until when.
    pub field_programming_deadline: Option<DateTime<Utc>>,
    /// For a clock set: when each device of the bus last had its clock set
    /// (looked up by the claimer, so the worker never waits for the
    /// database), for meters that take one set a day.
    pub clock_sets: HashMap<DeviceId, DateTime<Utc>>,
}

impl Write {
    /// Whether the claimer looks up the devices' last clock sets for it.
    pub fn needs_clock_sets(&self) -> bool {
        self.command.kind == CommandKind::SetClock
    }
}

/// How many jobs may wait in a worker's inbox.
pub(crate) const QUEUE: usize = 16;
