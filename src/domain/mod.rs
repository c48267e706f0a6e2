//! Shared vocabulary of the application: identifiers, addresses, roles,
//! transport settings and device states. Types that parse, so an invalid
//! value cannot be built anywhere else.

pub mod address;
pub mod clock;
pub mod ids;
pub mod job;
pub mod role;
pub mod state;
pub mod transport;
