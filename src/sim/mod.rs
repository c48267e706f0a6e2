//! Device simulators that speak the real protocols over real sockets and
//! pseudo-terminals, for tests, benchmarks and the demo.
//!
//! - [`clock::SimClock`]: the system clock, or a manual one tests move.
//! - [`meter::Th40cModel`]: a TH40C's physics: loads, powers, energies, demand.
//! - [`device::SimDevice`]: a model behind a profile's register map, with the
//!   manual's write rules and a record of every value served.
//! - [`bus::SimBus`]: several devices answering on one line by unit address.
//! - [`server`]: Modbus TCP, RTU over TCP and RTU on a pseudo-terminal.
//! - [`cli`]: `ohmnibus simulate`.

pub mod bus;
pub mod cli;
pub mod clock;
pub mod device;
pub mod meter;
pub mod server;
