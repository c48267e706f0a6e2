//! A meter's event logbook (`P.98`, `device::iec_logbook`), and a
//! programming log its profile lists in the same layout, read in the load
//! profile's turn right after it: the entries from the newest stored on
//! (the whole log the first time), each stored once as an event at the
//! meter's time. A meter that refuses a whole log keeps none: one
//! `meter_logbook_unsupported` event, and it is not asked again. Any other
//! failure keeps what was stored and is tried again in the next turn.

use super::context::WorkerServices;
use super::outbox::Record;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::Driver;
use crate::device::iec_logbook::LogbookSettings;
use crate::domain::clock::is_future;
use crate::domain::event::EventKind;
use crate::domain::ids::BusId;
use crate::store::future_stamps::future_stamp_message;

/// Reads what is new of each of the device's logbooks, if its profile
/// lists any.
pub(crate) async fn read_logbooks(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
) {
    let logbooks: Vec<(&'static str, LogbookSettings)> = runtime
        .config
        .profile
        .iec62056
        .as_ref()
        .map(|iec| iec.logbooks().map(|(log, settings)| (log, settings.clone())).collect())
        .unwrap_or_default();
    if !driver.reads_load_profile() {
        return;
    }
    for (log, settings) in logbooks {
        if !runtime.memory.logbooks_refused.contains(&settings.profile) {
            read_logbook(driver, bus, runtime, services, log, &settings).await;
        }
    }
}

/// Reads what is new of one logbook and hands it to the outbox.
async fn read_logbook(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
    log: &'static str,
    settings: &LogbookSettings,
) {
    let profile = settings.profile;
    let after = runtime
        .memory
        .last_logbook_entries
        .iter()
        .find(|(p, _)| *p == profile)
        .map(|(_, at)| *at);
    let (result, exchange) = driver.read_logbook(runtime.config.target(), log, settings, after).await;
    record_exchange(services, bus, &runtime.config, exchange);
    let name = runtime.config.name.clone();
    let id = runtime.config.id;
    let now = services.clock.now();
    let what = log.replace('_', " ");
    let (events, problems) = match result {
        Ok(read) => read,
        // A refusal of the whole log: the meter keeps none (error answers
        // are vendor specific, docs/PROTOCOLS.md).
        Err(error) if error.is_meter_error() && after.is_none() => {
            tracing::info!(device = %name, %error, profile, "the meter keeps no {what}; not asked again");
            runtime.memory.logbooks_refused.push(profile);
            services.outbox.send(Record::LogbookRefused {
                device: id,
                profile,
                message: format!("{name}: the meter refused its {what} (P.{profile:02}): {error}; not read again"),
                at: now,
            });
            return;
        }
        Err(error) => {
            tracing::warn!(device = %name, %error, profile, "{what} not read; what was stored is kept, retried next turn");
            return;
        }
    };
    if !problems.is_empty() {
        tracing::warn!(device = %name, ?problems, profile, "{what} entries not stored");
    }
    // Entries stamped in the future (a meter clock far ahead) are stored
    // as the meter wrote them, named in a `future_timestamp` event, and
    // pin nothing: the next read resumes after the newest of the others
    // (docs/RELIABILITY.md, "Clocks").
    let ahead: Vec<_> = events.iter().map(|e| e.at).filter(|at| is_future(*at, now)).collect();
    if let Some(first) = ahead.iter().min() {
        let count = i64::try_from(ahead.len()).unwrap_or(i64::MAX);
        services.outbox.send(Record::Event {
            device: id,
            kind: EventKind::FutureTimestamp,
            message: future_stamp_message(&name, count, &format!("{what} entries"), *first, now),
            started_at: now,
            cleared_at: Some(now),
        });
    }
    if let Some(newest) = events.iter().map(|e| e.at).filter(|at| !is_future(*at, now)).max() {
        let last = &mut runtime.memory.last_logbook_entries;
        match last.iter_mut().find(|(p, _)| *p == profile) {
            Some((_, at)) => *at = (*at).max(newest),
            None => last.push((profile, newest)),
        }
    }
    if !events.is_empty() {
        services.outbox.send(Record::LogbookEntries {
            device: id,
            name,
            entries: events,
        });
    }
}
