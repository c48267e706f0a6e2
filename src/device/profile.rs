//! Device profiles: what a device type's registers are, as data.
//!
//! One TOML file per device type under `profiles/`. A profile is parsed, then
//! checked as a whole; a malformed one is refused at load with the file, the
//! field and the reason, so an engineer can fix it without reading code.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::command::ClockLayout;
use super::identify::{Identification, IdentificationKind, TextEncoding};
use super::iec::IecSettings;
use super::obis::ObisCode;
use super::unit::Unit;
use super::value_type::{ValueType, WordOrder};

/// The Modbus protocol allows at most 125 registers in one FC03 answer.
pub const MODBUS_MAX_REGISTERS: u16 = 125;

/// How often a class of registers is read unless a device says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterGroup {
    /// Instantaneous values, clock: read often (default every 10 s).
    Realtime,
    /// Current energy and demand registers (default every 60 s).
    Energy,
    /// Values of closed billing periods ("last month", "two months ago"):
    /// they change once a period, so they are read seldom (default every
    /// 900 s) and last on the bus (DESIGN.md: real-time > energy > history).
    History,
}

impl RegisterGroup {
    /// Every group, in the order the bus serves them when several are due.
    pub const ALL: [RegisterGroup; 3] = [RegisterGroup::Realtime, RegisterGroup::Energy, RegisterGroup::History];

    pub fn as_str(self) -> &'static str {
        match self {
            RegisterGroup::Realtime => "realtime",
            RegisterGroup::Energy => "energy",
            RegisterGroup::History => "history",
        }
    }
}

impl fmt::Display for RegisterGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value in the device's register map.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub address: u16,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    #[serde(default)]
    pub word_order: Option<WordOrder>,
    /// Engineering value = raw × scale (0.1 for "one decimal" integers).
    #[serde(default = "one")]
    pub scale: f64,
    #[serde(default = "no_unit")]
    pub unit: Unit,
    pub obis: ObisCode,
    /// For signed powers: a negative reading is stored under this code as a
    /// positive value, and `obis` gets 0 (TH40C App. G: `1-1:1.7.0(1-1:2.7.0)`).
    #[serde(default)]
    pub obis_negative: Option<ObisCode>,
    pub group: RegisterGroup,
    pub name: String,
    /// Not every firmware has this register: an "illegal data address"
    /// answer marks it unsupported for the device instead of a fault.
    #[serde(default)]
    pub optional: bool,
}

fn one() -> f64 {
    1.0
}

fn no_unit() -> Unit {
    Unit::None
}

impl Register {
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.value_type.width())
    }
}

/// Modbus settings of a profile (defaults for a profile with no Modbus map).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModbusSettings {
    /// Largest number of registers one read request may span for this device.
    pub max_registers_per_request: u16,
    /// Word order of 32-bit values unless a register says otherwise.
    #[serde(default)]
    pub word_order: WordOrder,
    /// Time the device needs between its answer and the next request.
    #[serde(default)]
    pub turnaround_ms: u64,
    /// Writable registers, by command name (`set_clock`, `set_address`).
    #[serde(default)]
    pub commands: BTreeMap<String, WriteCommand>,
    /// Whether the device sends "not available" patterns (all ones unsigned,
    /// 0x7FFF… signed: see [`ValueType::not_available`]) for values it does
    /// not have; such values are left out of the readings, not stored as numbers.
    #[serde(default)]
    pub not_available_sentinels: bool,
}

impl Default for ModbusSettings {
    fn default() -> Self {
        ModbusSettings {
            max_registers_per_request: MODBUS_MAX_REGISTERS,
            word_order: WordOrder::default(),
            turnaround_ms: 0,
            commands: BTreeMap::new(),
            not_available_sentinels: false,
        }
    }
}

