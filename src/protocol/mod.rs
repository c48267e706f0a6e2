//! Wire formats and transports. Knows nothing of devices.

pub mod iec62056;
pub mod modbus;
