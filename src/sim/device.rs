//! A simulated device: a meter model behind its profile's register map,
//! answering reads and routing writes to the profile's commands, recording
//! every value it serves.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::fault::FaultSwitch;
use super::model::MeterModel;
use crate::device::meter_identity::IdentityFormat;
use crate::device::profile::{Encode, MODBUS_MAX_REGISTERS, Profile, Register, WriteCommand};
use crate::device::value_type::ValueType;
use crate::domain::clock::Clock;
use crate::protocol::modbus::frame::{
    Exception, ModbusRequest, exception_response, read_response, write_multiple_response, write_single_response,
};

/// Values served, by OBIS code as the head-end stores them (signed powers
/// split into their import and export codes), with capture times.
pub type Served = Arc<Mutex<HashMap<String, (f64, Option<DateTime<Utc>>)>>>;

/// A value as served: engineering value and capture time.
type ServedValue = (f64, Option<DateTime<Utc>>);

/// What one register address of the device holds.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Index of the profile register, and offset in it.
    Value(usize, u16),
    /// Index of the profile's identification entry, and offset in it.
    Identification(usize, u16),
    /// Offset in the serial words of the profile's `words` identity entries.
    Serial(u16),
}

/// The serial number words a simulated meter's identity registers show
/// (shared: clone it before the device moves, then change it to swap the
/// meter at the address for another).
pub type SerialSwitch = Arc<Mutex<Vec<u16>>>;

pub struct SimDevice {
    pub profile: Arc<Profile>,
    pub unit: u8,
    pub model: Box<dyn MeterModel>,
    clock: Clock,
    served: Served,
    map: HashMap<u16, Slot>,
    /// Silent spells: no answer while the clock is in them.
    outages: Option<Outages>,
    /// The fault it shows now, if any (switched at run time).
    fault: FaultSwitch,
    /// Its serial number words (switched at run time).
    serial: SerialSwitch,
}

/// A device that falls silent on a schedule (a flaky link, a meter that
/// loses its auxiliary supply): silent for `length` at the start of every
/// `every`, counted from the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outages {
    pub every: chrono::Duration,
    pub length: chrono::Duration,
}

impl Outages {
    /// Whether `at` falls in a silent spell.
    pub fn silent_at(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        let every = self.every.num_seconds().max(1);
        at.timestamp().rem_euclid(every) < self.length.num_seconds()
    }
}

impl SimDevice {
    /// A device of `profile` at `unit` whose values come from `model`.
    pub fn new(profile: Arc<Profile>, unit: u8, model: impl MeterModel + 'static, clock: Clock) -> SimDevice {
        SimDevice::with_model(profile, unit, Box::new(model), clock)
    }

    /// [`SimDevice::new`] for a boxed model (as [`super::catalog::model_for`] gives).
    ///
    /// The map is the profile's registers (without the optional ones if the
    /// model's firmware lacks them: those answer exception 02) plus the text
    /// of its identification entries.
    pub fn with_model(profile: Arc<Profile>, unit: u8, model: Box<dyn MeterModel>, clock: Clock) -> SimDevice {
        let mut map = HashMap::new();
        let optional = model.has_optional_registers();
        for (index, register) in profile.registers.iter().enumerate() {
            if register.optional && !optional {
                continue;
            }
            for offset in 0..register.value_type.width() {
                map.insert(register.address + offset, Slot::Value(index, offset));
            }
        }
        for (index, entry) in profile.identification.iter().enumerate() {
            if entry.expected_words().is_some() {
                for offset in 0..entry.count {
                    map.entry(entry.address + offset)
                        .or_insert(Slot::Identification(index, offset));
                }
            }
        }
        // The serial words, across the `words` identity entries in order.
        let mut serial_offset = 0;
        for entry in profile.identity.iter().filter(|e| e.format == IdentityFormat::Words) {
            for offset in 0..entry.count {
                map.entry(entry.address + offset).or_insert(Slot::Serial(serial_offset));
                serial_offset += 1;
            }
        }
        SimDevice {
            profile,
            unit,
            model,
            clock,
            served: Served::default(),
            map,
            outages: None,
            fault: FaultSwitch::default(),
            serial: Arc::new(Mutex::new(vec![0x2026, 0x0000, u16::from(unit)])),
        }
    }

    /// The same device, silent on the schedule `outages` gives.
    pub fn with_outages(mut self, outages: Outages) -> SimDevice {
        self.outages = Some(outages);
        self
    }

