//! What a caller asks for when adding or changing a device, as the
//! service takes it: the API's JSON bodies and the bus page's form become
//! these.

use crate::domain::ids::BusId;

/// A device to add.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub name: String,
    pub bus_id: BusId,
    /// Profile name, e.g. `th40c`.
    pub profile: String,
    /// Modbus unit address: required on a Modbus bus, absent on an IEC
    /// 62056-21 bus.
    pub address: Option<i64>,
    /// IEC 62056-21 device address: required on a shared IEC line,
    /// optional on an optical probe, absent on a Modbus bus.
    pub iec_address: Option<String>,
    /// Poll periods; the profile's defaults where absent.
    pub schedule: Periods,
}

/// Poll periods as asked, in seconds; `None` keeps the current (or default) one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Periods {
    pub realtime_seconds: Option<u32>,
    pub energy_seconds: Option<u32>,
    pub history_seconds: Option<u32>,
}
