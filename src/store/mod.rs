//! PostgreSQL access: the only place SQL lives.

pub mod audit;
pub mod billing;
pub mod billing_schedule;
pub mod buses;
pub mod command_jobs;
pub mod data_quality;
pub mod database;
pub mod devices;
pub mod error;
pub mod events;
pub mod jobs;
pub mod load_profile;
pub mod profile_corrections;
pub mod profile_derivation;
pub mod profile_estimation;
pub mod read_jobs;
pub mod readings;
pub mod scans;
mod site_zone;
pub mod tokens;

pub use error::StoreError;
