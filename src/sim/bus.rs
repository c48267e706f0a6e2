//! Several simulated devices sharing one line, each answering its own unit
//! address; unit 0 is a broadcast every device acts on and none answers.

use std::sync::{Arc, Mutex};

use super::device::SimDevice;
use crate::protocol::modbus::frame::parse_pdu;

#[derive(Clone)]
pub struct SimBus {
    devices: Arc<Vec<Mutex<SimDevice>>>,
}

impl SimBus {
    pub fn new(devices: Vec<SimDevice>) -> SimBus {
        SimBus {
            devices: Arc::new(devices.into_iter().map(Mutex::new).collect()),
        }
    }

    /// Answers one request PDU sent to `unit`: the unit answering and the
    /// response PDU, or nothing (no such unit, broadcast, malformed PDU).
    pub fn handle(&self, unit: u8, pdu: &[u8]) -> Option<(u8, Vec<u8>)> {
        let request = parse_pdu(pdu).ok()?;
        let function = pdu[0];
        if unit == 0 {
            for device in self.devices.iter() {
                device.lock().expect("device lock").handle(&request, function, true);
            }
            return None;
        }
        let device = self
            .devices
            .iter()
            .find(|device| device.lock().expect("device lock").unit == unit)?;
        device.lock().expect("device lock").handle(&request, function, false)
    }

    /// Runs `f` on the device currently at `unit`.
    pub fn with_device<T>(&self, unit: u8, f: impl FnOnce(&mut SimDevice) -> T) -> Option<T> {
        let device = self
            .devices
            .iter()
            .find(|device| device.lock().expect("device lock").unit == unit)?;
        let mut device = device.lock().expect("device lock");
        Some(f(&mut device))
    }

    /// The largest turnaround of the devices on the bus.
    pub fn turnaround_ms(&self) -> u64 {
        self.devices
            .iter()
            .map(|device| device.lock().expect("device lock").profile.modbus.turnaround_ms)
            .max()
            .unwrap_or(0)
    }
}
