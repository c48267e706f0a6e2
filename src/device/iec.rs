//! The IEC 62056-21 part of a device profile: which data sets of a readout
//! the head-end keeps, under which OBIS code and unit, and how the meter's
//! status words read as named conditions.
//!
//! A readout names its values itself (`1-1:1.8.0(012345.67*kWh)`), so a
//! profile does not map addresses as a Modbus map does: it lists the codes it
//! expects with their units, how many billing sets each keeps, and which
//! values carry a time stamp. Data sets the profile does not list are kept
//! under their own code and unit when they carry a number with a unit
//! (see [`super::iec_decode`]), so a firmware with more registers loses
//! nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::iec_commands::{IecCommand, check_commands};
use super::iec_logbook::LogbookSettings;
use super::iec_profile_error::IecProfileError;
use super::register_group::RegisterGroup;
use crate::domain::event::EventCode;
use crate::domain::obis::ObisCode;
use crate::domain::severity::Severity;
use crate::domain::transport::IEC_BAUD_RATES;
use crate::domain::unit::Unit;

/// `[iec62056]` of a profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IecSettings {
    /// Highest baud rate the head-end asks for in mode C (the meter may offer less).
    #[serde(default = "default_max_baud")]
    pub max_baud: u32,
    /// Programming-mode password the meter leaves the factory with; a device
    /// record may carry its own.
    #[serde(default)]
    pub password: Option<String>,
    /// Groups A-B given to reduced addresses (`1.8.0` → `1-1:1.8.0`) of
    /// electrical quantities; general-purpose codes match whatever A-B
    /// (see [`super::iec_address`]).
    #[serde(default = "default_reduced_prefix")]
    pub reduced_prefix: String,
    /// The values a readout carries.
    pub values: Vec<IecValue>,
    /// Status words whose bits name conditions (error and warning registers).
    #[serde(default)]
    pub status: Vec<StatusWord>,
    /// Events the meter logs as the start and stop of their latest
    /// occurrence, each pair a code in the event log.
    #[serde(default)]
    pub events: Vec<EventRegister>,
    /// The meter's load profile, read in programming mode with `R5 P.01(…)`.
    #[serde(default)]
    pub load_profile: Option<LoadProfileSettings>,
    /// The meter's event logbook, read in programming mode with `R5 P.98(…)`
    /// after the load profile (see [`super::iec_logbook`]).
    #[serde(default)]
    pub logbook: Option<LogbookSettings>,
    /// A programming log the meter serves in the logbook's layout under
    /// another profile number, read the same way; none is shipped (no
    /// public source gives a request for one).
    #[serde(default)]
    pub programming_log: Option<LogbookSettings>,
    /// Commands by kind (`set_clock`, `billing_reset`, …): the writes each
    /// makes in programming mode (see [`super::iec_commands`]).
    #[serde(default)]
    pub commands: BTreeMap<String, IecCommand>,
    /// What a technician does at the meter to start field programming,
    /// told to the operator while a command waits for it.
    #[serde(default)]
    pub field_programming_hint: Option<String>,
}

fn default_max_baud() -> u32 {
    9600
}

fn default_reduced_prefix() -> String {
    "1-1".to_owned()
}

/// What a value's data set carries besides the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueShape {
    /// `(value*unit)`.
    #[default]
    Number,
    /// `(value*unit)(YYMMDDhhmm)`: a maximum demand and when it occurred.
    NumberWithTime,
    /// `(YYMMDDhhmm)` or `(MMDDhhmm)`: the value is an instant (an event's
    /// start or end). Stored as Unix seconds with unit `timestamp`.
    Time,
}

/// One value of the readout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IecValue {
    /// The code as stored, in full form: without billing suffix when the
    /// value has a `history`; with one when the suffix is part of the
    /// code's meaning (the items of an event block, `0-0:C.50.41*21`).
    pub obis: ObisCode,
    pub unit: Unit,
    pub group: RegisterGroup,
    pub name: String,
    #[serde(default)]
    pub shape: ValueShape,
    /// Billing suffixes the meter sends this value with, e.g. `[101, 116]`
    /// for the A1000's `*101`…`*116` or `[1, 15]` for the TH40C's `*1`…`*15`.
    #[serde(default)]
    pub history: Option<[u8; 2]>,
    /// Whether the current value (no suffix) is sent too; false for codes
    /// that exist only per period.
    #[serde(default = "yes")]
    pub current: bool,
}

fn yes() -> bool {
    true
}

