//! Polling: one worker per bus owns its driver and does one exchange at a
//! time; a supervisor keeps the workers in step with the database; jobs
//! reach a worker through its bus's claimer; ingest writes what they read
//! in batches.

pub(crate) mod clock_check;
pub mod command;
pub mod context;
pub(crate) mod history;
pub(crate) mod jobs;
pub(crate) mod link_stats;
pub(crate) mod load_curve;
pub(crate) mod logbook;
pub(crate) mod meter_events;
pub mod outbox;
pub(crate) mod password;
pub mod program;
pub(crate) mod pulse_settings;
pub(crate) mod read;
pub(crate) mod read_plan;
pub(crate) mod runtime;
pub(crate) mod scan;
pub mod spill;
pub mod stats;
pub(crate) mod status;
pub(crate) mod supervisor;
pub mod worker;
pub(crate) mod write;
pub(crate) mod write_verify;
