//! PostgreSQL access: the only place SQL lives.

pub(crate) mod audit;
pub mod billing;
pub mod billing_schedule;
pub mod buses;
pub mod clock_sync;
pub(crate) mod command_batches;
pub(crate) mod command_jobs;
pub mod copy_binary;
pub(crate) mod data_quality;
pub mod database;
pub mod device_secrets;
pub mod devices;
pub(crate) mod error;
pub mod events;
pub(crate) mod future_stamps;
pub mod identity;
pub(crate) mod jobs;
pub mod load_profile;
pub mod load_profile_backfill;
pub mod partitions;
pub mod profile_corrections;
pub mod profile_derivation;
pub mod profile_estimation;
pub(crate) mod read_jobs;
pub mod readings;
pub(crate) mod scans;
pub(crate) mod sessions;
mod site_zone;
pub(crate) mod sites;
pub(crate) mod sites_tree;
pub(crate) mod statements;
pub(crate) mod tariff_calendars;
pub mod tokens;
pub mod tou_audits;
pub(crate) mod virtual_meters;

pub use error::StoreError;
