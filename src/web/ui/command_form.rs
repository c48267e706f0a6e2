//! The device page's command forms: one per kind the device's profile can
//! take, an input per parameter bounded as the profile's writes allow
//! (`range`, `one_of`). `command_form_post` reads a posted form back.

use crate::device::command_plan::{PULSE_UNITS, PULSE_WEIGHTS};
use crate::device::profile::Profile;
use crate::domain::command::{CommandKind, Parameter};
use crate::store::tariff_calendars::CalendarRow;

/// A kind's form, as the page renders it.
pub(crate) struct CommandFormView {
    pub kind: String,
    pub description: String,
    /// Whether every write of the kind may go to unit 0 (the checkbox).
    pub broadcast: bool,
    pub broadcast_checked: bool,
    pub fields: Vec<FieldView>,
}

/// One parameter's input.
pub(crate) struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    /// `number`, `select`, `checks` (one checkbox per choice) or `text`.
    pub input: &'static str,
    pub min: String,
    pub max: String,
    pub step: String,
    pub placeholder: &'static str,
    /// A number's or a text's value as last posted.
    pub value: String,
    pub choices: Vec<Choice>,
    /// Why the last post was refused, when this field was at fault.
    pub error: String,
}

pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The concentrator's ranges of a pulse input's settings, as the command
/// plan checks them (`device::command_plan`, `channel_config`).
const CT_RATIO: [i64; 2] = [1, 9999];
const OFF_TIME_MS: [i64; 2] = [5, 300];

/// The command forms of a device: every kind its profile carries out over
/// Modbus, then raw register writes. A device read over IEC 62056-21 (no
/// Modbus address) takes none yet.
pub(crate) fn command_forms(
    profile: Option<&Profile>,
    modbus: bool,
    calendars: &[CalendarRow],
) -> Vec<CommandFormView> {
    let Some(profile) = profile else {
        return Vec::new();
    };
    if !modbus {
        // IEC 62056-21: the kinds of the profile's programming-mode
        // commands; none takes parameters.
        let kinds = profile.iec62056.iter().flat_map(|iec| iec.commands.keys());
        return kinds
            .filter_map(|name| CommandKind::parse(name))
            .map(|kind| command_form(profile, kind, calendars))
            .collect();
    }
    let mut kinds: Vec<CommandKind> = profile.modbus.commands.values().filter_map(|c| c.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds.retain(|&kind| kind != CommandKind::WriteRegisters);
    kinds.push(CommandKind::WriteRegisters);
    kinds
        .into_iter()
        .map(|kind| command_form(profile, kind, calendars))
        .collect()
}

/// Whether a device's forms need the tariff calendars (for `push_tou`).
pub(crate) fn needs_calendars(profile: Option<&Profile>) -> bool {
    profile.is_some_and(|p| p.modbus.commands.values().any(|c| c.kind == Some(CommandKind::PushTou)))
}

/// The form of one kind on a device of `profile`.
pub(crate) fn command_form(profile: &Profile, kind: CommandKind, calendars: &[CalendarRow]) -> CommandFormView {
    let writes: Vec<_> = profile
        .modbus
        .commands
        .values()
        .filter(|c| c.kind == Some(kind))
        .collect();
    let iec = profile
        .iec62056
        .as_ref()
        .and_then(|iec| iec.commands.get(kind.as_str()));
    let description = match writes.first() {
        None if iec.is_some() => iec.map(|command| command.description.clone()).unwrap_or_default(),
        Some(write) if writes.len() == 1 => write.description.clone(),
        _ if kind == CommandKind::WriteRegisters => "Raw register writes (FC6 for one value, FC16 for more)".to_owned(),
        _ => writes
            .iter()
            .map(|w| w.description.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    };
    let fields = kind
        .parameters()
        .iter()
        .map(|&parameter| {
            let write = writes
                .iter()
                .find(|w| w.parameter.as_deref() == Some(parameter.as_str()));
            field(
                profile,
                parameter,
                write.and_then(|w| w.range),
                write.and_then(|w| w.one_of.clone()),
                calendars,
            )
        })
        .collect();
    CommandFormView {
        kind: kind.as_str().to_owned(),
        description,
        broadcast: !writes.is_empty() && writes.iter().all(|w| w.broadcast),
        broadcast_checked: false,
        fields,
    }
}

fn label(parameter: Parameter) -> &'static str {
    match parameter {
        Parameter::Address => "New address",
        Parameter::Tariff => "Tariff",
        Parameter::Channels => "Inputs",
        Parameter::PrimaryA => "CT primary (A)",
        Parameter::SecondaryA => "CT secondary (A)",
        Parameter::Channel => "Input",
        Parameter::Unit => "Unit",
        Parameter::PulseWeight => "Pulse weight (units per pulse)",
        Parameter::CtRatio => "CT ratio",
        Parameter::VtRatio => "VT ratio",
        Parameter::OffTimeMs => "OFF time (ms)",
        Parameter::CalendarId => "Tariff calendar",
        Parameter::Baud => "Speed (baud)",
        Parameter::Register => "First register",
        Parameter::Values => "Values",
    }
}

fn choices(items: impl IntoIterator<Item = (String, String)>) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: false,
        })
        .collect()
}

