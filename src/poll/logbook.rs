//! A meter's event logbook (`P.98`, `device::iec_logbook`), read in its
//! load profile's turn right after it: the entries from the newest stored
//! on (the whole logbook the first time), each stored once as an event at
//! the meter's time. A meter that refuses the whole logbook keeps none: one
//! `meter_logbook_unsupported` event, and it is not asked again. Any other
//! failure keeps what was stored and is tried again in the next turn.

use super::context::WorkerServices;
use super::outbox::Record;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::Driver;
use crate::domain::clock::is_future;
use crate::domain::event::EventKind;
use crate::domain::ids::BusId;
use crate::store::future_stamps::future_stamp_message;

/// Reads what is new of the device's logbook, if its profile has one.
/// Returns how many entries the answer held from the newest stored on
/// (the newest stored itself included, which storing leaves out).
pub(crate) async fn read_logbook(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
) -> usize {
    let Some(settings) = runtime
        .config
        .profile
        .iec62056
        .as_ref()
        .and_then(|iec| iec.logbook.clone())
    else {
        return 0;
    };
    if runtime.memory.logbook_unsupported || !driver.reads_load_profile() {
        return 0;
    }
    let after = runtime.memory.last_logbook_entry;
    let (result, exchange) = driver.read_logbook(runtime.config.target(), &settings, after).await;
    record_exchange(services, bus, &runtime.config, exchange);
    let name = runtime.config.name.clone();
    let id = runtime.config.id;
    let now = services.clock.now();
    let (events, problems) = match result {
        Ok(read) => read,
        // A refusal of the whole logbook: the meter keeps none (error
        // answers are vendor specific, docs/PROTOCOLS.md).
        Err(error) if error.is_meter_error() && after.is_none() => {
            tracing::info!(device = %name, %error, "the meter keeps no logbook; not asked again");
            runtime.memory.logbook_unsupported = true;
            services.outbox.send(Record::Event {
                device: id,
                kind: EventKind::MeterLogbookUnsupported,
                message: format!(
                    "{name}: the meter refused its logbook (P.{:02}): {error}; not read again",
                    settings.profile
                ),
                started_at: now,
                cleared_at: Some(now),
            });
            return 0;
        }
        Err(error) => {
            tracing::warn!(device = %name, %error, "logbook not read; what was stored is kept, retried next turn");
            return 0;
        }
    };
    if !problems.is_empty() {
        tracing::warn!(device = %name, ?problems, "logbook entries not stored");
    }
    // Entries stamped in the future (a meter clock far ahead) are stored
    // as the meter wrote them, named in a `future_timestamp` event, and
    // pin nothing: the next read resumes after the newest of the others
    // (docs/RELIABILITY.md, "Clocks").
    let ahead: Vec<_> = events.iter().map(|e| e.at).filter(|at| is_future(*at, now)).collect();
    if let Some(first) = ahead.iter().min() {
        services.outbox.send(Record::Event {
            device: id,
            kind: EventKind::FutureTimestamp,
            message: future_stamp_message(
                &name,
                i64::try_from(ahead.len()).unwrap_or(i64::MAX),
                "logbook entries",
                *first,
                now,
            ),
            started_at: now,
            cleared_at: Some(now),
        });
    }
    if let Some(newest) = events.iter().map(|e| e.at).filter(|at| !is_future(*at, now)).max() {
        runtime.memory.last_logbook_entry = Some(after.map_or(newest, |after| after.max(newest)));
    }
    let count = events.len();
    if count > 0 {
        services.outbox.send(Record::LogbookEntries {
            device: id,
            name,
            entries: events,
        });
    }
    count
}
