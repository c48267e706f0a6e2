//! Device profiles: what a device type's registers are, as data.
//!
//! One TOML file per device type under `profiles/`. A profile is parsed, then
//! checked as a whole; a malformed one is refused at load with the file, the
//! field and the reason, so an engineer can fix it without reading code.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::command::ClockLayout;
use super::energy_display::EnergyDisplay;
use super::identify::Identification;
use super::iec::IecSettings;
use super::meter_identity::IdentityEntry;
pub use super::register_group::RegisterGroup;
use super::value_type::{ValueType, WordOrder};
use super::write_rules::{ClockRule, Verify};
use crate::domain::command::CommandKind;
use crate::domain::obis::ObisCode;
use crate::domain::unit::Unit;

/// The Modbus protocol allows at most 125 registers in one FC03 answer.
pub const MODBUS_MAX_REGISTERS: u16 = 125;

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

    /// Where a counting register starts again from zero, in engineering
    /// units: 2^16 or 2^32 × scale for unsigned integers. `None` for floats
    /// (they lose resolution rather than wrap), signed integers (they wrap
    /// to a negative value, never a small one) and the date and time types.
    pub fn wrap_point(&self) -> Option<f64> {
        let range = match self.value_type {
            ValueType::U16 => 65_536.0,
            ValueType::U32 => 4_294_967_296.0,
            _ => return None,
        };
        (self.scale > 0.0).then_some(range * self.scale)
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
    /// The Modbus exception code by which the device says a write is
    /// protected (TH40C manual, App. E: 01 "TWO PROTECT"); reported as
    /// `write_protected` rather than as a device error.
    #[serde(default)]
    pub write_protect_exception: Option<u8>,
    /// The meter's own load curve, read through its pointer registers
    /// (`device::load_curve`; docs/PROFILES.md, "COUNTIS load curve").
    #[serde(default)]
    pub load_curve: Option<LoadCurveSettings>,
}

/// How a Modbus meter's own load curve is read (`[modbus.load_curve]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadCurveSettings {
    /// The registers of the CT primary and secondary (A), read with the
    /// curve: its values are the secondary side's. None on a direct meter.
    #[serde(default)]
    pub ct_registers: Option<[u16; 2]>,
    /// How often the curve is read once caught up (1-1440).
    #[serde(default = "default_load_curve_minutes")]
    pub read_minutes: u32,
}

fn default_load_curve_minutes() -> u32 {
    15
}

impl Default for ModbusSettings {
    fn default() -> Self {
        ModbusSettings {
            max_registers_per_request: MODBUS_MAX_REGISTERS,
            word_order: WordOrder::default(),
            turnaround_ms: 0,
            commands: BTreeMap::new(),
            not_available_sentinels: false,
            write_protect_exception: None,
            load_curve: None,
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
    /// The command kind this write carries out; a write with none is
    /// reachable only as `write_registers`. Several writes of one kind are
    /// sent in the order of their names (see `device::command_plan`).
    #[serde(default)]
    pub kind: Option<CommandKind>,
    /// How the kind's parameters become the written values.
    #[serde(default)]
    pub encode: Encode,
    /// The kind's parameter this write carries (`encode = "parameter"` or
    /// `"bitmask"`).
    #[serde(default)]
    pub parameter: Option<String>,
    /// The values written, when they are fixed (`encode = "fixed"`).
    #[serde(default)]
    pub values: Option<Vec<u16>>,
    /// The lowest and highest value the parameter may take, from the manual.
    #[serde(default)]
    pub range: Option<[i64; 2]>,
    /// The only values the parameter may take, from the manual.
    #[serde(default)]
    pub one_of: Option<Vec<i64>>,
    /// For `encode = "channel_config"`: registers between one input's
    /// settings and the next's; `address` is input 1's.
    #[serde(default)]
    pub channel_stride: Option<u16>,
    /// How the write is checked on the device (`device::command_verify`):
    /// `"read_back"` (the default), `{ none = "why" }`, or the registers to
    /// read and what they must show.
    #[serde(default)]
    pub verify: Verify,
    /// Whether sending it twice does no more than once (a tariff, a ratio):
    /// only then is a write that got no answer sent again. By default the
    /// kind's ([`CommandKind::idempotent`]).
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// For a clock write: the largest change the meter takes, seconds; the
    /// head-end refuses a larger one without writing.
    #[serde(default)]
    pub max_change_s: Option<u32>,
    /// For a clock write: the meter takes one set a day; the head-end
    /// refuses a second without writing.
    #[serde(default)]
    pub once_per_day: bool,
}

impl WriteCommand {
    /// The rules the head-end keeps before a clock write, if it has any.
    pub fn clock_rule(&self) -> Option<ClockRule> {
        (self.max_change_s.is_some() || self.once_per_day).then_some(ClockRule {
            max_change_s: self.max_change_s,
            once_per_day: self.once_per_day,
        })
    }

    /// Whether a write that got no answer may be sent again.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
            .unwrap_or_else(|| self.kind.is_some_and(CommandKind::idempotent))
    }
}

/// How a profile write turns a command's parameters into register values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encode {
    /// The parameter's value itself (`set_tariff` 2 writes 2); a command
    /// with no parameter writes its `values`, or the clock.
    #[default]
    Parameter,
    /// The profile's `values`, whatever is asked (a reset's code).
    Fixed,
    /// Bit n-1 set for each n of the parameter's list (`channels` [1, 5]
    /// writes 0x0011).
    Bitmask,
    /// A pulse input's settings: unit code, pulse weight code, CT ratio, VT
    /// ratio x10, OFF time in ms, at `address + channel_stride x (channel - 1)`.
    ChannelConfig,
}

