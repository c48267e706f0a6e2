//! The simulators' notion of now: the system clock, or a manual clock that
//! only moves when a test moves it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone)]
pub enum SimClock {
    System,
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl SimClock {
    pub fn manual(at: DateTime<Utc>) -> SimClock {
        SimClock::Manual(Arc::new(Mutex::new(at)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            SimClock::System => Utc::now(),
            SimClock::Manual(at) => *at.lock().expect("clock lock"),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        if let SimClock::Manual(at) = self {
            *at.lock().expect("clock lock") += by;
        }
    }
}
