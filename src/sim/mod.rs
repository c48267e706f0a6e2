//! Device simulators that speak the real protocols over real sockets and
//! pseudo-terminals, for tests, benchmarks and the demo.
//!
//! - [`crate::domain::clock::Clock`] (shared with the server): the system
//!   clock, or a manual one tests move
//!   (`Clock::manual(at)`, `advance(by)`), so runs are deterministic.
//! - [`site::site_phases`]: the simulated site every model meters, a pure
//!   function of seed, zone and time: loads, a PV plant, a capacitor bank.
//! - [`meter::Th40cModel`]: a TH40C, deterministic from a seed: the site's
//!   powers, energies per tariff rate, maximum demand
//!   ([`demand`]: 15-minute block averages), billing history, the meter
//!   clock. `set_energy` puts a known value on the wire. At its billing
//!   reset (day 1, 00:00 in its zone, on the shared clock) the history
//!   shifts: `*2` ← `*1`, `*1` ← the energies and demand maxima then. Its
//!   maxima and minima of V, I, P, Q, S, PF and frequency ([`statistics`])
//!   take every instantaneous value it serves.
//! - [`countis::CountisModel`]: a Socomec COUNTIS E33/E43/E44 on the same
//!   sites: tariff set by command, partial counters, CT ratio; its load
//!   curve and name strings ([`countis_curve`]).
//! - [`model::MeterModel`]: what a device needs of a model (values by OBIS,
//!   profile commands); [`catalog::model_for`] picks the model of a profile.
//! - [`device::SimDevice`]: a model behind a profile's register map, serving
//!   its identification text and routing writes to the profile's commands,
//!   recording every value it serves ([`device::Served`], a cloneable
//!   handle: OBIS → last value as it crossed the wire, and for demands the
//!   capture time).
//! - [`fault::ModbusFault`]: what a device can be told to do wrong (no
//!   answer, a slow, garbled, cut or noisy answer, an answer from another
//!   unit, an exception), switched at run time through its
//!   [`fault::FaultSwitch`] (`SimDevice::fault_switch`).
//! - [`bus::SimBus`]: several devices answering on one line by unit address;
//!   unit 0 is a broadcast, an absent unit gets no answer.
//! - [`server`]: Modbus TCP, RTU over TCP (a transparent gateway) and RTU on
//!   a pseudo-terminal, stopped by a [`crate::shutdown::Shutdown`] (its
//!   trigger fired or dropped).
//! - [`cli`]: `ohmnibus simulate`.
//!
//! Typical use:
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use ohmnibus::device::registry::ProfileSet;
//! use ohmnibus::domain::clock::Clock;
//! use ohmnibus::sim::{bus::SimBus, device::SimDevice, meter::Th40cModel};
//! use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
//!
//! let clock = Clock::manual("2026-03-14T10:20:30Z".parse().unwrap());
//! let profile = ProfileSet::builtin().get("th40c").unwrap();
//! let model = Th40cModel::new(42, chrono_tz::Tz::UTC, clock.now());
//! let device = SimDevice::new(profile, 1, model, clock.clone());
//! let served = device.served();
//! let (stop, shutdown) = ohmnibus::shutdown::channel();
//! let (address, _task) = spawn_tcp(SimBus::new(vec![device]), "127.0.0.1:0", TcpFraming::ModbusTcp, shutdown).await?;
//! // … poll `address`, move `clock`, compare with `served` …
//! drop(stop);
//! # Ok(()) }
//! ```

pub mod bus;
pub mod catalog;
pub mod cli;
pub mod concentrator;
pub mod countis;
pub mod countis_curve;
pub(crate) mod demand;
pub mod device;
pub mod fault;
pub mod iec62056;
pub mod meter;
pub mod model;
pub mod server;
pub(crate) mod site;
pub(crate) mod statistics;
