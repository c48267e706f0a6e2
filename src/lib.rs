//! Ohmnibus: a metering head-end. The layers, what each may import and how a
//! reading and a job travel: `docs/ARCHITECTURE.md`.

pub mod automation;
pub mod cli;
pub mod config;
pub mod derive;
pub mod device;
pub mod domain;
pub mod maintenance;
pub mod metering;
pub mod poll;
pub mod protocol;
pub mod service;
pub mod shutdown;
pub mod sim;
pub mod startup;
pub mod store;
pub mod web;
