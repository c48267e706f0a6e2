//! What a bus worker is given: the configuration of each of its devices,
//! and the services it shares with the other workers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::PgPool;

use super::outbox::Outbox;
use super::stats::PollStats;
use crate::device::driver::Target;
use crate::device::driver::read_state::IDENTITY_RECHECK;
use crate::device::profile::{Profile, RegisterGroup};
use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::domain::identity::same_meter;
use crate::domain::ids::DeviceId;
use crate::domain::sealing::OpenError;
use crate::domain::secret::Secret;
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
    /// Its own programming-mode password, and whether the meter refused it.
    pub password: DevicePassword,
    /// Which meter must answer at its address, and which one last did.
    pub identity: DeviceIdentity,
}

/// The meter identity a device's reads are checked against (see
/// `store::identity`), as the poller knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// The identity first seen, or the one an engineer confirmed.
    pub expected: Option<String>,
    /// The identity the last check found.
    pub seen: Option<String>,
    /// When this worker last handed a seen identity to the store.
    pub reported_at: Option<DateTime<Utc>>,
}

impl DeviceIdentity {
    /// Takes the stored expectation (an engineer's confirmation moves it),
    /// keeping what this worker has seen since.
    pub(crate) fn follow(&mut self, stored: &DeviceIdentity) {
        self.expected = stored.expected.clone().or(self.expected.take());
        self.seen = self.seen.take().or(stored.seen.clone());
    }

    /// Records what a check found; the first identity seen becomes the
    /// expected one, and so does the expected meter's identity in a longer
    /// or shorter form (`domain::identity::same_meter`). Returns
    /// whether it differs from the last one seen.
    pub(crate) fn saw(&mut self, identity: &str) -> bool {
        if self
            .expected
            .as_deref()
            .is_none_or(|expected| same_meter(expected, identity))
        {
            self.expected = Some(identity.to_owned());
        }
        let changed = self.seen.as_deref() != Some(identity);
        self.seen = Some(identity.to_owned());
        changed
    }

    /// Whether the identity seen is to be stored: when it changed, else
    /// at most once per [`IDENTITY_RECHECK`] (an IEC meter shows its
    /// identity in every readout; storing each would cost a transaction
    /// per readout).
    pub(crate) fn report_due(&self, changed: bool, now: DateTime<Utc>) -> bool {
        changed
            || self
                .reported_at
                .is_none_or(|at| now - at >= IDENTITY_RECHECK || now < at)
    }

    /// Whether another meter than the expected one answers: its readings
    /// are held until an engineer confirms the replacement.
    pub(crate) fn quarantined(&self) -> bool {
        matches!((&self.expected, &self.seen), (Some(expected), Some(seen)) if expected != seen)
    }
}

/// A device's own IEC 62056-21 password as the poller loaded it, and the
/// lock a refusal put on its programming-mode work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevicePassword {
    /// The stored password, opened; `None` when the device has none (its
    /// profile's applies); an error when it is stored but does not open.
    pub own: Option<Result<Secret, OpenError>>,
    /// When the stored password was set: tells one setting from the next.
    pub set_at: Option<DateTime<Utc>>,
    /// When the meter refused the password; while set, no programming-mode
    /// work is done for the device.
    pub refused_at: Option<DateTime<Utc>>,
}

impl DevicePassword {
    /// Takes the stored state, keeping a refusal this worker saw that is not
    /// stored yet, unless the password was set again since.
    pub(crate) fn follow(&mut self, stored: &DevicePassword) {
        let refused_here = self.refused_at.filter(|_| self.set_at == stored.set_at);
        *self = stored.clone();
        self.refused_at = self.refused_at.or(refused_here);
    }
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
            (
                l.ct_ratio,
                l.max_current_a,
                l.voltage_v,
                l.phases,
                l.energy_unit.clone(),
                l.energy_decimals,
            )
        };
        self.plan_key() != other.plan_key()
            || limits(self) != limits(other)
            || self.password != other.password
            || self.identity.expected != other.identity.expected
    }

    /// The device as its driver addresses it.
    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            name: &self.name,
            address: self.address,
            iec_address: self.iec_address.as_deref().unwrap_or_default(),
            profile: &self.profile,
            zone: self.zone,
            password: self.password.own.as_ref().and_then(|own| own.as_ref().ok()),
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
    /// How long one IEC 62056-21 exchange may take in all (a readout, a
    /// programming-mode command), however the meter trickles its bytes.
    pub iec_exchange_deadline: Duration,
    /// How far a meter's clock may be off before a `clock_drift` event opens.
    pub clock_drift_threshold: Duration,
    /// What the worker takes for now: read stamps, clock checks.
    pub clock: Clock,
    /// How long a command waits for field programming, tried how often.
    pub field_programming: FieldProgramming,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::secret::SecretName;

    #[test]
    fn the_expected_meter_in_a_longer_form_is_no_other_meter_and_sets_the_form() {
        let mut identity = DeviceIdentity {
            expected: Some("2026-0000-0002 / countis e43".to_owned()),
            ..DeviceIdentity::default()
        };
        identity.saw("2026-0000-0002 / countis e43 / SOCOMEC / COUNTIS E43");
        assert!(!identity.quarantined());
        assert_eq!(
            identity.expected.as_deref(),
            Some("2026-0000-0002 / countis e43 / SOCOMEC / COUNTIS E43")
        );
        identity.saw("2026-0000-0009 / countis e43 / SOCOMEC / COUNTIS E43");
        assert!(identity.quarantined(), "another serial number");
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 18, minute, 0).unwrap()
    }

    fn stored(set_at: Option<DateTime<Utc>>, refused_at: Option<DateTime<Utc>>) -> DevicePassword {
        DevicePassword {
            own: set_at.map(|_| Ok(SecretName::IecPassword.check("87654321").unwrap())),
            set_at,
            refused_at,
        }
    }

    #[test]
    fn a_refusal_seen_here_stands_until_the_password_is_set_again() {
        // Refused at 10, not stored yet: the same password loaded again keeps it.
        let mut here = stored(Some(at(0)), Some(at(10)));
        here.follow(&stored(Some(at(0)), None));
        assert_eq!(here.refused_at, Some(at(10)));
        // Stored since: the stored time.
        here.follow(&stored(Some(at(0)), Some(at(11))));
        assert_eq!(here.refused_at, Some(at(11)));
        // Set again (a new setting time, even for the same value): lifted.
        here.follow(&stored(Some(at(20)), None));
        assert_eq!(here, stored(Some(at(20)), None));
        // The profile's password refused, then the device's own set.
        let mut profile = stored(None, Some(at(30)));
        profile.follow(&stored(None, None));
        assert_eq!(profile.refused_at, Some(at(30)));
        profile.follow(&stored(Some(at(31)), None));
        assert_eq!(profile.refused_at, None);
    }
}

/// How long a command waits for field programming, and how often the
/// meter is tried meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldProgramming {
    /// From the first refusal to the deadline.
    pub window: Duration,
    /// Between tries: each is one short session, refused at its first write.
    pub retry_every: Duration,
}

impl Default for FieldProgramming {
    fn default() -> Self {
        FieldProgramming {
            window: crate::config::DEFAULT_FIELD_PROGRAMMING_WINDOW,
            retry_every: Duration::from_secs(60),
        }
    }
}
