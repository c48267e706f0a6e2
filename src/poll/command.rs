//! Work an operator asks of a bus, as the bus's worker (the one owner of
//! the line) takes it from its inbox and does it between its scheduled
//! reads. The jobs come from the database through the bus's claimer
//! (see `jobs`).

use chrono::{DateTime, Utc};

use crate::domain::command::Command;
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
}

/// How many jobs may wait in a worker's inbox.
pub(crate) const QUEUE: usize = 16;
