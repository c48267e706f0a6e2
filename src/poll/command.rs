//! Work an operator asks of a bus, delivered to the bus's worker (the one
//! owner of the line), which does it between its scheduled reads.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::domain::ids::{BusId, DeviceId};

/// Something for a bus worker to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusCommand {
    /// Probe unit addresses `first..=last` and record what answers in scan job `job`.
    Scan { job: i64, first: u8, last: u8 },
    /// Read every register group of `device` now, ahead of the schedule,
    /// and record the outcome in read job `job`.
    ReadNow { job: i64, device: DeviceId },
    /// Write the profile command `command` to `device` (or, `broadcast`, to
    /// every device of the bus at unit 0) and record the outcome in command
    /// job `job`. Goes before everything else on the bus.
    Write(Write),
}

/// A command to a device, as checked against its profile by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub job: i64,
    pub device: DeviceId,
    /// The profile's `[modbus.commands]` key.
    pub command: String,
    /// `None`: a clock command whose values are the time it is sent.
    pub values: Option<Vec<u16>>,
    pub broadcast: bool,
}

/// Why a command did not reach its bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("bus {0} is not polled by this server (disabled, or its worker is starting)")]
    NotPolled(BusId),
    #[error("bus {0} has too many commands waiting; try again shortly")]
    Busy(BusId),
}

/// How many commands may wait for one bus.
pub const QUEUE: usize = 16;

/// The command inbox of every bus worker of this instance.
#[derive(Debug, Default)]
pub struct BusCommands {
    inboxes: Mutex<HashMap<BusId, mpsc::Sender<BusCommand>>>,
}

impl BusCommands {
    /// Opens the inbox of a bus (a worker starts); returns its receiving end.
    pub fn open(&self, bus: BusId) -> mpsc::Receiver<BusCommand> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        self.inboxes.lock().expect("inbox lock").insert(bus, sender);
        receiver
    }

    pub fn close(&self, bus: BusId) {
        self.inboxes.lock().expect("inbox lock").remove(&bus);
    }

    pub fn send(&self, bus: BusId, command: BusCommand) -> Result<(), CommandError> {
        let inboxes = self.inboxes.lock().expect("inbox lock");
        let inbox = inboxes.get(&bus).ok_or(CommandError::NotPolled(bus))?;
        inbox.try_send(command).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => CommandError::Busy(bus),
            mpsc::error::TrySendError::Closed(_) => CommandError::NotPolled(bus),
        })
    }
}