/// A register the head-end may write.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteCommand {
    /// Modbus function: 6 (one register) or 16 (several).
    pub function: u8,
    pub address: u16,
    /// Number of registers written (1 for function 6).
    pub count: u16,
    /// Whether the device accepts it sent to unit 0 (no answer comes back).
    #[serde(default)]
    pub broadcast: bool,
    pub description: String,
    /// For a clock command: how the meter's local time fills its registers,
    /// so the head-end can send the time itself when no values are given.
    #[serde(default)]
    pub clock: Option<ClockLayout>,
}

/// Poll intervals used when a device sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub realtime_seconds: u32,
    pub energy_seconds: u32,
    #[serde(default = "default_history_seconds")]
    pub history_seconds: u32,
}

/// Default period of the history group: a closed billing period's values
/// never change, so a quarter of an hour only bounds how late a new month's
/// values show up.
pub const DEFAULT_HISTORY_SECONDS: u32 = 900;

fn default_history_seconds() -> u32 {
    DEFAULT_HISTORY_SECONDS
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            realtime_seconds: 10,
            energy_seconds: 60,
            history_seconds: DEFAULT_HISTORY_SECONDS,
        }
    }
}

impl Schedule {
    pub fn interval(&self, group: RegisterGroup) -> u32 {
        match group {
            RegisterGroup::Realtime => self.realtime_seconds,
            RegisterGroup::Energy => self.energy_seconds,
            RegisterGroup::History => self.history_seconds,
        }
    }
}

/// A whole device profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub description: String,
    /// Highest Modbus unit address the device accepts.
    #[serde(default = "max_unit")]
    pub max_address: u8,
    #[serde(default)]
    pub schedule: Schedule,
    /// Modbus settings; a profile with no `registers` does not speak Modbus.
    #[serde(default)]
    pub modbus: ModbusSettings,
    /// The Modbus register map.
    #[serde(default)]
    pub registers: Vec<Register>,
    /// What the device sends in an IEC 62056-21 readout, for a device that
    /// speaks it (see [`super::iec`]).
    #[serde(default)]
    pub iec62056: Option<IecSettings>,
    /// What the device answers that tells its type (used by bus scans and
    /// served by the simulators); all entries must match. See [`super::identify`].
    #[serde(default)]
    pub identification: Vec<Identification>,
    /// For a legally certified (e.g. MID) meter: what its values read over
    /// the wire are worth legally, as its manual says. Shown with its values.
    #[serde(default)]
    pub legal_metrology: Option<String>,
    /// For a pulse concentrator: how many inputs to derive engineering values
    /// for, from their raw count and configuration registers (see
    /// [`super::pulse::derive`] for the codes they must carry).
    #[serde(default)]
    pub pulse_inputs: Option<u8>,
}

fn max_unit() -> u8 {
    247
}

/// A contiguous run of registers read with one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub start: u16,
    pub count: u16,
    /// Indexes into [`Profile::registers`], in address order.
    pub registers: Vec<usize>,
    pub optional: bool,
}

/// Why a profile was refused: which file, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("profile {file}: {field}: {reason}")]
pub struct ProfileError {
    pub file: String,
    pub field: String,
    pub reason: String,
}

