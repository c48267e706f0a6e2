//! The `pulse_channel_misconfigured` event: a pulse device whose settings,
//! as read, are outside the ranges its manual gives, so the inputs
//! concerned count nothing meaningful (and have no engineering value).

use chrono::{DateTime, Utc};

use super::context::DeviceConfig;
use super::outbox::{Outbox, Record};
use crate::device::pulse_check::{Misconfigured, describe, misconfigured};
use crate::device::reading::Reading;
use crate::domain::event::EventKind;

/// Opens or clears the device's `pulse_channel_misconfigured` event from
/// the settings among `raw`; nothing when the read had none. `last`, the
/// settings out of range the worker last reported, follows: an event is
/// sent only when they change, and one whose inputs or reasons changed is
/// cleared and opened again, so its message always says what is wrong now.
pub(crate) fn check_pulse_settings(
    outbox: &Outbox,
    config: &DeviceConfig,
    last: &mut Option<Vec<Misconfigured>>,
    raw: &[Reading],
    inputs: u8,
    at: DateTime<Utc>,
) {
    let value = |code: &str| raw.iter().find(|r| r.obis.to_string() == code).map(|r| r.value);
    let Some(found) = misconfigured(inputs, value) else {
        return;
    };
    if last.as_ref() == Some(&found) {
        return;
    }
    let cleared = Record::EventCleared {
        device: config.id,
        code: EventKind::PulseChannelMisconfigured.code(),
        at,
    };
    if found.is_empty() {
        tracing::info!(device = %config.name, device_id = %config.id, "pulse settings back in range");
        outbox.send(cleared);
    } else {
        let problems = describe(&found);
        tracing::warn!(device = %config.name, device_id = %config.id, %problems,
            "pulse settings out of range; the inputs concerned are not derived");
        if last.as_ref().is_some_and(|last| !last.is_empty()) {
            outbox.send(cleared);
        }
        outbox.send(Record::Event {
            device: config.id,
            kind: EventKind::PulseChannelMisconfigured,
            message: format!("{}: pulse settings out of range: {problems}", config.name),
            started_at: at,
            cleared_at: None,
        });
    }
    *last = Some(found);
}
