//! The groups a device's values are read in, each on its own period and
//! priority: shared by Modbus register maps, IEC 62056-21 readouts and the
//! poller's schedule.

use std::fmt;

use serde::Deserialize;

/// How often a class of registers is read unless a device says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterGroup {
    /// Instantaneous values, clock: read often (default every 10 s).
    Realtime,
    /// Current energy and demand registers (default every 60 s).
    Energy,
    /// Values of closed billing periods ("last month", "two months ago"):
    /// they change once a period, so they are read seldom (default every
    /// 900 s) and last on the bus (`docs/ARCHITECTURE.md`, "Priority on a
    /// bus": real-time > energy > history).
    History,
}

impl RegisterGroup {
    /// Every group, in the order the bus serves them when several are due.
    pub const ALL: [RegisterGroup; 3] = [RegisterGroup::Realtime, RegisterGroup::Energy, RegisterGroup::History];

    pub fn as_str(self) -> &'static str {
        match self {
            RegisterGroup::Realtime => "realtime",
            RegisterGroup::Energy => "energy",
            RegisterGroup::History => "history",
        }
    }
}

impl fmt::Display for RegisterGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
