//! How a typed command is done on a Modbus device: the profile's writes of
//! its kind (`kind = "set_tariff"` in `[modbus.commands.NAME]`), their
//! values from the command's parameters, each checked against the range the
//! manual gives (`range`, `one_of` in the profile). A kind the profile has no
//! write for, or marks front-panel only, is refused with a reason that says
//! so; nothing is sent.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::command::ClockLayout;
use super::profile::{Encode, Profile, WriteCommand};
use super::write_rules::{ClockRule, Verify};
use crate::domain::command::{Command, CommandKind, CommandParameters, ParameterError};
use crate::domain::transport::Transport;
use crate::protocol::modbus::frame::{mbap_frame, rtu_frame};
use crate::protocol::modbus::rtu_client::{write_multiple_request, write_single_request};

/// Registers one FC16 request may write (Modbus application protocol, 6.12).
const MAX_WRITE_REGISTERS: usize = 123;

/// One register write of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrite {
    /// The profile's name for the write (`set_ct_primary`), or `write_registers`.
    pub name: String,
    /// 6 (one register) or 16 (several).
    pub function: u8,
    pub address: u16,
    pub values: PlannedValues,
    /// Sent to unit 0: every device of the bus obeys, none answers.
    pub broadcast: bool,
    /// How the write is checked on the device (`device::command_verify`).
    pub verify: Verify,
    /// Whether a write that got no answer may be sent again.
    pub idempotent: bool,
    /// The rules the head-end keeps before a clock write.
    pub clock_rule: Option<ClockRule>,
}

/// The values of a write: known when queued, or the time when sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedValues {
    Words(Vec<u16>),
    Clock(ClockLayout),
}

impl PlannedWrite {
    /// The values to send at `now`, the clock's in the device's zone.
    pub fn words(&self, now: DateTime<Utc>, zone: Tz) -> Option<Vec<u16>> {
        match &self.values {
            PlannedValues::Words(words) => Some(words.clone()),
            PlannedValues::Clock(layout) => layout.words(now.with_timezone(&zone).naive_local()),
        }
    }

    /// The request's PDU with `words`.
    pub fn pdu(&self, words: &[u16]) -> Vec<u8> {
        match (self.function, words) {
            (6, [value]) => write_single_request(self.address, *value),
            _ => write_multiple_request(self.address, words),
        }
    }

    /// The bytes the write puts on `transport`'s wire for unit `unit` (0 for a
    /// broadcast): an RTU frame with its CRC, or a Modbus TCP ADU whose
    /// transaction id (here 0) is the link's next one when really sent.
    pub fn frame(&self, transport: &Transport, unit: u8, words: &[u16]) -> Vec<u8> {
        let unit = if self.broadcast { 0 } else { unit };
        let pdu = self.pdu(words);
        match transport {
            Transport::ModbusTcp { .. } => mbap_frame(0, unit, &pdu),
            _ => rtu_frame(unit, &pdu),
        }
    }
}

/// Why a command cannot be done on the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlanError {
    /// A parameter the device does not accept.
    #[error(transparent)]
    Parameter(#[from] ParameterError),
    /// The device does not take the kind over the wire.
    #[error("{0}")]
    NotOverWire(String),
}

fn invalid(field: &str, reason: impl Into<String>) -> PlanError {
    PlanError::Parameter(ParameterError::new(field, reason))
}

