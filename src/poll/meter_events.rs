//! What a meter reports of its own condition, into the event log: the
//! conditions of its status words (error and warning bits), opened and
//! cleared as the bits come and go, and the occurrences its event registers
//! log with their start and stop (see `metering::meter_events`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::context::DeviceConfig;
use crate::device::driver::MeterStatus;
use crate::device::iec::IecSettings;
use crate::device::obis::ObisCode;
use crate::device::reading::Reading;
use crate::metering::meter_events::{EventChange, Reported, Stored, reconcile};
use crate::store::StoreError;
use crate::store::events::{fetch_last_event_spans, insert_event, insert_event_span, update_event_cleared};

/// Opens an event per condition a status word shows, and clears the
/// conditions of every word read that no longer show.
pub(super) async fn record_conditions(
    pool: &PgPool,
    config: &DeviceConfig,
    status: &MeterStatus,
    iec: &IecSettings,
    at: DateTime<Utc>,
) {
    for condition in &status.conditions {
        let severity = if condition.severity == "error" {
            "critical"
        } else {
            "warning"
        };
        let message = format!(
            "{}: {} ({})",
            config.name,
            condition.code.replace('_', " "),
            condition.word
        );
        if let Err(error) = insert_event(pool, config.id, &condition.code, severity, &message, at).await {
            tracing::warn!(device = %config.id, %error, "cannot store a meter condition");
        }
    }
    for word in iec.status.iter().filter(|word| status.words_read.contains(&word.obis)) {
        for code in word.bits.values() {
            if status.conditions.iter().any(|c| &c.code == code) {
                continue;
            }
            if let Err(error) = update_event_cleared(pool, config.id, code, at).await {
                tracing::warn!(device = %config.id, %error, "cannot clear a meter condition");
            }
        }
    }
}

/// Brings the event log in line with the start and stop times the readout
/// carried for each of the profile's event registers. A pair whose start
/// was not in the readout is left as it is.
pub(super) async fn record_event_registers(
    pool: &PgPool,
    config: &DeviceConfig,
    readings: &[Reading],
    iec: &IecSettings,
) {
    if iec.events.is_empty() {
        return;
    }
    let time_of = |code: &ObisCode| {
        readings
            .iter()
            .find(|reading| &reading.obis == code)
            .and_then(|reading| reading.captured_at)
    };
    let codes: Vec<String> = iec.events.iter().map(|event| event.code.clone()).collect();
    let stored = match fetch_last_event_spans(pool, config.id, &codes).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::warn!(device = %config.id, %error, "cannot read the stored meter events");
            return;
        }
    };
    for event in &iec.events {
        let Some(start) = time_of(&event.start) else {
            continue;
        };
        let reported = Reported {
            start,
            stop: time_of(&event.stop),
        };
        let last = stored
            .iter()
            .find(|(code, _, _)| code == &event.code)
            .map(|&(_, started_at, cleared_at)| Stored { started_at, cleared_at });
        for change in reconcile(reported, last) {
            if let Err(error) = apply(pool, config, &event.code, &event.severity, change).await {
                tracing::warn!(device = %config.id, code = %event.code, %error, "cannot store a meter event");
            }
        }
    }
}

async fn apply(
    pool: &PgPool,
    config: &DeviceConfig,
    code: &str,
    severity: &str,
    change: EventChange,
) -> Result<(), StoreError> {
    match change {
        EventChange::Clear(at) => update_event_cleared(pool, config.id, code, at).await,
        EventChange::Open { started_at, cleared_at } => {
            let message = format!("{}: {} logged by the meter", config.name, code.replace('_', " "));
            insert_event_span(pool, config.id, code, severity, &message, started_at, cleared_at).await
        }
    }
}
