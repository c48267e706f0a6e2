//! What a meter reports of its own condition, into the event log: the
//! conditions of its status words (error and warning bits), opened and
//! cleared as the bits come and go, and the occurrences its event registers
//! log with their start and stop (see `metering::meter_events`).

use chrono::{DateTime, Utc};

use super::context::DeviceConfig;
use super::outbox::{Outbox, Record};
use super::runtime::EventSpan;
use crate::device::driver::MeterStatus;
use crate::device::iec::IecSettings;
use crate::device::reading::Reading;
use crate::domain::clock::is_future;
use crate::domain::event::EventKind;
use crate::domain::obis::ObisCode;
use crate::metering::meter_events::{EventChange, Reported, Stored, reconcile};
use crate::store::future_stamps::future_stamp_message;

/// Opens an event per condition a status word shows, and clears the
/// conditions of every word read that no longer show. A word that cannot
/// be read keeps its conditions as they were and opens
/// `status_word_unreadable` (cleared once every word reads).
pub(super) fn record_conditions(
    outbox: &Outbox,
    config: &DeviceConfig,
    status: &MeterStatus,
    iec: &IecSettings,
    at: DateTime<Utc>,
) {
    for condition in &status.conditions {
        let kind = EventKind::Meter {
            code: condition.code.clone(),
            severity: condition.severity.severity(),
        };
        let message = format!(
            "{}: {} ({})",
            config.name,
            condition.code.as_str().replace('_', " "),
            condition.word
        );
        outbox.send(Record::Event {
            device: config.id,
            kind,
            message,
            started_at: at,
            cleared_at: None,
        });
    }
    let unreadable = EventKind::StatusWordUnreadable;
    if status.unreadable.is_empty() {
        outbox.send(Record::EventCleared {
            device: config.id,
            code: unreadable.code(),
            at,
        });
    } else {
        let words = status.unreadable.join("; ");
        tracing::warn!(device = %config.name, %words, "status words not readable; their conditions are not known");
        let message = format!(
            "{}: status words not readable ({words}); their conditions are not known",
            config.name
        );
        outbox.send(Record::Event {
            device: config.id,
            kind: unreadable,
            message,
            started_at: at,
            cleared_at: None,
        });
    }
    for word in iec.status.iter().filter(|word| status.words_read.contains(&word.obis)) {
        for code in word.bits.values() {
            if status.conditions.iter().any(|c| &c.code == code) {
                continue;
            }
            outbox.send(Record::EventCleared {
                device: config.id,
                code: code.clone(),
                at,
            });
        }
    }
}

/// Brings the event log in line with the start and stop times the readout
/// carried for each of the profile's event registers, at server time
/// `now`. A pair whose start was not in the readout is left as it is.
/// `stored`, the latest span of each code as the worker knows it, follows.
/// An occurrence stamped in the future (a meter clock far ahead) is stored
/// over at once and a `future_timestamp` event names the device.
pub(super) fn record_event_registers(
    outbox: &Outbox,
    config: &DeviceConfig,
    stored: &mut Vec<EventSpan>,
    readings: &[Reading],
    iec: &IecSettings,
    now: DateTime<Utc>,
) {
    let time_of = |code: &ObisCode| {
        readings
            .iter()
            .find(|reading| &reading.obis == code)
            .and_then(|reading| reading.captured_at)
    };
    for event in &iec.events {
        let Some(start) = time_of(&event.start) else {
            continue;
        };
        let reported = Reported {
            start,
            stop: time_of(&event.stop),
        };
        let index = stored.iter().position(|(code, _, _)| code == &event.code);
        let last = index.map(|i| Stored {
            started_at: stored[i].1,
            cleared_at: stored[i].2,
        });
        for change in reconcile(reported, last, now) {
            let record = match change {
                EventChange::Clear(at) => {
                    if let Some(i) = index {
                        stored[i].2 = Some(at);
                    }
                    Record::EventCleared {
                        device: config.id,
                        code: event.code.clone(),
                        at,
                    }
                }
                EventChange::Open { started_at, cleared_at } => {
                    let span = (event.code.clone(), started_at, cleared_at);
                    match stored.iter().position(|(code, _, _)| code == &event.code) {
                        Some(i) => stored[i] = span,
                        None => stored.push(span),
                    }
                    let what = event.code.as_str().replace('_', " ");
                    if is_future(started_at, now) {
                        outbox.send(Record::Event {
                            device: config.id,
                            kind: EventKind::FutureTimestamp,
                            message: future_stamp_message(
                                &config.name,
                                1,
                                &format!("{what} occurrence"),
                                started_at,
                                now,
                            ),
                            started_at: now,
                            cleared_at: Some(now),
                        });
                    }
                    Record::Event {
                        device: config.id,
                        kind: EventKind::Meter {
                            code: event.code.clone(),
                            severity: event.severity,
                        },
                        message: format!("{}: {what} logged by the meter", config.name),
                        started_at,
                        cleared_at,
                    }
                }
            };
            outbox.send(record);
        }
    }
}