/// Poll intervals used when a device sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultPeriods {
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

impl Default for DefaultPeriods {
    fn default() -> Self {
        DefaultPeriods {
            realtime_seconds: 10,
            energy_seconds: 60,
            history_seconds: DEFAULT_HISTORY_SECONDS,
        }
    }
}

impl DefaultPeriods {
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
    pub schedule: DefaultPeriods,
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
    /// Over Modbus, what tells one meter of the type from another (serial
    /// number, name), checked after every (re)connection against the
    /// identity first seen; see [`super::meter_identity`]. Empty where no
    /// public source gives such registers.
    #[serde(default)]
    pub identity: Vec<IdentityEntry>,
    /// The digits and unit of its energy registers, where its manual gives
    /// them: where they roll over, and whether a device may count in MWh.
    #[serde(default)]
    pub energy_display: Option<EnergyDisplay>,
    /// For a legally certified (e.g. MID) meter: what its values read over
    /// the wire are worth legally, as its manual says. Shown with its values.
    #[serde(default)]
    pub legal_metrology: Option<String>,
    /// For a pulse concentrator: how many inputs to derive engineering values
    /// for, from their raw count and configuration registers (see
    /// [`super::pulse::derive`] for the codes they must carry).
    #[serde(default)]
    pub pulse_inputs: Option<u8>,
    /// The largest current the meter's terminals carry, from its manual,
    /// for a meter that connects directly (no CT, so the device's CT ratio
    /// stays 1): bounds its interval energies for spike detection where the
    /// device sets no `max_current_a` of its own.
    #[serde(default)]
    pub max_current_a: Option<f64>,
    /// Command kinds the device takes only on its front panel, each with
    /// the manual's word for it: refused with that reason, not sent.
    #[serde(default)]
    pub front_panel_only: BTreeMap<CommandKind, String>,
    /// The time-of-use tables the meter keeps, for `push_tou`: a calendar
    /// is compiled to them, or refused naming the limit it exceeds.
    #[serde(default)]
    pub tou_tables: Option<TouTables>,
}

/// A meter's time-of-use table format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouTables {
    /// Blue Star A1000 manual, §1.4: 4 tariffs, 4 day profiles of 10
    /// sections, 10 seasons, 2 weekend days, 10 years x 24 holidays.
    A1000,
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
    /// Where a device's energy registers roll over to zero, in kWh, kvarh
    /// or kVAh: its `[energy_display]` at the device's `energy_unit` and
    /// `energy_decimals` (the profile's defaults where it sets none).
    /// `None` for a meter type whose manual gives no digits.
    pub fn energy_wrap(&self, unit: Option<&str>, decimals: Option<i16>) -> Option<f64> {
        let display = self.energy_display.as_ref()?;
        Some(display.wrap_point(display.setting(unit, decimals)))
    }

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