/// A status word: one bit per condition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusWord {
    pub obis: ObisCode,
    pub name: String,
    /// How the word is written: `hex` (`(0000000C)`) or `binary` (`(00001100)`).
    pub format: StatusFormat,
    /// Bit number (0 = least significant) → stable snake_case condition code.
    #[serde(default, deserialize_with = "bit_codes")]
    pub bits: BTreeMap<u8, EventCode>,
    /// `error` or `warning`: what its conditions are.
    pub severity: WordLevel,
    /// Kept as its value only, its set bits no conditions: for a word whose
    /// bits no source names (TH40C App. A `F.F.2`, "warning register 2",
    /// absent from App. B), so a bit is not taken for an event it may not be.
    #[serde(default)]
    pub raw_only: bool,
}

/// What the conditions of a status word are: the meter's error register
/// (events of severity critical) or its warning register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WordLevel {
    Error,
    Warning,
}

impl WordLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            WordLevel::Error => "error",
            WordLevel::Warning => "warning",
        }
    }

    /// The severity of the events its conditions open.
    pub fn severity(self) -> Severity {
        match self {
            WordLevel::Error => Severity::Critical,
            WordLevel::Warning => Severity::Warning,
        }
    }
}

impl std::fmt::Display for WordLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a word's bit names, refusing a name that is no event code with
/// the bit it names.
fn bit_codes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<u8, EventCode>, D::Error> {
    BTreeMap::<u8, String>::deserialize(deserializer)?
        .into_iter()
        .map(|(bit, text)| match text.parse() {
            Ok(code) => Ok((bit, code)),
            Err(_) => Err(serde::de::Error::custom(format!(
                "bits.{bit}: must be a snake_case condition code, not {text:?}"
            ))),
        })
        .collect()
}

/// An event the meter logs: the time values holding the start and the stop
/// of its latest occurrence.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRegister {
    /// Stable snake_case event code (`voltage_loss_l1`, `power_down`).
    pub code: EventCode,
    /// `critical`, `warning` or `info`: the severity of its events.
    pub severity: Severity,
    /// Code of the start time, as stored (a listed value of shape `time`).
    pub start: ObisCode,
    /// Code of the stop time, as stored.
    pub stop: ObisCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusFormat {
    Hex,
    Binary,
}

impl StatusFormat {
    /// The form, as a message names it.
    pub fn describe(self) -> &'static str {
        match self {
            StatusFormat::Hex => "hexadecimal digits",
            StatusFormat::Binary => "binary digits",
        }
    }
}

/// `[iec62056.load_profile]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadProfileSettings {
    /// Profile number: 1 reads `P.01`.
    #[serde(default = "one")]
    pub profile: u8,
    /// Answer format; `emh` is the only one known today (`docs/PROTOCOLS.md`,
    /// "Load profile, EMH style").
    pub format: LoadProfileFormat,
    pub interval_minutes: u32,
    /// How far back a first read reaches, in days.
    #[serde(default = "default_backfill_days")]
    pub backfill_days: u32,
    /// Days asked for in one request while catching up: a long backfill in
    /// one answer would hold a shared line for minutes (40 days of six
    /// channels are ~120 kB, two minutes at 9600 baud).
    #[serde(default = "default_chunk_days")]
    pub chunk_days: u32,
    /// The channels the meter records when set as it leaves the factory,
    /// with the units they are stored in. An answer's header says what it
    /// sends: a channel listed here keeps its unit; another is stored in
    /// the header's (`device::iec_load_profile`).
    pub channels: Vec<LoadProfileChannel>,
}

fn one() -> u8 {
    1
}

fn default_backfill_days() -> u32 {
    40
}