/// The writes that carry out `command` on a device of `profile`.
pub(crate) fn plan_modbus(profile: &Profile, command: &Command) -> Result<Vec<PlannedWrite>, PlanError> {
    let parameters = &command.parameters;
    if command.kind == CommandKind::WriteRegisters {
        return raw_write(profile, parameters).map(|write| vec![write]);
    }
    if let Some(reason) = profile.front_panel_only.get(&command.kind) {
        return Err(PlanError::NotOverWire(format!(
            "{} takes {} on its front panel only, not over the bus: {reason}",
            profile.name, command.kind
        )));
    }
    let writes: Vec<(&String, &WriteCommand)> = profile
        .modbus
        .commands
        .iter()
        .filter(|(_, write)| write.kind == Some(command.kind))
        .collect();
    if writes.is_empty() {
        return Err(PlanError::NotOverWire(format!(
            "{} has no {} over Modbus in its profile",
            profile.name, command.kind
        )));
    }
    if parameters.broadcast
        && let Some((name, _)) = writes.iter().find(|(_, write)| !write.broadcast)
    {
        return Err(invalid(
            "broadcast",
            format!("{} of {} may not be broadcast ({name})", command.kind, profile.name),
        ));
    }
    writes
        .into_iter()
        .map(|(name, write)| {
            let (address, values) = values(profile, name, write, parameters)?;
            Ok(PlannedWrite {
                name: name.clone(),
                function: write.function,
                address,
                values,
                broadcast: parameters.broadcast,
                verify: write.verify.clone(),
                idempotent: write.is_idempotent(),
                clock_rule: write.clock_rule(),
            })
        })
        .collect()
}

/// A raw write, verified as the profile's write to the same register is
/// (a write-only command register is not read back); any other register is
/// read back, and sent once.
fn raw_write(profile: &Profile, parameters: &CommandParameters) -> Result<PlannedWrite, PlanError> {
    if parameters.broadcast {
        return Err(invalid("broadcast", "write_registers goes to one device"));
    }
    let register = parameters.register.unwrap_or_default();
    let address = u16::try_from(register).map_err(|_| invalid("register", "must be 0-65535"))?;
    let values = parameters.values.as_deref().unwrap_or_default();
    if values.is_empty() || values.len() > MAX_WRITE_REGISTERS {
        return Err(invalid("values", format!("must hold 1-{MAX_WRITE_REGISTERS} values")));
    }
    if u32::from(address) + values.len() as u32 > 0x1_0000 {
        return Err(invalid("values", "run past register 65535"));
    }
    let words = values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            u16::try_from(value).map_err(|_| invalid(&format!("values[{index}]"), "must be 0-65535"))
        })
        .collect::<Result<Vec<u16>, PlanError>>()?;
    let known = profile
        .modbus
        .commands
        .values()
        .find(|command| command.address == address && usize::from(command.count) == words.len());
    Ok(PlannedWrite {
        name: CommandKind::WriteRegisters.as_str().to_owned(),
        function: if words.len() == 1 { 6 } else { 16 },
        address,
        values: PlannedValues::Words(words),
        broadcast: false,
        verify: known.map(|command| command.verify.clone()).unwrap_or_default(),
        idempotent: known.is_some_and(WriteCommand::is_idempotent),
        clock_rule: None,
    })
}

/// The integer parameter `name` of a command.
fn integer(parameters: &CommandParameters, name: &str) -> Option<i64> {
    match name {
        "address" => parameters.address,
        "tariff" => parameters.tariff,
        "primary_a" => parameters.primary_a,
        "secondary_a" => parameters.secondary_a,
        "channel" => parameters.channel,
        "ct_ratio" => parameters.ct_ratio,
        "off_time_ms" => parameters.off_time_ms,
        "baud" => parameters.baud,
        _ => None,
    }
}

/// Checks `value` of parameter `field` against the write's range.
fn in_range(profile: &Profile, write: &WriteCommand, field: &str, value: i64) -> Result<u16, PlanError> {
    if let Some([low, high]) = write.range
        && !(low..=high).contains(&value)
    {
        return Err(invalid(
            field,
            format!("{} takes {low}-{high}, not {value}", profile.name),
        ));
    }
    if let Some(allowed) = &write.one_of
        && !allowed.contains(&value)
    {
        let allowed: Vec<String> = allowed.iter().map(i64::to_string).collect();
        return Err(invalid(
            field,
            format!("{} takes {}, not {value}", profile.name, allowed.join(" or ")),
        ));
    }
    u16::try_from(value).map_err(|_| invalid(field, format!("{value} does not fit a register")))
}

