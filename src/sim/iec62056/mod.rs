//! IEC 62056-21 simulators of the Blue Star A1000 and the TH40C.
//!
//! - [`history`]: the deterministic 15-minute energy history both meters
//!   keep (whole Wh, tariff rates 1–4), grown as the simulator clock moves;
//! - [`events`]: seeded power-quality events with start and stop;
//! - [`model::IecMeter`]: a meter's configuration and the values it
//!   answers by OBIS address at an instant (`value`, `register_at`,
//!   `load_profile`, `resets`): what tests compare the wire with;
//! - [`codes`]: what differs between the two meters (identification,
//!   profile channels, readout list, status and event addresses);
//! - [`session::Line`]: the protocol on one line, pure, with injectable
//!   [`session::Faults`];
//! - [`server`]: TCP and pseudo-terminal transports.

pub mod codes;
pub mod events;
pub mod history;
pub mod model;
pub mod server;
pub mod session;

pub use codes::IecKind;
pub use model::{IecMeter, IecMeterConfig};
pub use server::{IecLine, spawn_iec_pty, spawn_iec_tcp};
pub use session::{Faults, Line, SharedMeter};
