//! Ohmnibus: a metering head-end. See DESIGN.md for the layers.

pub mod device;
