//! A simulated device: a meter model behind its profile's register map,
//! with the write rules of the manual (TH40C App. E), recording every value
//! it serves.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::clock::SimClock;
use super::meter::Th40cModel;
use crate::device::profile::{MODBUS_MAX_REGISTERS, Profile};
use crate::device::value_type::ValueType;
use crate::protocol::modbus::frame::{
    Exception, Request, exception_response, read_response, write_multiple_response, write_single_response,
};

/// Values served, by OBIS code as the head-end stores them (signed powers
/// split into their import and export codes), with capture times.
pub type Served = Arc<Mutex<HashMap<String, (f64, Option<DateTime<Utc>>)>>>;

pub struct SimDevice {
    pub profile: Arc<Profile>,
    pub unit: u8,
    pub model: Th40cModel,
    clock: SimClock,
    served: Served,
    /// Register address → (index of the profile register, offset in it).
    map: HashMap<u16, (usize, u16)>,
    /// Local day on which the clock was last set (once a day, App. E).
    clock_set_on: Option<NaiveDate>,
}

/// Largest clock change a write may make (App. E: "non deve superare i 5 minuti").
const MAX_CLOCK_STEP_SECONDS: i64 = 300;

impl SimDevice {
    pub fn new(profile: Arc<Profile>, unit: u8, model: Th40cModel, clock: SimClock) -> SimDevice {
        let mut map = HashMap::new();
        for (index, register) in profile.registers.iter().enumerate() {
            for offset in 0..register.value_type.width() {
                map.insert(register.address + offset, (index, offset));
            }
        }
        SimDevice {
            profile,
            unit,
            model,
            clock,
            served: Served::default(),
            map,
            clock_set_on: None,
        }
    }

    /// The record of served values (shared: clone it before the device moves).
    pub fn served(&self) -> Served {
        Arc::clone(&self.served)
    }

    /// Answers a request. `broadcast`: act but send nothing back. Returns
    /// the unit to answer from and the response PDU.
    ///
    /// Only the writes the profile marks `broadcast` act on a broadcast (the
    /// clock set of App. E); a broadcast address change would give every
    /// device on the line the same address, so it is ignored.
    pub fn handle(&mut self, request: &Request, function: u8, broadcast: bool) -> Option<(u8, Vec<u8>)> {
        if broadcast && !self.accepts_broadcast(request) {
            return None;
        }
        let now = self.clock.now();
        self.model.advance(now);
        let pdu = match request {
            Request::ReadHolding { start, count } => self.read(*start, *count, now),
            Request::WriteSingle { address, value } => self.write_single(*address, *value),
            Request::WriteMultiple { start, values } => self.write_multiple(*start, values, now),
            Request::Unsupported { .. } => Err(Exception::IllegalFunction),
        };
        if broadcast {
            return None;
        }
        Some((
            self.unit,
            pdu.unwrap_or_else(|exception| exception_response(function, exception)),
        ))
    }

    fn accepts_broadcast(&self, request: &Request) -> bool {
        let (function, address) = match request {
            Request::WriteSingle { address, .. } => (6, *address),
            Request::WriteMultiple { start, .. } => (16, *start),
            _ => return false,
        };
        self.profile
            .modbus
            .commands
            .values()
            .any(|command| command.broadcast && command.function == function && command.address == address)
    }

