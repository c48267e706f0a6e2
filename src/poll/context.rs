//! What a bus worker is given: the configuration of each of its devices,
//! and the services it shares with the other workers.

use super::program::FieldProgramming;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use sqlx::PgPool;

use super::outbox::Outbox;
use super::stats::PollStats;
use crate::device::driver::Target;
use crate::device::profile::{Profile, RegisterGroup};
use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::domain::ids::DeviceId;
use crate::store::devices::{DeviceLimits, DeviceStatus};

/// What a worker needs to know of one device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub id: DeviceId,
    pub name: String,
    /// Modbus unit address (0 on an IEC 62056-21 bus).
    pub address: u8,
    /// IEC 62056-21 device address (none on a Modbus bus).
    pub iec_address: Option<String>,
    pub profile: Arc<Profile>,
    pub realtime: Duration,
    pub energy: Duration,
    pub history: Duration,
    /// Zone of the device's site: the zone its clock runs in.
    pub zone: Tz,
    /// Status as stored, to continue from after a restart.
    pub status: DeviceStatus,
    /// What bounds its values (for spikes in its load profile).
    pub limits: DeviceLimits,
}

impl DeviceConfig {
    /// What, when changed, requires the worker to re-plan.
    pub fn plan_key(&self) -> (DeviceId, u8, Option<&str>, &str, [Duration; 3], Tz) {
        (
            self.id,
            self.address,
            self.iec_address.as_deref(),
            &self.profile.name,
            [self.realtime, self.energy, self.history],
            self.zone,
        )
    }

    /// Whether `other` asks anything of the worker that this does not.
    pub fn differs(&self, other: &DeviceConfig) -> bool {
        let limits = |c: &DeviceConfig| {
            let l = &c.limits;
            (l.ct_ratio, l.max_current_a, l.voltage_v, l.phases)
        };
        self.plan_key() != other.plan_key() || limits(self) != limits(other)
    }

    /// The device as its driver addresses it.
    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            name: &self.name,
            address: self.address,
            iec_address: self.iec_address.as_deref().unwrap_or_default(),
            profile: &self.profile,
            zone: self.zone,
        }
    }

    pub(crate) fn period(&self, group: RegisterGroup) -> Duration {
        match group {
            RegisterGroup::Realtime => self.realtime,
            RegisterGroup::Energy => self.energy,
            RegisterGroup::History => self.history,
        }
    }
}

/// Shared services a worker uses.
#[derive(Clone)]
pub struct WorkerServices {
    pub pool: PgPool,
    pub outbox: Outbox,
    pub stats: Arc<PollStats>,
    pub profiles: Arc<ProfileSet>,
    pub request_timeout: Duration,
    /// How far a meter's clock may be off before a `clock_drift` event opens.
    pub clock_drift_threshold: Duration,
    /// What the worker takes for now: read stamps, clock checks.
    pub clock: Clock,
    /// How long a command waits for field programming, tried how often.
    pub field_programming: FieldProgramming,
}
