//! Wire formats and transports. Knows nothing of devices.

#[cfg(test)]
pub(crate) mod fuzz_support;
pub mod iec62056;
pub mod modbus;
