//! Devices: profiles (register maps as data), OBIS naming, decoding to readings.

pub mod command;
pub mod decode;
pub mod driver;
pub mod identify;
pub mod iec;
pub mod iec_decode;
pub mod iec_load_profile;
pub mod interval;
pub mod obis;
pub mod profile;
mod profile_check;
pub mod pulse;
pub mod reading;
pub mod registry;
pub mod unit;
pub mod value_type;

#[cfg(test)]
mod profile_tests;
