//! The use cases: what a caller may ask of the head-end (add a device,
//! start a read, acknowledge an event, correct a load profile…), with the
//! rules that guard them, each in one place. The JSON API and the pages call
//! these and only parse requests and render answers; a use case checks the
//! caller's role first and writes its audit row on the transaction of its
//! change.

pub(crate) mod audit;
pub mod automatic_commands;
pub(crate) mod balance;
pub(crate) mod billing;
pub mod buses;
mod caller;
pub(crate) mod command_batches;
pub(crate) mod commands;
pub(crate) mod data_quality;
mod device_address;
pub(crate) mod device_overview;
pub mod device_request;
pub mod device_secrets;
pub mod device_settings;
pub mod devices;
mod error;
pub mod events;
pub(crate) mod jobs;
pub(crate) mod load_profile;
pub mod load_profile_corrections;
pub mod meter_identity;
pub(crate) mod meters;
pub(crate) mod physical_limits;
pub(crate) mod readings;
pub mod sessions;
pub mod site_tree;
pub mod sites;
pub(crate) mod statements;
pub(crate) mod tariff_calendars;
pub mod tokens;
pub(crate) mod virtual_meters;

pub use caller::Caller;
pub use error::ServiceError;
