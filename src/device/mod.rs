//! Devices: profiles (register maps as data), decoding to readings named by OBIS.

pub(crate) mod command;
pub(crate) mod command_plan;
pub mod command_verify;
pub mod decode;
pub mod driver;
pub mod energy_display;
pub mod identify;
pub(crate) mod iec;
mod iec_address;
pub mod iec_commands;
pub mod iec_decode;
pub mod iec_load_profile;
pub mod iec_logbook;
pub mod iec_profile_error;
pub mod iec_time;
pub mod load_curve;
pub mod meter_identity;
pub mod profile;
mod profile_check;
pub mod profile_interval;
pub(crate) mod pulse;
pub(crate) mod pulse_check;
mod pulse_unit;
pub mod reading;
pub(crate) mod register_group;
pub mod registry;
pub mod value_type;
pub mod write_rules;

#[cfg(test)]
mod iec_decode_th40c_tests;
#[cfg(test)]
mod profile_fuzz_tests;
#[cfg(test)]
mod profile_tests;
