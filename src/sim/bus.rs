//! Several simulated devices sharing one line, each answering its own unit
//! address; unit 0 is a broadcast every device acts on and none answers.

use std::sync::{Arc, Mutex};

use super::device::{Served, SimDevice};
use super::fault::{self, ModbusFault};
use crate::protocol::modbus::frame::{Exception, ModbusRequest, exception_response, parse_pdu};

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
    /// response PDU, or nothing (no such unit, broadcast, empty PDU, a
    /// device told to keep silent). A device told to answer an exception
    /// answers it to every request, and does nothing.
    ///
    /// A PDU of a known function whose lengths disagree (an FC16 byte count
    /// that does not match its register count) answers exception 03, as the
    /// Modbus application protocol (v1.1b3, 6.12) asks.
    pub fn handle(&self, unit: u8, pdu: &[u8]) -> Option<(u8, Vec<u8>)> {
        let &function = pdu.first()?;
        let request = match parse_pdu(pdu) {
            Ok(request) => request,
            Err(_) if unit == 0 => return None,
            Err(_) => {
                self.with_device(unit, |_| ())?;
                return Some((unit, exception_response(function, Exception::IllegalDataValue)));
            }
        };
        match self.fault(unit) {
            Some(ModbusFault::NoAnswer) => return None,
            Some(ModbusFault::Exception(exception)) => return Some((unit, exception_response(function, exception))),
            _ => {}
        }
        if unit == 0 {
            for device in self.devices.iter() {
                device.lock().expect("device lock").handle(&request, function, true);
            }
            return None;
        }
        if let ModbusRequest::WriteSingle { value, .. } = request {
            // Two devices on one address would both answer: refuse a change
            // to an address another simulated device holds.
            let wanted = u8::try_from(value).ok();
            let taken = self
                .units()
                .into_iter()
                .any(|other| other != unit && Some(other) == wanted);
            let changes_address = self
                .with_device(unit, |device| device.is_address_change(&request))
                .unwrap_or(false);
            if taken && changes_address {
                return Some((unit, exception_response(function, Exception::IllegalDataValue)));
            }
        }
        let device = self
            .devices
            .iter()
            .find(|device| device.lock().expect("device lock").unit == unit)?;
        device.lock().expect("device lock").handle(&request, function, false)
    }

    /// The fault the device at `unit` shows now (none for an absent unit
    /// or the broadcast). [`SimBus::handle`] applies "no answer" and the
    /// exceptions; the servers change the bytes for the others.
    pub fn fault(&self, unit: u8) -> Option<ModbusFault> {
        self.with_device(unit, |device| fault::current(&device.fault_switch()))
            .flatten()
    }

    /// The unit addresses the devices answer on now.
    pub fn units(&self) -> Vec<u8> {
        self.devices
            .iter()
            .map(|device| device.lock().expect("device lock").unit)
            .collect()
    }

    /// The record of values served by the device now at `unit` (the handle
    /// stays valid after the device changes its address).
    pub fn served(&self, unit: u8) -> Option<Served> {
        self.with_device(unit, |device| device.served())
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
