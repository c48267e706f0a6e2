//! An interval of a load profile: the energy one channel recorded over one
//! interval, as the meter kept it or as derived from register deltas.

use chrono::{DateTime, Utc};

use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;

/// One interval of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub obis: ObisCode,
    pub start: DateTime<Utc>,
    pub minutes: u32,
    pub value: f64,
    pub unit: Unit,
    /// The meter's own status of the interval, as sent.
    pub meter_status: String,
    pub quality: Quality,
}
