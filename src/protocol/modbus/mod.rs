//! Modbus. The head-end's client side uses tokio-modbus; what is here is the
//! server side the simulators need, as pure framing with no I/O.

pub mod frame;
#[cfg(test)]
mod fuzz_tests;
pub(crate) mod rtu_client;
