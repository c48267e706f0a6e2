//! Polling: one worker per bus owns its link and sends one request at a
//! time; a supervisor keeps the workers in step with the database; ingest
//! writes what they read in batches.

pub mod clock_check;
pub mod command;
pub mod iec_line;
pub mod iec_worker;
pub mod ingest;
pub mod jobs;
pub mod link;
pub mod link_stats;
pub mod meter_events;
pub mod read;
pub mod scan;
pub mod schedule;
pub mod stats;
pub mod status;
pub mod supervisor;
pub mod worker;
pub mod write;
