//! Commands to devices, typed and protocol-neutral: what an operator asks
//! (`set_tariff` to tariff 2), not how a meter takes it (a register write,
//! a programming-mode write). A device's profile says how each kind is done
//! on its wire, or why it cannot be (`device::command_plan`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Set the meter's clock to the server's time, in the site's zone, when sent.
    SetClock,
    /// Change the device's bus address (`address`).
    SetAddress,
    /// Switch the current tariff (`tariff`), for meters whose tariff source is the bus.
    SetTariff,
    /// Reset the partial energy counters.
    ResetPartial,
    /// Reset the counters of the pulse inputs in `channels`.
    ResetCounters,
    /// Set the current transformer's ratio (`primary_a` / `secondary_a`).
    SetCtRatio,
    /// Set a pulse input's unit, pulse weight, ratios and OFF time.
    ConfigureChannel,
    /// Close the billing period now (the meter's own monthly reset, done by hand).
    BillingReset,
    /// Reset the maximum demand.
    DemandReset,
    /// Program the meter's time-of-use tables from a tariff calendar (`calendar_id`).
    PushTou,
    /// Start the partial counters.
    StartPartial,
    /// Stop the partial counters.
    StopPartial,
    /// Change the bus's speed (`baud`).
    SetBaudRate,
    /// Raw register writes (`register`, `values`), for what no kind covers.
    WriteRegisters,
}

impl CommandKind {
    pub const ALL: [CommandKind; 14] = [
        CommandKind::SetClock,
        CommandKind::SetAddress,
        CommandKind::SetTariff,
        CommandKind::ResetPartial,
        CommandKind::ResetCounters,
        CommandKind::SetCtRatio,
        CommandKind::ConfigureChannel,
        CommandKind::BillingReset,
        CommandKind::DemandReset,
        CommandKind::PushTou,
        CommandKind::StartPartial,
        CommandKind::StopPartial,
        CommandKind::SetBaudRate,
        CommandKind::WriteRegisters,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::SetClock => "set_clock",
            CommandKind::SetAddress => "set_address",
            CommandKind::SetTariff => "set_tariff",
            CommandKind::ResetPartial => "reset_partial",
            CommandKind::ResetCounters => "reset_counters",
            CommandKind::SetCtRatio => "set_ct_ratio",
            CommandKind::ConfigureChannel => "configure_channel",
            CommandKind::BillingReset => "billing_reset",
            CommandKind::DemandReset => "demand_reset",
            CommandKind::PushTou => "push_tou",
            CommandKind::StartPartial => "start_partial",
            CommandKind::StopPartial => "stop_partial",
            CommandKind::SetBaudRate => "set_baud_rate",
            CommandKind::WriteRegisters => "write_registers",
        }
    }

    /// Parses a kind as the API spells it.
    pub fn parse(text: &str) -> Option<CommandKind> {
        CommandKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The named parameters the kind takes, each required.
    pub fn parameters(self) -> &'static [Parameter] {
        use Parameter as P;
        match self {
            CommandKind::SetAddress => &[P::Address],
            CommandKind::SetTariff => &[P::Tariff],
            CommandKind::ResetCounters => &[P::Channels],
            CommandKind::SetCtRatio => &[P::PrimaryA, P::SecondaryA],
            CommandKind::ConfigureChannel => &[
                P::Channel,
                P::Unit,
                P::PulseWeight,
                P::CtRatio,
                P::VtRatio,
                P::OffTimeMs,
            ],
            CommandKind::PushTou => &[P::CalendarId],
            CommandKind::SetBaudRate => &[P::Baud],
            CommandKind::WriteRegisters => &[P::Register, P::Values],
            CommandKind::SetClock
            | CommandKind::ResetPartial
            | CommandKind::BillingReset
            | CommandKind::DemandReset
            | CommandKind::StartPartial
            | CommandKind::StopPartial => &[],
        }
    }
}

impl CommandKind {
    /// Whether doing it twice does no more than doing it once, so a write
    /// that got no answer may be sent again: a tariff, a ratio, a pulse
    /// input's settings. A reset, an address change or a clock set (taken
    /// once a day by some meters) is not.
    pub fn idempotent(self) -> bool {
        matches!(
            self,
            CommandKind::SetTariff | CommandKind::SetCtRatio | CommandKind::ConfigureChannel
        )
    }
}

impl std::fmt::Display for CommandKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named parameter of a command, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parameter {
    Address,
    Tariff,
    Channels,
    PrimaryA,
    SecondaryA,
    Channel,
    Unit,
    PulseWeight,
    CtRatio,
    VtRatio,
    OffTimeMs,
    CalendarId,
    Baud,
    Register,
    Values,
}

impl Parameter {
    pub fn as_str(self) -> &'static str {
        match self {
            Parameter::Address => "address",
            Parameter::Tariff => "tariff",
            Parameter::Channels => "channels",
            Parameter::PrimaryA => "primary_a",
            Parameter::SecondaryA => "secondary_a",
            Parameter::Channel => "channel",
            Parameter::Unit => "unit",
            Parameter::PulseWeight => "pulse_weight",
            Parameter::CtRatio => "ct_ratio",
            Parameter::VtRatio => "vt_ratio",
            Parameter::OffTimeMs => "off_time_ms",
            Parameter::CalendarId => "calendar_id",
            Parameter::Baud => "baud",
            Parameter::Register => "register",
            Parameter::Values => "values",
        }
    }
}

