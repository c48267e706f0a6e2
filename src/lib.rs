//! Ohmnibus: a metering head-end. See DESIGN.md for the layers.

pub mod cli;
pub mod config;
pub mod derive;
pub mod device;
pub mod domain;
pub mod metering;
pub mod poll;
pub mod protocol;
pub mod service;
pub mod sim;
pub mod startup;
pub mod store;
pub mod web;
