//! Billing periods: the registers as they stood at a billing reset.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::BillingSource;
use crate::domain::unit::Unit;

/// One register of a closed period, under its current OBIS code (`1-1:1.8.0`,
/// not the history code `1-1:1.8.0*1` it was read as).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingRegister {
    pub obis: ObisCode,
    pub value: f64,
    pub unit: Unit,
    /// When the value occurred, for a maximum demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<DateTime<Utc>>,
}

/// A closed billing period.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingPeriod {
    pub reset_at: DateTime<Utc>,
    pub source: BillingSource,
    /// The meter's own count of resets, where it keeps one.
    pub reset_count: Option<i32>,
    pub registers: Vec<BillingRegister>,
    pub quality: Quality,
}
