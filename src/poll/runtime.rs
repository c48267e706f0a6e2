//! What a worker keeps of one device between reads.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::context::{DeviceConfig, WorkerServices};
use super::status::Tracker;
use crate::device::driver::{Exchange, ReadState};
use crate::device::pulse::Continuity;
use crate::domain::ids::BusId;

/// What the worker keeps of one device between reads.
pub(crate) struct DeviceRuntime {
    pub(crate) config: DeviceConfig,
    pub(crate) tracker: Tracker,
    /// Reads under way, and what the driver learnt of the device.
    pub(crate) read: ReadState,
    /// Pulse counters' wraps, for pulse devices (loaded at their first read).
    pub(crate) continuity: Option<Continuity>,
    /// When the load profile is next due (it is read after a readout).
    pub(crate) history_due: Instant,
    /// While catching up: where the next chunk starts (past a stretch the
    /// meter holds nothing for, which stored intervals would not show).
    pub(crate) history_from: Option<DateTime<Utc>>,
}

impl DeviceRuntime {
    pub(crate) fn new(config: &DeviceConfig, now: Instant) -> DeviceRuntime {
        DeviceRuntime {
            tracker: Tracker::new(config.status.clone()),
            read: ReadState::new(&config.profile),
            config: config.clone(),
            continuity: None,
            history_due: now,
            history_from: None,
        }
    }
}

/// Counts an exchange in the bus statistics.
pub(crate) fn record_exchange(
    services: &WorkerServices,
    bus: BusId,
    config: &DeviceConfig,
    exchange: Option<Exchange>,
) {
    if let Some(exchange) = exchange {
        services
            .stats
            .links
            .record(bus, config.id, exchange.outcome, exchange.took);
    }
}