impl Profile {
    /// Parses and checks a profile's TOML text. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|error| {
            let field = error
                .span()
                .map(|span| {
                    let line = text[..span.start].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "document".to_owned());
            ProfileError {
                file: file.to_owned(),
                field,
                reason: error.message().to_owned(),
            }
        })?;
        profile.check(file)?;
        Ok(profile)
    }

    /// Reads and parses a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ProfileError {
            file: file.clone(),
            field: "file".to_owned(),
            reason: error.to_string(),
        })?;
        Profile::parse(&file, &text)
    }

    fn check(&self, file: &str) -> Result<(), ProfileError> {
        let fail = |field: String, reason: String| ProfileError {
            file: file.to_owned(),
            field,
            reason,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(fail("name".into(), "must be lowercase letters, digits and '-'".into()));
        }
        if !(1..=247).contains(&self.max_address) {
            return Err(fail("max_address".into(), "must be 1-247".into()));
        }
        for group in RegisterGroup::ALL {
            if self.schedule.interval(group) == 0 {
                return Err(fail(format!("schedule.{group}_seconds"), "must be at least 1".into()));
            }
        }
        let limit = self.modbus.max_registers_per_request;
        if !(1..=MODBUS_MAX_REGISTERS).contains(&limit) {
            return Err(fail(
                "modbus.max_registers_per_request".into(),
                format!("must be 1-{MODBUS_MAX_REGISTERS}"),
            ));
        }
        for (name, command) in &self.modbus.commands {
            let field = format!("modbus.commands.{name}");
            match (command.function, command.count) {
                (6, 1) | (16, 1..=123) => {}
                (6, _) => return Err(fail(field, "function 6 writes exactly one register".into())),
                (16, _) => return Err(fail(field, "function 16 writes 1-123 registers".into())),
                _ => return Err(fail(field, "function must be 6 or 16".into())),
            }
            if let Some(clock) = command.clock.filter(|clock| clock.count() != command.count) {
                return Err(fail(
                    format!("{field}.clock"),
                    format!("this layout fills {} registers, not {}", clock.count(), command.count),
                ));
            }
        }
        if self.registers.is_empty() && self.iec62056.is_none() {
            return Err(fail(
                "registers".into(),
                "a profile needs a Modbus register map, an [iec62056] section, or both".into(),
            ));
        }
        if let Some(iec) = &self.iec62056 {
            iec.check().map_err(|error| fail(error.field, error.reason))?;
        }

        let mut readings = HashSet::new();
        for (index, register) in self.registers.iter().enumerate() {
            let field = |name: &str| format!("registers[{index}] ({}).{name}", register.name);
            if register.end() > 0x1_0000 {
                return Err(fail(field("address"), "value runs past register 0xFFFF".into()));
            }
            if !register.scale.is_finite() || register.scale == 0.0 {
                return Err(fail(field("scale"), "must be a finite, non-zero number".into()));
            }
            if register.value_type.width() > limit {
                return Err(fail(field("type"), "wider than max_registers_per_request".into()));
            }
            if register.obis_negative.is_some() && matches!(register.value_type, ValueType::U16 | ValueType::U32) {
                return Err(fail(
                    field("obis_negative"),
                    "an unsigned value is never negative".into(),
                ));
            }
            if !register.value_type.is_timestamp_part() {
                for code in std::iter::once(&register.obis).chain(register.obis_negative.as_ref()) {
                    if !readings.insert(code.clone()) {
                        return Err(fail(
                            field("obis"),
                            format!("{code} is already given by another register"),
                        ));
                    }
                }
            }
        }
        let mut stamps = HashSet::new();
        for (index, register) in self.registers.iter().enumerate() {
            if register.value_type.is_timestamp_part() {
                let field = format!("registers[{index}] ({}).obis", register.name);
                if !readings.contains(&register.obis) {
                    return Err(fail(
                        field,
                        format!("time stamp for {} but no register gives that value", register.obis),
                    ));
                }
                if !stamps.insert((register.obis.clone(), register.value_type == ValueType::Mmdd)) {
                    return Err(fail(
                        field,
                        format!("{} has two {:?} registers", register.obis, register.value_type),
                    ));
                }
            }
        }

        self.check_identification(&fail)?;
        if self
            .legal_metrology
            .as_deref()
            .is_some_and(|text| text.trim().is_empty())
        {
            return Err(fail("legal_metrology".into(), "must not be empty when given".into()));
        }

        let mut by_address: Vec<&Register> = self.registers.iter().collect();
        by_address.sort_by_key(|register| register.address);
        for pair in by_address.windows(2) {
            if pair[0].end() > u32::from(pair[1].address) {
                let index = self
                    .registers
                    .iter()
                    .position(|r| std::ptr::eq(r, pair[1]))
                    .unwrap_or(0);
                return Err(fail(
                    format!("registers[{index}] ({}).address", pair[1].name),
                    format!(
                        "0x{:04X} overlaps {} at 0x{:04X}",
                        pair[1].address, pair[0].name, pair[0].address
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_identification(&self, fail: &impl Fn(String, String) -> ProfileError) -> Result<(), ProfileError> {
        for (index, entry) in self.identification.iter().enumerate() {
            let field = |name: &str| format!("identification[{index}].{name}");
            if !(1..=MODBUS_MAX_REGISTERS).contains(&entry.count)
                || u32::from(entry.address) + u32::from(entry.count) > 0x1_0000
            {
                return Err(fail(
                    field("count"),
                    format!("must be 1-{MODBUS_MAX_REGISTERS} within the map"),
                ));
            }
            let (start, end) = (
                u32::from(entry.address),
                u32::from(entry.address) + u32::from(entry.count),
            );
            match entry.kind {
                IdentificationKind::Text => {
                    let Some(expect) = entry.expect.as_deref().filter(|text| !text.trim().is_empty()) else {
                        return Err(fail(field("expect"), "a text entry needs the text it expects".into()));
                    };
                    let room = match entry.encoding {
                        TextEncoding::LowByte => usize::from(entry.count),
                        TextEncoding::HighLow => 2 * usize::from(entry.count),
                    };
                    if !expect.is_ascii() || expect.len() > room {
                        return Err(fail(
                            field("expect"),
                            format!("must be ASCII of at most {room} characters"),
                        ));
                    }
                    // The simulators serve the text from this entry, so it
                    // cannot share registers with a value.
                    if let Some(register) = self
                        .registers
                        .iter()
                        .find(|r| u32::from(r.address) < end && r.end() > start)
                    {
                        return Err(fail(field("address"), format!("overlaps {}", register.name)));
                    }
                }
                IdentificationKind::Date => {
                    let is_date = self
                        .registers
                        .iter()
                        .any(|r| r.address == entry.address && r.value_type == ValueType::DateYmd);
                    if entry.count != 3 || entry.expect.is_some() || !is_date {
                        return Err(fail(
                            field("kind"),
                            "a date entry names a date_ymd register of the profile: its address, count 3, no expect"
                                .into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the device is read over Modbus (it has a register map).
    pub fn speaks_modbus(&self) -> bool {
        !self.registers.is_empty()
    }

    /// Whether the device is read with IEC 62056-21 readouts.
    pub fn speaks_iec62056(&self) -> bool {
        self.iec62056.is_some()
    }

    /// The word order of one register.
    pub fn word_order(&self, register: &Register) -> WordOrder {
        register.word_order.unwrap_or(self.modbus.word_order)
    }

    /// Groups a register group into as few read requests as the map allows:
    /// runs of adjacent registers (no gap, since a device answers a read that
    /// touches an unmapped address with exception 02), each at most
    /// `max_registers_per_request` long. Optional registers get blocks of their own.
    pub fn blocks(&self, group: RegisterGroup) -> Vec<Block> {
        let limit = u32::from(self.modbus.max_registers_per_request);
        let mut indexes: Vec<usize> = (0..self.registers.len())
            .filter(|&i| self.registers[i].group == group)
            .collect();
        indexes.sort_by_key(|&i| self.registers[i].address);
        let mut blocks: Vec<Block> = Vec::new();
        for index in indexes {
            let register = &self.registers[index];
            match blocks.last_mut() {
                Some(block)
                    if u32::from(block.start) + u32::from(block.count) == u32::from(register.address)
                        && block.optional == register.optional
                        && u32::from(block.count) + u32::from(register.value_type.width()) <= limit =>
                {
                    block.count += register.value_type.width();
                    block.registers.push(index);
                }
                _ => blocks.push(Block {
                    start: register.address,
                    count: register.value_type.width(),
                    registers: vec![index],
                    optional: register.optional,
                }),
            }
        }
        blocks
    }
}
