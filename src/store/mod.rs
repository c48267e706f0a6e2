//! PostgreSQL access: the only place SQL lives.

pub mod audit;
pub mod billing;
pub mod billing_schedule;
pub mod buses;
pub mod command_jobs;
pub mod data_quality;
pub mod database;
pub mod derived_intervals;
pub mod devices;
pub mod error;
pub mod estimated_intervals;
pub mod events;
pub mod interval_corrections;
pub mod intervals;
pub mod jobs;
pub mod read_jobs;
pub mod readings;
pub mod scans;
pub mod tokens;

pub use error::StoreError;
