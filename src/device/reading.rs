//! A value read from a device, named by OBIS: what every driver produces and
//! everything downstream consumes.

use chrono::{DateTime, Utc};

use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;

/// One value from one device at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub obis: ObisCode,
    pub value: f64,
    pub unit: Unit,
    /// When the head-end received it.
    pub read_at: DateTime<Utc>,
    /// When the device captured it, where the device says (a maximum
    /// demand's time of occurrence).
    pub captured_at: Option<DateTime<Utc>>,
    pub quality: Quality,
}