fn numbered(low: i64, high: i64) -> Vec<Choice> {
    choices((low..=high).map(|n| (n.to_string(), n.to_string())))
}

fn field(
    profile: &Profile,
    parameter: Parameter,
    range: Option<[i64; 2]>,
    one_of: Option<Vec<i64>>,
    calendars: &[CalendarRow],
) -> FieldView {
    let mut view = FieldView {
        name: parameter.as_str(),
        label: label(parameter),
        input: "number",
        min: String::new(),
        max: String::new(),
        step: "1".to_owned(),
        placeholder: "",
        value: String::new(),
        choices: Vec::new(),
        error: String::new(),
    };
    let inputs = i64::from(profile.pulse_inputs.unwrap_or(0));
    let bounds = |view: &mut FieldView, [low, high]: [i64; 2]| {
        view.min = low.to_string();
        view.max = high.to_string();
    };
    match parameter {
        _ if one_of.is_some() => {
            view.input = "select";
            view.choices = choices(
                one_of
                    .unwrap_or_default()
                    .iter()
                    .map(|v| (v.to_string(), v.to_string())),
            );
        }
        Parameter::Channels => match range {
            Some([low, high]) => (view.input, view.choices) = ("checks", numbered(low, high)),
            None if inputs > 0 => (view.input, view.choices) = ("checks", numbered(1, inputs)),
            None => (view.input, view.placeholder) = ("text", "1,5"),
        },
        Parameter::Channel if inputs > 0 => bounds(&mut view, [1, inputs]),
        Parameter::Address => bounds(&mut view, [1, i64::from(profile.max_address)]),
        Parameter::Unit => {
            view.input = "select";
            view.choices = choices(PULSE_UNITS.iter().map(|u| (u.to_string(), u.to_string())));
        }
        Parameter::PulseWeight => {
            view.input = "select";
            view.choices = choices(PULSE_WEIGHTS.iter().map(|w| (w.to_string(), w.to_string())));
        }
        Parameter::CtRatio => bounds(&mut view, CT_RATIO),
        Parameter::VtRatio => {
            (view.min, view.max, view.step) = ("1".to_owned(), "3000".to_owned(), "0.1".to_owned());
        }
        Parameter::OffTimeMs => bounds(&mut view, OFF_TIME_MS),
        Parameter::CalendarId => {
            view.input = "select";
            view.choices = choices(calendars.iter().map(|c| (c.id.0.to_string(), c.name.clone())));
        }
        Parameter::Register => (view.input, view.placeholder) = ("text", "0x9E21"),
        Parameter::Values => (view.input, view.placeholder) = ("text", "2 or 1,0x20"),
        _ => {
            if let Some(range) = range {
                bounds(&mut view, range);
            }
        }
    }
    view
}

impl CommandFormView {
    /// The form as posted, with the refusal marked on the field at fault
    /// (`field: reason`; `channels[0]` is `channels`'s).
    pub(crate) fn refill(&mut self, posted: &[(String, String)], refusal: &str) {
        self.broadcast_checked = posted.iter().any(|(name, _)| name == "broadcast");
        let at_fault = refusal.split(':').next().unwrap_or_default();
        let at_fault = at_fault.split('[').next().unwrap_or_default();
        for field in &mut self.fields {
            let given: Vec<&str> = posted
                .iter()
                .filter(|(name, _)| name == field.name)
                .map(|(_, value)| value.as_str())
                .collect();
            field.value = given.join(",");
            for choice in &mut field.choices {
                choice.selected = given.contains(&choice.value.as_str());
            }
            if field.name == at_fault {
                field.error = refusal.to_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_refusal_marks_its_field_and_keeps_what_was_typed() {
        let profile = crate::device::registry::ProfileSet::builtin()
            .get("pulse-concentrator")
            .unwrap();
        let mut form = command_form(&profile, CommandKind::ResetCounters, &[]);
        let channels = &form.fields[0];
        assert_eq!(
            (channels.input, channels.choices.len()),
            ("checks", 12),
            "range = [1, 12]"
        );
        form.refill(
            &pairs(&[("channels", "3"), ("channels", "12")]),
            "channels[1]: must be 1-16",
        );
        let checked: Vec<&str> = form.fields[0]
            .choices
            .iter()
            .filter(|c| c.selected)
            .map(|c| c.value.as_str())
            .collect();
        assert_eq!(checked, ["3", "12"]);
        assert_eq!(form.fields[0].error, "channels[1]: must be 1-16");
    }
}
