//! What billing needs, computed from stored data: billing periods, interval
//! data, validation and estimation. Pure functions over values and
//! calendars; no I/O, so every result can be recomputed for any past period.

pub(crate) mod balance;
pub mod billing;
pub(crate) mod billing_schedule;
pub(crate) mod clock_drift;
pub(crate) mod clock_sync;
pub mod data_quality;
pub mod estimate;
pub mod gaps;
pub(crate) mod history_periods;
pub(crate) mod meter_events;
pub mod register_deltas;
pub(crate) mod statement;
pub(crate) mod tou;
pub(crate) mod validation;
