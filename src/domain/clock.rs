//! The notion of now shared by the head-end and its simulators: the system
//! clock, or a manual clock that only moves when a test moves it. A test
//! hands one manual clock to the server and to its simulated meters, so what
//! the meters measure and when the server says it read it agree.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeDelta, Utc};

/// How far ahead of the server's clock a stamp may be and still count as
/// now: more than a drifting meter clock or a read in flight can explain.
/// A value stamped later than this is stored flagged `future_timestamp`
/// and is never taken as the latest value nor as where a cursor resumes
/// (docs/RELIABILITY.md, "Clocks").
pub const FUTURE_TOLERANCE: TimeDelta = TimeDelta::minutes(15);

/// The latest stamp that counts as now at server time `now`: a stamp after
/// it is in the future.
pub fn future_limit(now: DateTime<Utc>) -> DateTime<Utc> {
    now + FUTURE_TOLERANCE
}

/// Whether `stamp` is in the future at server time `now` (past
/// [`future_limit`]).
pub fn is_future(stamp: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    stamp > future_limit(now)
}

#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    pub fn manual(at: DateTime<Utc>) -> Clock {
        Clock::Manual(Arc::new(Mutex::new(at)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(at) => *at.lock().expect("clock lock"),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(at) = self {
            *at.lock().expect("clock lock") += by;
        }
    }
}