fn values(
    profile: &Profile,
    name: &str,
    write: &WriteCommand,
    parameters: &CommandParameters,
) -> Result<(u16, PlannedValues), PlanError> {
    let field = write.parameter.as_deref().unwrap_or_default();
    let words = match write.encode {
        Encode::Fixed => write.values.clone().unwrap_or_default(),
        Encode::Parameter => match write.parameter.as_deref() {
            Some(field) => {
                let value = integer(parameters, field).ok_or_else(|| invalid(field, "is needed"))?;
                vec![in_range(profile, write, field, value)?]
            }
            None => match write.clock {
                Some(layout) => return Ok((write.address, PlannedValues::Clock(layout))),
                None => write.values.clone().unwrap_or_default(),
            },
        },
        Encode::Bitmask => {
            let list = parameters.channels.as_deref().unwrap_or_default();
            if list.is_empty() {
                return Err(invalid(field, "name at least one"));
            }
            let mut mask = 0u16;
            for (index, &item) in list.iter().enumerate() {
                let bit = in_range(profile, write, &format!("{field}[{index}]"), item)?;
                if !(1..=16).contains(&bit) {
                    return Err(invalid(&format!("{field}[{index}]"), "must be 1-16"));
                }
                mask |= 1 << (bit - 1);
            }
            vec![mask]
        }
        Encode::ChannelConfig => return channel_config(profile, name, write, parameters),
    };
    Ok((write.address, PlannedValues::Words(words)))
}

/// Unit codes of a pulse input, in the concentrator profile's order.
pub(crate) const PULSE_UNITS: [&str; 6] = ["pulses", "kWh", "kvarh", "kVAh", "m3", "Nm3"];
/// Pulse weights by code: 0.001 to 1000 units per pulse.
pub(crate) const PULSE_WEIGHTS: [f64; 7] = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0];

/// A pulse input's settings, with the ranges of the concentrator's manual
/// (restated in `profiles/pulse-concentrator.toml`): CT ratio 1-9999, VT
/// ratio 1-3000.0 written x10, OFF time 5-300 ms.
fn channel_config(
    profile: &Profile,
    name: &str,
    write: &WriteCommand,
    parameters: &CommandParameters,
) -> Result<(u16, PlannedValues), PlanError> {
    let channel = parameters.channel.unwrap_or_default();
    let inputs = i64::from(profile.pulse_inputs.unwrap_or(1));
    if !(1..=inputs).contains(&channel) {
        return Err(invalid("channel", format!("{} has inputs 1-{inputs}", profile.name)));
    }
    let unit = parameters.unit.as_deref().unwrap_or_default();
    let unit_code = PULSE_UNITS
        .iter()
        .position(|known| known.eq_ignore_ascii_case(unit))
        .ok_or_else(|| invalid("unit", format!("must be one of {}", PULSE_UNITS.join(", "))))?;
    let weight = parameters.pulse_weight.unwrap_or_default();
    let weight_code = PULSE_WEIGHTS
        .iter()
        .position(|known| ((known - weight) / known).abs() < 1e-9)
        .ok_or_else(|| invalid("pulse_weight", "must be 0.001, 0.01, 0.1, 1, 10, 100 or 1000"))?;
    let ct = parameters.ct_ratio.unwrap_or_default();
    if !(1..=9999).contains(&ct) {
        return Err(invalid("ct_ratio", "must be 1-9999"));
    }
    let vt = parameters.vt_ratio.unwrap_or_default();
    let vt_tenths = (vt * 10.0).round();
    if !(10.0..=30_000.0).contains(&vt_tenths) || (vt * 10.0 - vt_tenths).abs() > 1e-6 {
        return Err(invalid("vt_ratio", "must be 1-3000.0 in steps of 0.1"));
    }
    let off = parameters.off_time_ms.unwrap_or_default();
    if !(5..=300).contains(&off) {
        return Err(invalid("off_time_ms", "must be 5-300"));
    }
    let stride = write.channel_stride.unwrap_or(0);
    let offset = u32::from(stride) * (channel as u32 - 1);
    let address = u16::try_from(u32::from(write.address) + offset)
        .map_err(|_| PlanError::NotOverWire(format!("{name} of {} runs past register 65535", profile.name)))?;
    let words = vec![
        unit_code as u16,
        weight_code as u16,
        ct as u16,
        vt_tenths as u16,
        off as u16,
    ];
    Ok((address, PlannedValues::Words(words)))
}

#[cfg(test)]
#[path = "command_plan_tests.rs"]
mod tests;
