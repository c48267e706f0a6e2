//! The confirmation page of a command: the device, the command in words,
//! each register and value it writes and the exact frames, before anything
//! is queued; or, refused, the kind's form again with the field at fault.

use super::command_form::{CommandFormView, command_form};
use crate::domain::command::{CommandKind, CommandParameters};
use crate::service::commands::DryRun;
use crate::service::tariff_calendars::list_calendars;
use crate::store::devices::DeviceRow;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::state::AppState;

#[derive(askama::Template)]
#[template(path = "command_confirm.html")]
pub(crate) struct CommandConfirmPage {
    pub user: String,
    pub id: i64,
    pub device_name: String,
    pub bus_id: i64,
    pub bus_name: String,
    pub address: String,
    pub profile: String,
    pub kind: String,
    /// The parameters as posted, `name=value` separated by spaces.
    pub parameters: String,
    /// The command and its parameters in words.
    pub words: String,
    /// Whether it goes to unit 0: every device of the bus obeys, none answers.
    pub broadcast: bool,
    pub frames: Vec<FrameView>,
    /// The posted fields, carried through to the confirmation.
    pub hidden: Vec<(String, String)>,
    /// Why the command was refused (`field: reason`); empty when it is shown for confirmation.
    pub refusal: String,
    /// The kind's form again, filled as posted, when refused.
    pub form: Option<CommandFormView>,
}

/// One request the command would send.
pub(crate) struct FrameView {
    pub write: String,
    pub unit: String,
    pub function: String,
    pub register: String,
    pub values: String,
    pub hex: String,
}

fn frame_view(frame: &crate::service::commands::Frame) -> FrameView {
    let hex = hex::encode_upper(&frame.bytes);
    let Some(modbus) = &frame.modbus else {
        // An IEC 62056-21 message: its text (the password masked) says it.
        return FrameView {
            write: frame.write.clone(),
            unit: String::new(),
            function: String::new(),
            register: String::new(),
            values: frame.text.clone().unwrap_or_default(),
            hex,
        };
    };
    let values: Vec<String> = modbus.values.iter().map(|v| format!("{v} (0x{v:04X})")).collect();
    FrameView {
        write: frame.write.clone(),
        unit: if modbus.unit == 0 {
            "0 (broadcast)".to_owned()
        } else {
            modbus.unit.to_string()
        },
        function: match modbus.function {
            6 => "6 (write one register)".to_owned(),
            16 => "16 (write registers)".to_owned(),
            other => other.to_string(),
        },
        register: format!("0x{:04X} ({})", modbus.register, modbus.register),
        values: values.join(", "),
        hex,
    }
}

fn list(items: &[i64]) -> String {
    items.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// A command and its parameters in words.
pub(crate) fn in_words(kind: CommandKind, p: &CommandParameters) -> String {
    let n = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
    match kind {
        CommandKind::SetClock => {
            "Set the meter's clock to the server's time, in its site's zone, as it is sent".to_owned()
        }
        CommandKind::SetAddress => format!("Change the device's bus address to {}", n(p.address)),
        CommandKind::SetTariff => format!("Switch the tariff in force to tariff {}", n(p.tariff)),
        CommandKind::ResetPartial => "Reset the partial energy counters to zero".to_owned(),
        CommandKind::ResetCounters => format!(
            "Reset the counters of pulse inputs {} to zero",
            list(p.channels.as_deref().unwrap_or_default())
        ),
        CommandKind::SetCtRatio => format!(
            "Set the current transformer's ratio to {} A / {} A",
            n(p.primary_a),
            n(p.secondary_a)
        ),
        CommandKind::ConfigureChannel => format!(
            "Set pulse input {}: counts {}, {} per pulse, CT ratio {}, VT ratio {}, OFF time {} ms",
            n(p.channel),
            p.unit.as_deref().unwrap_or_default(),
            p.pulse_weight.unwrap_or_default(),
            n(p.ct_ratio),
            p.vt_ratio.unwrap_or_default(),
            n(p.off_time_ms)
        ),
        CommandKind::BillingReset => "Close the billing period now".to_owned(),
        CommandKind::DemandReset => "Reset the maximum demand".to_owned(),
        CommandKind::PushTou => format!(
            "Program the meter's time-of-use tables from tariff calendar {}",
            n(p.calendar_id)
        ),
        CommandKind::StartPartial => "Start the partial counters".to_owned(),
        CommandKind::StopPartial => "Stop the partial counters".to_owned(),
        CommandKind::SetBaudRate => format!("Change the bus speed to {} baud", n(p.baud)),
        CommandKind::WriteRegisters => format!(
            "Write {} from register 0x{:04X}",
            list(p.values.as_deref().unwrap_or_default()),
            p.register.unwrap_or_default()
        ),
    }
}

fn page(user: String, device: &DeviceRow, kind: String, posted: &[(String, String)]) -> CommandConfirmPage {
    CommandConfirmPage {
        user,
        id: device.id.0,
        device_name: device.name.clone(),
        bus_id: device.bus_id.0,
        bus_name: device.bus_name.clone(),
        address: device.address_text(),
        profile: device.profile.clone(),
        kind,
        parameters: posted
            .iter()
            .filter(|(name, _)| !["kind", "confirm"].contains(&name.as_str()))
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(" "),
        words: String::new(),
        broadcast: false,
        frames: Vec::new(),
        hidden: posted.iter().filter(|(name, _)| name != "confirm").cloned().collect(),
        refusal: String::new(),
        form: None,
    }
}

/// The dry run, shown for confirmation.
pub(crate) fn confirm_page(
    user: String,
    device: &DeviceRow,
    dry: DryRun,
    posted: &[(String, String)],
) -> CommandConfirmPage {
    let mut shown = page(user, device, dry.kind.as_str().to_owned(), posted);
    shown.words = in_words(dry.kind, &dry.parameters);
    shown.broadcast = dry
        .frames
        .iter()
        .any(|frame| frame.modbus.as_ref().is_some_and(|modbus| modbus.unit == 0));
    shown.frames = dry.frames.iter().map(frame_view).collect();
    shown
}

/// A refused command: why, and its form again.
pub(crate) async fn refusal_page(
    state: &AppState,
    caller: &Caller,
    device: &DeviceRow,
    posted: &[(String, String)],
    refusal: String,
) -> Result<CommandConfirmPage, ApiError> {
    let asked = posted
        .iter()
        .find(|(name, _)| name == "kind")
        .map(|(_, kind)| kind.clone())
        .unwrap_or_default();
    let mut shown = page(caller.user.clone(), device, asked.clone(), posted);
    let profile = state.profiles.get(&device.profile);
    if let (Some(kind), Some(profile)) = (CommandKind::parse(&asked), profile) {
        let calendars = match kind {
            CommandKind::PushTou => list_calendars(&state.pool, caller).await?,
            _ => Vec::new(),
        };
        let mut form = command_form(&profile, kind, &calendars);
        form.refill(posted, &refusal);
        shown.form = Some(form);
    }
    shown.refusal = refusal;
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_reads_as_words() {
        let tariff = CommandParameters {
            tariff: Some(2),
            ..CommandParameters::default()
        };
        assert_eq!(
            in_words(CommandKind::SetTariff, &tariff),
            "Switch the tariff in force to tariff 2"
        );
        let raw = CommandParameters {
            register: Some(0xE222),
            values: Some(vec![31]),
            ..CommandParameters::default()
        };
        assert_eq!(
            in_words(CommandKind::WriteRegisters, &raw),
            "Write 31 from register 0xE222"
        );
    }
}