    /// The switch of the fault the device shows (shared: clone it before
    /// the device moves, then flip it while the device serves).
    pub fn fault_switch(&self) -> FaultSwitch {
        Arc::clone(&self.fault)
    }

    /// The switch of its serial number words (by default 2026-0000-UNIT).
    pub fn serial_switch(&self) -> SerialSwitch {
        Arc::clone(&self.serial)
    }

    /// The record of served values (shared: clone it before the device moves).
    pub fn served(&self) -> Served {
        Arc::clone(&self.served)
    }

    /// Answers a request. `broadcast`: act but send nothing back. Returns
    /// the unit to answer from and the response PDU.
    ///
    /// Only the writes the profile marks `broadcast` act on a broadcast (the
    /// TH40C's clock set, App. E; the COUNTIS tariff); a broadcast address
    /// change would give every device on the line the same address, so it
    /// is ignored.
    pub fn handle(&mut self, request: &ModbusRequest, function: u8, broadcast: bool) -> Option<(u8, Vec<u8>)> {
        if broadcast && !self.accepts_broadcast(request) {
            return None;
        }
        let now = self.clock.now();
        if self.outages.is_some_and(|outages| outages.silent_at(now)) {
            return None;
        }
        self.model.advance(now);
        let pdu = match request {
            ModbusRequest::ReadHolding { start, count } => match self.model.read_own(*start, *count, now) {
                Some(words) => words.map(|words| read_response(&words)),
                None => self.read(*start, *count, now),
            },
            ModbusRequest::WriteSingle { address, value } => match self.model.write_own(*address, &[*value]) {
                Some(done) => done,
                None => self.write(6, *address, &[*value], now),
            }
            .map(|()| write_single_response(*address, *value)),
            ModbusRequest::WriteMultiple { start, values } => match self.model.write_own(*start, values) {
                Some(done) => done,
                None => self.write(16, *start, values, now),
            }
            .map(|()| write_multiple_response(*start, values.len() as u16)),
            ModbusRequest::Unsupported { .. } => Err(Exception::IllegalFunction),
        };
        if broadcast {
            return None;
        }
        Some((
            self.unit,
            pdu.unwrap_or_else(|exception| exception_response(function, exception)),
        ))
    }