/// A command's named parameters, each set only for the kinds that take it
/// ([`CommandKind::parameters`]); stored as the job's `parameters` and
/// shown as asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandParameters {
    /// `set_address`: the new address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<i64>,
    /// `set_tariff`: the tariff, 1-4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff: Option<i64>,
    /// `reset_counters`: the pulse inputs whose counters to reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<i64>>,
    /// `set_ct_ratio`: the CT's primary current, A.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_a: Option<i64>,
    /// `set_ct_ratio`: the CT's secondary current, A.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_a: Option<i64>,
    /// `configure_channel`: the pulse input, 1-12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<i64>,
    /// `configure_channel`: what the input counts: pulses, kWh, kvarh, kVAh, m3, Nm3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `configure_channel`: units per pulse, a power of ten 0.001-1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulse_weight: Option<f64>,
    /// `configure_channel`: CT ratio, 1-9999.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ct_ratio: Option<i64>,
    /// `configure_channel`: VT ratio, 1-3000.0 in steps of 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vt_ratio: Option<f64>,
    /// `configure_channel`: the input's OFF time, 5-300 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_time_ms: Option<i64>,
    /// `push_tou`: the tariff calendar to program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<i64>,
    /// `set_baud_rate`: bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baud: Option<i64>,
    /// `write_registers`: the first register written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<i64>,
    /// `write_registers`: one value (0-65535) per register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<i64>>,
    /// Sent to every device of the bus at once (unit 0), where the profile allows it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broadcast: bool,
}

impl CommandParameters {
    /// Whether `parameter` is given.
    pub fn has(&self, parameter: Parameter) -> bool {
        match parameter {
            Parameter::Address => self.address.is_some(),
            Parameter::Tariff => self.tariff.is_some(),
            Parameter::Channels => self.channels.is_some(),
            Parameter::PrimaryA => self.primary_a.is_some(),
            Parameter::SecondaryA => self.secondary_a.is_some(),
            Parameter::Channel => self.channel.is_some(),
            Parameter::Unit => self.unit.is_some(),
            Parameter::PulseWeight => self.pulse_weight.is_some(),
            Parameter::CtRatio => self.ct_ratio.is_some(),
            Parameter::VtRatio => self.vt_ratio.is_some(),
            Parameter::OffTimeMs => self.off_time_ms.is_some(),
            Parameter::CalendarId => self.calendar_id.is_some(),
            Parameter::Baud => self.baud.is_some(),
            Parameter::Register => self.register.is_some(),
            Parameter::Values => self.values.is_some(),
        }
    }

    /// Every parameter that is given.
    pub fn given(&self) -> Vec<Parameter> {
        use Parameter as P;
        [
            P::Address,
            P::Tariff,
            P::Channels,
            P::PrimaryA,
            P::SecondaryA,
            P::Channel,
            P::Unit,
            P::PulseWeight,
            P::CtRatio,
            P::VtRatio,
            P::OffTimeMs,
            P::CalendarId,
            P::Baud,
            P::Register,
            P::Values,
        ]
        .into_iter()
        .filter(|&parameter| self.has(parameter))
        .collect()
    }
}

/// A command as checked when it was queued: its kind and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub kind: CommandKind,
    #[serde(flatten)]
    pub parameters: CommandParameters,
}

/// A parameter missing, not taken by the kind, or out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParameterError {
    pub field: String,
    pub reason: String,
}

impl ParameterError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> ParameterError {
        ParameterError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl Command {
    /// Checks that the kind's parameters, and only those, are given.
    pub fn new(kind: CommandKind, parameters: CommandParameters) -> Result<Command, ParameterError> {
        let takes = kind.parameters();
        if let Some(extra) = parameters.given().into_iter().find(|given| !takes.contains(given)) {
            return Err(ParameterError::new(
                extra.as_str(),
                format!("{kind} takes no {}", extra.as_str()),
            ));
        }
        if let Some(missing) = takes.iter().find(|&&wanted| !parameters.has(wanted)) {
            return Err(ParameterError::new(
                missing.as_str(),
                format!("{kind} needs {}", missing.as_str()),
            ));
        }
        Ok(Command { kind, parameters })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_spelt_as_the_api_spells_them() {
        for kind in CommandKind::ALL {
            let spelt = serde_json::to_value(kind).unwrap();
            assert_eq!(spelt.as_str(), Some(kind.as_str()));
            assert_eq!(CommandKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(CommandKind::parse("reboot"), None);
    }

    #[test]
    fn a_kind_takes_its_parameters_and_no_other() {
        let tariff = CommandParameters {
            tariff: Some(2),
            ..CommandParameters::default()
        };
        assert!(Command::new(CommandKind::SetTariff, tariff.clone()).is_ok());
        assert_eq!(
            Command::new(CommandKind::SetClock, tariff).unwrap_err().to_string(),
            "tariff: set_clock takes no tariff"
        );
        let half = CommandParameters {
            primary_a: Some(400),
            ..CommandParameters::default()
        };
        assert_eq!(
            Command::new(CommandKind::SetCtRatio, half).unwrap_err().to_string(),
            "secondary_a: set_ct_ratio needs secondary_a"
        );
    }

    #[test]
    fn a_command_is_stored_flat_and_read_back() {
        let command = Command::new(
            CommandKind::ResetCounters,
            CommandParameters {
                channels: Some(vec![1, 5]),
                ..CommandParameters::default()
            },
        )
        .unwrap();
        let stored = serde_json::to_value(&command).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"kind": "reset_counters", "channels": [1, 5]})
        );
        assert_eq!(serde_json::from_value::<Command>(stored).unwrap(), command);
    }
}
