//! A meter's event logbook (`P.98`, `device::iec_logbook`), and a
//! programming log its profile lists in the same layout, read in the load
//! profile's turn right after it: the entries from the newest stored on
//! (the whole log the first time), each stored once as an event at the
//! meter's time. A meter that refuses a whole log may keep none, or
//! have logged nothing yet (an empty log can be answered `(ERROR)` too):
//! one `meter_logbook_unsupported` event, and the log is asked for again
//! once a day ([`LOGBOOK_REASK`]) until it is read. Any other failure
//! keeps what was stored and is tried again in the next turn.

use chrono::{DateTime, SecondsFormat, Utc};

use super::context::WorkerServices;
use super::outbox::Record;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::Driver;
use crate::device::iec_logbook::{LOGBOOK_REASK, LogbookSettings};
use crate::domain::clock::is_future;
use crate::domain::event::EventKind;
use crate::domain::ids::BusId;
use crate::store::future_stamps::future_stamp_message;

/// Whether a logbook the meter refused whole at `refused_at` is asked for
/// again at server time `now`. A refusal stamped ahead of `now` (a server
/// clock set back) waits for it.
fn asked_again(refused_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= refused_at + LOGBOOK_REASK
}

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
    let now = services.clock.now();
    for (log, settings) in logbooks {
        if refused_at(runtime, settings.profile).is_none_or(|at| asked_again(at, now)) {
            read_logbook(driver, bus, runtime, services, log, &settings).await;
        }
    }
}

/// When the meter last refused logbook `profile` whole, if it did.
fn refused_at(runtime: &DeviceRuntime, profile: u8) -> Option<DateTime<Utc>> {
    runtime
        .memory
        .logbooks_refused
        .iter()
        .find(|(p, _)| *p == profile)
        .map(|(_, at)| *at)
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
        // A refusal of the whole log: the meter keeps none, or has logged
        // nothing yet (error answers are vendor specific,
        // docs/PROTOCOLS.md). Asked again a day on; a refusal that repeats
        // only moves that day (see `store::logbook::insert_logbook_refusal`).
        Err(error) if error.is_meter_error() && after.is_none() => {
            let again = (now + LOGBOOK_REASK).to_rfc3339_opts(SecondsFormat::Secs, true);
            tracing::info!(device = %name, %error, profile, "the meter refused its {what}; asked again at {again}");
            let refused = &mut runtime.memory.logbooks_refused;
            match refused.iter_mut().find(|(p, _)| *p == profile) {
                Some((_, at)) => *at = now,
                None => refused.push((profile, now)),
            }
            services.outbox.send(Record::LogbookRefused {
                device: id,
                profile,
                message: format!(
                    "{name}: the meter refused its {what} (P.{profile:02}): {error}; \
                     asked again once a day until it answers, first at {again}"
                ),
                at: now,
            });
            return;
        }
        Err(error) => {
            tracing::warn!(device = %name, %error, profile, "{what} not read; what was stored is kept, retried next turn");
            return;
        }
    };
    // Read after all: the refusal is no longer so, and goes.
    if refused_at(runtime, profile).is_some() {
        tracing::info!(device = %name, profile, "the meter answered for its {what}, refused before");
        runtime.memory.logbooks_refused.retain(|(p, _)| *p != profile);
        services.outbox.send(Record::LogbookAnswered { device: id, profile });
    }
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap()
    }

    #[test]
    fn a_refused_logbook_is_asked_again_a_day_on() {
        let refused = at(22, 12, 0);
        // The same day, and a minute short of the day: not asked.
        assert!(!asked_again(refused, refused));
        assert!(!asked_again(refused, at(22, 23, 59)));
        assert!(!asked_again(refused, at(23, 11, 59)));
        // A day on, and any time after: asked.
        assert!(asked_again(refused, at(23, 12, 0)));
        assert!(asked_again(refused, at(25, 3, 0)));
        // A refusal stamped ahead of the server's clock waits for it.
        assert!(!asked_again(at(24, 12, 0), at(23, 12, 0)));
    }
}
