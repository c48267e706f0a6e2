//! IEC 62056-21 simulators of the Blue Star A1000 and the TH40C.
//!
//! - [`history`]: the deterministic 15-minute energy history both meters
//!   keep (whole Wh, tariff rates 1–4), grown as the simulator clock moves;
//! - [`events`]: seeded power-quality events with start and stop;
//! - [`logbook`]: the TH40C's event logbook (`P.98`), built from them;
//! - [`model::IecMeter`]: a meter's configuration, billing resets, clock
//!   and load profile (`resets`, `load_profile`);
//! - [`codes`]: the values it answers by OBIS address at an instant
//!   (`value`, `register_at`): what tests compare the wire with;
//! - [`programming`]: field programming ("PRG") and the writes it allows;
//! - [`kind`]: what differs between the two meters (identification,
//!   profile channels, readout list, billing sets);
//! - [`session::LineSession`]: the protocol on one line, pure, with injectable
//!   [`session::Faults`] for the whole line and a [`fault::IecFault`] per
//!   meter (silent, slow, stopping mid-block, never stopping, bad BCC);
//! - [`server`]: TCP and pseudo-terminal transports.

pub mod codes;
pub mod events;
pub mod fault;
pub mod history;
pub(crate) mod kind;
pub mod logbook;
pub(crate) mod model;
pub mod programming;
pub(crate) mod server;
pub mod session;

pub use fault::IecFault;
pub use kind::{IecKind, ProfileChannel};
pub use model::{EnergyDigits, IecMeter, IecMeterConfig, ProgrammedProfile, Reset, ResetWrite};
pub use programming::WriteAnswer;
pub use server::{Received, ServedLine, spawn_iec_pty, spawn_iec_tcp};
pub use session::{Faults, LineSession, SharedMeter};
