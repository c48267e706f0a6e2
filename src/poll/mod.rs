//! Polling: one worker per bus owns its driver and does one exchange at a
//! time; a supervisor keeps the workers in step with the database; jobs
//! reach a worker through its bus's claimer; ingest writes what they read
//! in batches.

pub mod clock_check;
pub mod command;
pub mod context;
pub mod history;
pub mod jobs;
pub mod link_stats;
pub mod meter_events;
pub mod outbox;
pub mod read;
pub mod runtime;
pub mod scan;
pub mod schedule;
pub mod stats;
pub mod status;
pub mod supervisor;
pub mod worker;
pub mod write;