fn default_chunk_days() -> u32 {
    2
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadProfileFormat {
    Emh,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadProfileChannel {
    pub obis: ObisCode,
    pub unit: Unit,
}

impl IecSettings {
    /// Checks what serde cannot.
    pub fn check(&self) -> Result<(), IecProfileError> {
        let fail = |field: String, reason: &str| {
            Err(IecProfileError {
                field,
                reason: reason.to_owned(),
            })
        };
        if !IEC_BAUD_RATES.contains(&self.max_baud) {
            return fail(
                "iec62056.max_baud".into(),
                "must be one of 300, 600, 1200, 2400, 4800, 9600, 19200",
            );
        }
        if format!("{}:0.0.0", self.reduced_prefix).parse::<ObisCode>().is_err() {
            return fail("iec62056.reduced_prefix".into(), "must be groups A-B, e.g. 1-1");
        }
        if self.values.is_empty() {
            return fail("iec62056.values".into(), "an IEC profile needs at least one value");
        }
        let mut seen = std::collections::HashSet::new();
        for (index, value) in self.values.iter().enumerate() {
            let field = |name: &str| format!("iec62056.values[{index}] ({}).{name}", value.name);
            if value.obis.billing().is_some() && value.history.is_some() {
                return fail(
                    field("obis"),
                    "give the code without its billing suffix when it has a history",
                );
            }
            if let Some([first, last]) = value.history {
                if first == 0 || last < first {
                    return fail(field("history"), "must be [first, last] with 1 <= first <= last");
                }
            } else if !value.current {
                return fail(field("current"), "a value with no history must be sent as current");
            }
            if value.shape == ValueShape::Time && value.unit != Unit::Timestamp {
                return fail(field("unit"), "a time value has unit \"timestamp\"");
            }
            if !seen.insert(value.obis.clone()) {
                return fail(field("obis"), "listed twice");
            }
        }
        for (index, word) in self.status.iter().enumerate() {
            let field = |name: &str| format!("iec62056.status[{index}] ({}).{name}", word.name);
            if let Some((bit, _)) = word.bits.iter().find(|(bit, _)| **bit >= 32) {
                return fail(field(&format!("bits.{bit}")), "bits are numbered 0-31");
            }
            if word.raw_only && !word.bits.is_empty() {
                return fail(field("bits"), "a word kept as its value only names no bits");
            }
            if let Some((bit, _)) = word.bits.iter().find(|(_, code)| code.head_end_kind().is_some()) {
                return fail(
                    field(&format!("bits.{bit}")),
                    "names an event the head-end raises itself",
                );
            }
        }
        let mut codes = std::collections::HashSet::new();
        for (index, event) in self.events.iter().enumerate() {
            let field = |name: &str| format!("iec62056.events[{index}] ({}).{name}", event.code);
            if event.code.head_end_kind().is_some() {
                return fail(field("code"), "names an event the head-end raises itself");
            }
            if !codes.insert(&event.code) {
                return fail(field("code"), "listed twice");
            }
            for (name, code) in [("start", &event.start), ("stop", &event.stop)] {
                if !self
                    .value_for(code)
                    .is_some_and(|value| value.shape == ValueShape::Time)
                {
                    return fail(field(name), "must be a listed value of shape \"time\", as stored");
                }
            }
        }
        if let Some(profile) = &self.load_profile {
            if !(1..=120).contains(&profile.interval_minutes) {
                return fail("iec62056.load_profile.interval_minutes".into(), "must be 1-120");
            }
            if profile.channels.is_empty() {
                return fail("iec62056.load_profile.channels".into(), "needs at least one channel");
            }
            if profile.chunk_days == 0 {
                return fail("iec62056.load_profile.chunk_days".into(), "must be at least 1");
            }
            if !(1..=99).contains(&profile.profile) {
                return fail("iec62056.load_profile.profile".into(), "must be 1-99");
            }
        }
        for (section, logbook) in self.logbooks() {
            if let Err((key, reason)) = logbook.check(section) {
                return fail(key, reason);
            }
        }
        if let (Some(logbook), Some(log)) = (&self.logbook, &self.programming_log) {
            if logbook.profile == log.profile {
                return fail(
                    "iec62056.programming_log.profile".into(),
                    "is the logbook's profile number",
                );
            }
        }
        check_commands(&self.commands)
    }

    /// The logbooks read, each with its section's name: the event logbook
    /// and the programming log, when listed.
    pub fn logbooks(&self) -> impl Iterator<Item = (&'static str, &LogbookSettings)> {
        [("logbook", &self.logbook), ("programming_log", &self.programming_log)]
            .into_iter()
            .filter_map(|(section, settings)| settings.as_ref().map(|settings| (section, settings)))
    }

    /// The entry for a code as the meter sent it, if the profile lists it
    /// with that billing suffix.
    pub fn value_for(&self, code: &ObisCode) -> Option<&IecValue> {
        // A code listed with its suffix (an item of an event block, e.g.
        // `0-0:C.50.41*21`) names that value alone.
        if let Some(exact) = self
            .values
            .iter()
            .find(|value| &value.obis == code && code.billing().is_some())
        {
            return Some(exact);
        }
        let current = code.current();
        let value = self.values.iter().find(|value| value.obis == current)?;
        match (code.billing(), value.history) {
            (None, _) if value.current => Some(value),
            (Some(f), Some([first, last])) if (first..=last).contains(&f) => Some(value),
            _ => None,
        }
    }
}

impl StatusWord {
    /// Reads the word as the meter writes it.
    pub fn parse(&self, text: &str) -> Option<u32> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        match self.format {
            StatusFormat::Hex => u32::from_str_radix(&digits, 16).ok(),
            StatusFormat::Binary => u32::from_str_radix(&digits, 2).ok(),
        }
    }

    /// The conditions a word's set bits name, in bit order. Set bits the
    /// profile does not name come back as `bit_N` so nothing is hidden.
    pub fn conditions(&self, word: u32) -> Vec<EventCode> {
        (0..32u8)
            .filter(|bit| word & (1 << bit) != 0)
            .map(|bit| {
                self.bits
                    .get(&bit)
                    .cloned()
                    .unwrap_or_else(|| EventCode::unnamed_bit(bit))
            })
            .collect()
    }
}