    fn accepts_broadcast(&self, request: &ModbusRequest) -> bool {
        let (function, address) = match request {
            ModbusRequest::WriteSingle { address, .. } => (6, *address),
            ModbusRequest::WriteMultiple { start, .. } => (16, *start),
            _ => return false,
        };
        self.profile
            .modbus
            .commands
            .values()
            .any(|command| command.broadcast && command.address == address && (function == 16 || command.count == 1))
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
            match *self.map.get(&address).ok_or(Exception::IllegalDataAddress)? {
                Slot::Identification(index, offset) => {
                    let text = self.profile.identification[index].expected_words().unwrap_or_default();
                    words.push(text.get(usize::from(offset)).copied().unwrap_or(0));
                }
                Slot::Serial(offset) => {
                    let serial = self.serial.lock().expect("serial lock");
                    words.push(serial.get(usize::from(offset)).copied().unwrap_or(0));
                }
                Slot::Value(index, offset) => {
                    if let Entry::Vacant(slot) = encoded.entry(index) {
                        let register = &self.profile.registers[index];
                        let whole = u32::from(register.address) >= u32::from(start)
                            && register.end() <= u32::from(start) + u32::from(count);
                        let (register_words, shown) = self.encode(register, now);
                        if let Some((shown, captured)) = shown.filter(|_| whole) {
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
            }
        }
        self.served.lock().expect("served lock").extend(served);
        Ok(read_response(&words))
    }

    /// One register's words, and the value a head-end decodes from them with
    /// its capture time (`None` for time stamp parts and "not available").
    ///
    /// The value recorded is the model's before encoding, rounded only to
    /// the resolution of an integer register: a head-end's stored value must
    /// match it within the precision of the wire type, which checks the
    /// encoding and decoding rather than assuming them. A value the model
    /// does not have is sent as the profile's "not available" pattern if it
    /// has one, else as 0.
    fn encode(&self, register: &Register, now: DateTime<Utc>) -> (Vec<u16>, Option<ServedValue>) {
        let order = self.profile.word_order(register);
        let value = self.model.value(&register.obis, now);
        let zone = self.model.zone();
        let local = |at: DateTime<Utc>| at.with_timezone(&zone);
        let raw = match (register.value_type, value) {
            (ValueType::Mmdd, value) => {
                let stamp = value.and_then(|(_, at)| at).map(local);
                let raw = stamp.map_or(0, |at| at.month() * 100 + at.day());
                return (register.value_type.encode(f64::from(raw), order), None);
            }
            (ValueType::Hhmm, value) => {
                let stamp = value.and_then(|(_, at)| at).map(local);
                let raw = stamp.map_or(0, |at| at.hour() * 100 + at.minute());
                return (register.value_type.encode(f64::from(raw), order), None);
            }
            (ValueType::Ymdhms, value) => {
                let stamp = value.and_then(|(_, at)| at).map(local);
                let raw = stamp.map_or(0, |at| {
                    let date = i64::from(at.year()) * 10_000 + i64::from(at.month() * 100 + at.day());
                    date * 1_000_000 + i64::from(at.hour() * 10_000 + at.minute() * 100 + at.second())
                });
                return (register.value_type.encode(raw as f64, order), None);
            }
            (_, None) if self.profile.modbus.not_available_sentinels => {
                if let Some(pattern) = register.value_type.not_available(order) {
                    return (pattern, None);
                }
                0.0
            }
            (_, value) => value.map_or(0.0, |(value, _)| value / register.scale),
        };
        let captured = value.and_then(|(_, at)| at);
        let words = register.value_type.encode(raw, order);
        // An integer register holds what its width can: a value beyond it
        // goes out as the end of the range (the encoding clamps), and that
        // is what a head-end reads.
        let on_wire = match register.value_type {
            ValueType::F32 => raw,
            _ => register.value_type.decode(&words, order).unwrap_or(0.0),
        };
        (words, Some((on_wire * register.scale, captured)))
    }

    /// Whether `request` is this device's address-change command.
    pub fn is_address_change(&self, request: &ModbusRequest) -> bool {
        matches!(request, ModbusRequest::WriteSingle { address, .. } if Some(*address) == self.command_address("set_address"))
    }

    fn command_address(&self, name: &str) -> Option<u16> {
        self.profile.modbus.commands.get(name).map(|command| command.address)
    }

    /// A write (FC06 or FC16) to `start`: it must be the address of one of
    /// the profile's commands (else exception 02), FC06 only for a
    /// one-register command and with the command's register count (else 03).
    /// The address change is the device's own (App. E: the answer comes from
    /// the new address) once the model accepts it; every other command is
    /// the model's.
    fn write(&mut self, function: u8, start: u16, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        let profile = Arc::clone(&self.profile);
        let inputs = u16::from(profile.pulse_inputs.unwrap_or(1));
        // A pulse input's settings sit at `address + stride x (input - 1)`.
        let input_of = |command: &WriteCommand| match command.channel_stride {
            Some(stride) if command.encode == Encode::ChannelConfig && stride > 0 && start >= command.address => {
                let offset = start - command.address;
                let input = offset / stride + 1;
                (offset % stride == 0 && input <= inputs).then_some(input)
            }
            _ => None,
        };
        let (name, command) = profile
            .modbus
            .commands
            .iter()
            .find(|(_, command)| command.address == start || input_of(command).is_some())
            .ok_or(Exception::IllegalDataAddress)?;
        if (function == 6 && command.count != 1) || values.len() != usize::from(command.count) {
            return Err(Exception::IllegalDataValue);
        }
        match input_of(command) {
            Some(input) => self.model.configure_input(input, values)?,
            None => self.model.command(name, values, now)?,
        }
        if name == "set_address" {
            self.unit = u8::try_from(values[0])
                .ok()
                .filter(|unit| (1..=self.profile.max_address).contains(unit))
                .ok_or(Exception::IllegalDataValue)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::Outages;

    #[test]
    fn outages_are_silent_at_the_start_of_each_period() {
        let outages = Outages {
            every: Duration::hours(2),
            length: Duration::minutes(40),
        };
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 11, 20, h, m, s).unwrap();
        // 2 h periods start at even UTC hours (the epoch is one).
        assert!(outages.silent_at(at(10, 0, 0)));
        assert!(outages.silent_at(at(10, 39, 59)));
        assert!(!outages.silent_at(at(10, 40, 0)));
        assert!(!outages.silent_at(at(11, 59, 59)));
        assert!(outages.silent_at(at(12, 0, 0)));
    }
}
