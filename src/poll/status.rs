//! A device's reachability as its reads succeed and fail. Pure: returns the
//! new status and the event transition, the worker stores them.

use chrono::{DateTime, Utc};

use super::read_plan::ATTEMPTS;
use crate::domain::state::DeviceState;
use crate::store::devices::DeviceStatus;

/// A change worth an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The device stopped answering (`comm_lost`).
    Lost,
    /// It answers again (`comm_restored`).
    Restored,
}

#[derive(Debug, Clone)]
pub(crate) struct Tracker {
    pub status: DeviceStatus,
}

impl Tracker {
    pub(crate) fn new(status: DeviceStatus) -> Tracker {
        Tracker { status }
    }

    pub(crate) fn success(&mut self, at: DateTime<Utc>) -> Option<Transition> {
        let was = self.status.state;
        self.status = DeviceStatus {
            state: DeviceState::Online,
            last_success_at: Some(at),
            last_attempt_at: at,
            consecutive_failures: 0,
            last_error: None,
        };
        (was == DeviceState::Unreachable).then_some(Transition::Restored)
    }

    /// A failed request. The device turns `unreachable` once a whole read has
    /// used its attempts ([`ATTEMPTS`] failures in a row).
    pub(crate) fn failure(&mut self, at: DateTime<Utc>, error: String) -> Option<Transition> {
        let was = self.status.state;
        self.status.consecutive_failures += 1;
        self.status.last_attempt_at = at;
        self.status.last_error = Some(error);
        if self.status.consecutive_failures >= ATTEMPTS {
            self.status.state = DeviceState::Unreachable;
        }
        (was != DeviceState::Unreachable && self.status.state == DeviceState::Unreachable).then_some(Transition::Lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Tracker {
        Tracker::new(DeviceStatus {
            state: DeviceState::Unknown,
            last_success_at: None,
            last_attempt_at: Utc::now(),
            consecutive_failures: 0,
            last_error: None,
        })
    }

    #[test]
    fn turns_unreachable_after_the_attempts_and_back() {
        let mut tracker = fresh();
        let now = Utc::now();
        assert_eq!(tracker.failure(now, "timeout".into()), None);
        assert_eq!(tracker.failure(now, "timeout".into()), None);
        assert_eq!(tracker.status.state, DeviceState::Unknown);
        assert_eq!(tracker.failure(now, "timeout".into()), Some(Transition::Lost));
        assert_eq!(tracker.status.state, DeviceState::Unreachable);
        assert_eq!(tracker.failure(now, "timeout".into()), None, "lost only once");
        assert_eq!(tracker.status.consecutive_failures, 4);
        assert_eq!(tracker.success(now), Some(Transition::Restored));
        assert_eq!(tracker.status.consecutive_failures, 0);
        assert_eq!(tracker.status.last_success_at, Some(now));
        assert_eq!(tracker.success(now), None);
    }
}
