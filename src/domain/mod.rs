//! Shared vocabulary of the application: identifiers, addresses, roles,
//! transport settings, OBIS codes, units, quality flags, device states,
//! events, time zones and device secrets. Types that parse, so an invalid value cannot be
//! built anywhere else, and that are stored and loaded as themselves.

pub mod address;
pub mod clock;
mod column;
pub mod command;
pub mod event;
pub mod identity;
pub mod ids;
pub(crate) mod job;
pub mod obis;
pub mod quality;
pub mod role;
pub mod sealing;
pub mod secret;
pub mod severity;
pub mod source;
pub mod state;
pub mod transport;
pub mod unit;
pub mod zone;
