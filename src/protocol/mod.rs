//! Wire formats and transports. Knows nothing of devices.

pub mod modbus;
