//! Ohmnibus: a metering head-end. See DESIGN.md for the layers.

pub mod device;
pub mod domain;
pub mod store;
pub mod poll;
pub mod config;
pub mod startup;
pub mod web;
pub mod cli;