    /// FC03. Checks in the order of the Modbus application protocol (v1.1b3,
    /// 6.3): quantity (1–125, else 03), then addresses (every one in the
    /// profile's map, else 02; TH40C App. E lists both codes).
    fn read(&self, start: u16, count: u16, now: DateTime<Utc>) -> Result<Vec<u8>, Exception> {
        if !(1..=MODBUS_MAX_REGISTERS).contains(&count) {
            return Err(Exception::IllegalDataValue);
        }
        if u32::from(start) + u32::from(count) > 0x1_0000 {
            return Err(Exception::IllegalDataAddress);
        }
        let mut words = Vec::with_capacity(usize::from(count));
        let mut encoded: HashMap<usize, Vec<u16>> = HashMap::new();
        let mut served = Vec::new();
        for address in start..start + count {
            let &(index, offset) = self.map.get(&address).ok_or(Exception::IllegalDataAddress)?;
            if let Entry::Vacant(slot) = encoded.entry(index) {
                let register = &self.profile.registers[index];
                let (value, captured) = self.model.value(&register.obis, now).unwrap_or((0.0, None));
                let raw = match register.value_type {
                    ValueType::Mmdd => captured.map(|at| mmdd(&self.model, at)).unwrap_or(0.0),
                    ValueType::Hhmm => captured.map(|at| hhmm(&self.model, at)).unwrap_or(0.0),
                    _ => value / register.scale,
                };
                let order = self.profile.word_order(register);
                let register_words = register.value_type.encode(raw, order);
                let whole = u32::from(register.address) >= u32::from(start)
                    && register.end() <= u32::from(start) + u32::from(count);
                if whole && !register.value_type.is_timestamp_part() {
                    // The model's value before encoding: a head-end's stored value
                    // must match it within the precision of the wire type, which
                    // checks the encoding and decoding rather than assuming them.
                    let shown = raw * register.scale;
                    match &register.obis_negative {
                        Some(negative) => {
                            served.push((register.obis.to_string(), (shown.max(0.0), captured)));
                            served.push((negative.to_string(), ((-shown).max(0.0), captured)));
                        }
                        None => served.push((register.obis.to_string(), (shown, captured))),
                    }
                }
                slot.insert(register_words);
            }
            words.push(encoded[&index][usize::from(offset)]);
        }
        self.served.lock().expect("served lock").extend(served);
        Ok(read_response(&words))
    }

    /// Whether `request` is this device's address-change command.
    pub fn is_address_change(&self, request: &Request) -> bool {
        matches!(request, Request::WriteSingle { address, .. } if Some(*address) == self.command_address("set_address"))
    }

    fn command_address(&self, name: &str) -> Option<u16> {
        self.profile.modbus.commands.get(name).map(|command| command.address)
    }

    fn write_single(&mut self, address: u16, value: u16) -> Result<Vec<u8>, Exception> {
        if Some(address) != self.command_address("set_address") {
            return Err(Exception::IllegalDataAddress);
        }
        let unit = u8::try_from(value)
            .ok()
            .filter(|unit| (1..=self.profile.max_address).contains(unit))
            .ok_or(Exception::IllegalDataValue)?;
        // App. E: the answer to an address change comes from the new address.
        self.unit = unit;
        Ok(write_single_response(address, value))
    }

    /// The clock write of App. E: YY MM DD hh mm ss in three registers, once
    /// a day and at most 5 minutes away from the meter's time. A second set
    /// the same day answers exception 01 (the manual's "protect" code for
    /// refused writes); a step over 5 minutes or a bad date, exception 03.
    /// A write elsewhere answers 02; one at 0x7000 of other than three
    /// registers, 03.
    fn write_multiple(&mut self, start: u16, values: &[u16], now: DateTime<Utc>) -> Result<Vec<u8>, Exception> {
        let Some(command) = self
            .profile
            .modbus
            .commands
            .get("set_clock")
            .filter(|c| c.function == 16)
        else {
            return Err(Exception::IllegalDataAddress);
        };
        if start != command.address {
            return Err(Exception::IllegalDataAddress);
        }
        if values.len() != usize::from(command.count) || values.len() != 3 {
            return Err(Exception::IllegalDataValue);
        }
        let bytes: Vec<u32> = values.iter().flat_map(|v| v.to_be_bytes()).map(u32::from).collect();
        let target = self
            .model
            .local_instant(2000 + bytes[0] as i32, bytes[1], bytes[2], bytes[3], bytes[4], bytes[5])
            .ok_or(Exception::IllegalDataValue)?;
        let meter_now = self.model.meter_time(now);
        let today = meter_now.date_naive();
        if self.clock_set_on == Some(today) {
            return Err(Exception::IllegalFunction);
        }
        if (target - meter_now.with_timezone(&Utc)).num_seconds().abs() > MAX_CLOCK_STEP_SECONDS {
            return Err(Exception::IllegalDataValue);
        }
        self.model.set_clock(target, now);
        self.clock_set_on = Some(self.model.meter_time(now).date_naive());
        Ok(write_multiple_response(start, values.len() as u16))
    }
}

fn mmdd(model: &Th40cModel, at: DateTime<Utc>) -> f64 {
    let local = at.with_timezone(&model.zone);
    f64::from(local.month() * 100 + local.day())
}

fn hhmm(model: &Th40cModel, at: DateTime<Utc>) -> f64 {
    use chrono::Timelike;
    let local = at.with_timezone(&model.zone);
    f64::from(local.hour() * 100 + local.minute())
}
