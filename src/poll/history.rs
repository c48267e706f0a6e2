//! A meter's load profile, read once per recorded interval (after the
//! device's readout, behind every due register read of the bus) and resumed
//! from the last stored interval, at most `chunk_days` at a time; what is
//! new is flagged (clock drift, spikes) and stored.
//!
//! A device with nothing stored is backfilled newest first: the last
//! `chunk_days` up to the present, then one older chunk after another
//! (`P.01(from;to)`, docs/PROTOCOLS.md, "Load profile, EMH style"), each
//! stored as it arrives, until the profile's `backfill_days` are reached or
//! the meter answers an older range with an error (a meter refusing a
//! range older than its memory, which is finite: A1000 manual 1.6, 128 kB
//! in ring mode).
//!
//! A chunk without a record does not end it: a meter without power (or
//! cut off) for longer than a chunk has a hole in its profile and still
//! holds what is older. After such an answer the next request reaches back
//! as far again as the stretch found empty so far (from the oldest
//! interval stored to the oldest instant asked), so that stretch doubles
//! with each empty answer, up to [`MAX_REACH_CHUNKS`] chunks and never past
//! the depth limit; once the meter has data back to a request's start,
//! requests are `chunk_days` again. A meter that simply keeps nothing older
//! so costs a few short answers more (about five at 40 days by 2), and its
//! backfill ends with the request that reaches the depth limit. The request
//! that finds the older end of a hole answers at most four chunks, four
//! times an ordinary request's answer, so a shared line is not held for
//! long. The span is derived from what is stored (the oldest interval and
//! the backfill's `oldest_reached`), not kept apart, so a restart resumes
//! it as it was; a request always starts where the last one ended, so
//! nothing is skipped.
//!
//! The backfill's progress is stored (`load_profile_backfills`), so an
//! interrupted backfill resumes at the oldest chunk reached, and the spans
//! it has not reached are shown as pending rather than missing, as is a
//! stretch asked without records below the oldest stored interval (a hole
//! or nothing older: not known yet, `Backfill::pending`). A hole the meter
//! has lies between stored intervals once older data is stored: a gap like
//! any other (missing). Reads forward alternate with
//! older chunks while it runs.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::context::WorkerServices;
use super::load_curve::{load_curve_period, read_load_curve};
use super::logbook::read_logbooks;
use super::outbox::Record;
use super::password::{Withheld, password_refused, programming_allowed};
use super::runtime::{DeviceRuntime, Memory, record_exchange};
use crate::device::driver::Driver;
use crate::device::iec::LoadProfileSettings;
use crate::domain::clock::is_future;
use crate::domain::ids::BusId;
use crate::store::load_profile_backfill::Backfill;

/// The load-profile settings of the device, if its meter keeps one.
pub(crate) fn history_settings(runtime: &DeviceRuntime) -> Option<LoadProfileSettings> {
    runtime
        .config
        .profile
        .iec62056
        .as_ref()
        .and_then(|iec| iec.load_profile.clone())
}

/// Reads the next stretch of the device's load profile, if its meter keeps
/// one. Returns how many intervals were new, and whether there is more to
/// catch up on (the read stopped at `chunk_days`, short of the present).
pub(crate) async fn read_history(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
) -> Result<HistoryRead, String> {
    if load_curve_period(driver, runtime).is_some() {
        let new = read_load_curve(driver, bus, runtime, services).await?;
        return Ok(HistoryRead {
            new,
            catching_up: false,
        });
    }
    let Some(settings) = history_settings(runtime) else {
        return Ok(HistoryRead::default());
    };
    match programming_allowed(&runtime.config) {
        Ok(()) => {}
        Err(Withheld::Refused) => {
            tracing::debug!(device = %runtime.config.name, "load profile not read: the meter refused the password; set it again");
            return Ok(HistoryRead::default());
        }
        Err(Withheld::Unreadable(error)) => {
            tracing::warn!(device = %runtime.config.name, %error, "load profile not read");
            return Err(error);
        }
    }
    match read_stretch(driver, bus, runtime, services, &settings).await {
        Ok((new, next)) => {
            runtime.history_from = next;
            let backfilling = runtime
                .memory
                .backfill
                .is_some_and(|backfill| backfill.completed_at.is_none());
            let catching_up = next.is_some() || backfilling;
            // The logbook follows in the same turn: the first turn, then
            // each one that is not catching up.
            if !catching_up || !runtime.logbook_asked {
                runtime.logbook_asked = true;
                read_logbooks(driver, bus, runtime, services).await;
            }
            Ok(HistoryRead { new, catching_up })
        }
        Err(error) => {
            // A refusal was logged as such, and is not retried.
            if runtime.config.password.refused_at.is_none() {
                tracing::warn!(device = %runtime.config.name, %error, "load profile not read; retried");
            }
            Err(error)
        }
    }
}

/// What a load-profile read did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HistoryRead {
    /// Intervals the meter recorded after the newest one stored.
    pub(crate) new: usize,
    /// The read stopped short of the present, or a first backfill has
    /// older chunks to read: more is due at once.
    pub(crate) catching_up: bool,
}

/// How often a meter's load profile is read once caught up: once per
/// recorded interval.
pub(crate) fn history_period(settings: &LoadProfileSettings) -> Duration {
    Duration::from_secs(u64::from(settings.interval_minutes) * 60)
}

/// Which stretch of the profile a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stretch {
    /// A device with nothing stored and no backfill yet: the newest
    /// `chunk_days`, up to the present, start a backfill.
    Newest,
    /// From the newest stored interval on (or the backfill's first chunk).
    Forward,
    /// The chunk before the oldest the running backfill has reached.
    Older(Backfill),
}

/// What is read next. While a first backfill runs, a read forward (when a
/// newer interval is complete) alternates with an older chunk, so the
/// present stays current and the backfill keeps going.
fn next_stretch(memory: &Memory, read_forward_last: bool, now: DateTime<Utc>, step: TimeDelta) -> Stretch {
    match (memory.last_interval, memory.backfill) {
        (None, None) => Stretch::Newest,
        (last, Some(backfill)) if backfill.completed_at.is_none() => {
            let forward_due = last.is_some_and(|last| last + step * 2 <= now);
            if forward_due && !read_forward_last {
                Stretch::Forward
            } else {
                Stretch::Older(backfill)
            }
        }
        _ => Stretch::Forward,
    }
}

/// The most chunks one older request of a backfill reaches back over a
/// stretch found without records: what bounds the answer of the request
/// that finds the older end of a hole.
const MAX_REACH_CHUNKS: i32 = 4;

/// The range `[from, to)` of the next older request of a running
/// backfill: it ends where the backfill has reached and goes back
/// `chunk`, or, when the requests since `oldest_data` (the oldest interval
/// stored from the meter) found no record, as far again as that empty
/// stretch, so it doubles with each empty answer, up to
/// [`MAX_REACH_CHUNKS`] chunks; never past the depth limit.
fn older_range(
    backfill: &Backfill,
    oldest_data: Option<DateTime<Utc>>,
    chunk: TimeDelta,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let to = backfill.oldest_reached;
    let empty = oldest_data.unwrap_or(backfill.started_at) - to;
    let reach = chunk.max(empty).min(chunk * MAX_REACH_CHUNKS);
    ((to - reach).max(backfill.depth_limit), to)
}

/// Returns how many intervals were new and, while catching up, where the
/// next forward chunk starts.
async fn read_stretch(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
    settings: &LoadProfileSettings,
) -> Result<(usize, Option<DateTime<Utc>>), String> {
    let id = runtime.config.id;
    let last = runtime.memory.last_interval;
    let step = TimeDelta::minutes(i64::from(settings.interval_minutes));
    let asked_at = services.clock.now();
    let stretch = next_stretch(&runtime.memory, runtime.read_forward_last, asked_at, step);
    runtime.read_forward_last = stretch == Stretch::Forward;
    let chunk = TimeDelta::days(i64::from(settings.chunk_days));
    let (from, to) = match stretch {
        Stretch::Newest => (asked_at - chunk, None),
        Stretch::Forward => {
            let stored_until = match (last, runtime.memory.backfill) {
                (Some(start), _) => start + step,
                (None, Some(backfill)) => backfill.oldest_reached,
                (None, None) => asked_at - TimeDelta::days(i64::from(settings.backfill_days)),
            };
            let from = runtime.history_from.map_or(stored_until, |next| next.max(stored_until));
            let until = from + chunk;
            (from, (until < asked_at).then_some(until))
        }
        Stretch::Older(backfill) => {
            let (from, to) = older_range(&backfill, runtime.memory.oldest_interval, chunk);
            (from, Some(to))
        }
    };
    let (result, exchange) = driver.read_history(runtime.config.target(), settings, from, to).await;
    record_exchange(services, bus, &runtime.config, exchange);
    let (mut intervals, problems, refused) = match result {
        Ok((intervals, problems)) => (intervals, problems, false),
        Err(error) if error.is_password_refused() => {
            password_refused(&mut runtime.config, services);
            return Err(error.to_string());
        }
        // A meter asked for a range older than it keeps may say so with an
        // error (error answers are vendor specific, docs/PROTOCOLS.md): the
        // backfill has reached its oldest data.
        Err(error) if error.is_meter_error() && matches!(stretch, Stretch::Older(_)) => {
            tracing::info!(device = %runtime.config.name, %error, "load profile backfill reached the meter's oldest data");
            (Vec::new(), Vec::new(), true)
        }
        Err(error) => return Err(error.to_string()),
    };
    if !problems.is_empty() {
        tracing::warn!(device = %runtime.config.name, ?problems, "load profile rows not stored");
    }
    runtime.flag_meter_intervals(&mut intervals);
    // What the meter recorded after the newest stored interval is new. An
    // interval stamped in the future (a meter clock far ahead) is stored
    // flagged, but the next read resumes after the newest one that is not,
    // so the bad stamp pins nothing (docs/RELIABILITY.md, "Clocks").
    let now = services.clock.now();
    let present = || intervals.iter().filter(|interval| !is_future(interval.start, now));
    let new = match stretch {
        Stretch::Older(backfill) => present()
            .filter(|interval| interval.start < backfill.oldest_reached)
            .count(),
        Stretch::Newest | Stretch::Forward => present()
            .filter(|interval| last.is_none_or(|last| interval.start > last))
            .count(),
    };
    if let Some(newest) = present().map(|i| i.start).max() {
        runtime.memory.last_interval = Some(last.map_or(newest, |last| last.max(newest)));
    }
    if let Some(oldest) = present().map(|i| i.start).min() {
        let known = runtime.memory.oldest_interval;
        runtime.memory.oldest_interval = Some(known.map_or(oldest, |known| known.min(oldest)));
    }
    let backfill = match stretch {
        Stretch::Newest => {
            let depth_limit = asked_at - TimeDelta::days(i64::from(settings.backfill_days));
            Some(Backfill {
                started_at: asked_at,
                depth_limit,
                oldest_reached: from,
                // A meter with nothing recent has nothing older either; a
                // chunk as deep as the backfill leaves nothing older to ask.
                completed_at: (intervals.is_empty() || from <= depth_limit).then_some(asked_at),
            })
        }
        Stretch::Older(backfill) => Some(Backfill {
            oldest_reached: from,
            // An error for the range: the meter keeps nothing older. No
            // record may be a hole (the next request reaches further back,
            // `older_range`), so only the depth limit ends it then.
            completed_at: (refused || from <= backfill.depth_limit).then_some(asked_at),
            ..backfill
        }),
        Stretch::Forward => None,
    };
    if let Some(backfill) = backfill {
        let backfill = Backfill {
            depth_limit: backfill.depth_limit.min(backfill.oldest_reached),
            ..backfill
        };
        if backfill.completed_at.is_some() {
            tracing::info!(device = %runtime.config.name, oldest = %backfill.oldest_reached, "load profile backfill complete");
        }
        runtime.memory.backfill = Some(backfill);
    }
    // A forward read stopped short of the present goes on from there.
    let next = match stretch {
        Stretch::Forward => to,
        Stretch::Newest | Stretch::Older(_) => runtime.history_from,
    };
    services.outbox.send(Record::Intervals {
        device: id,
        intervals,
        // Read through to the present: what the meter lacks up to now is a
        // gap it will not fill (see derive::estimate).
        read_through: to.is_none().then_some(asked_at),
        backfill: runtime.memory.backfill.filter(|_| backfill.is_some()),
    });
    Ok((new, next))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, minute, 0).unwrap()
    }

    const QUARTER: TimeDelta = TimeDelta::minutes(15);

    fn memory(last: Option<DateTime<Utc>>, backfill: Option<Backfill>) -> Memory {
        Memory {
            last_interval: last,
            backfill,
            ..Memory::default()
        }
    }

    fn running() -> Backfill {
        Backfill {
            started_at: at(6, 12, 0),
            depth_limit: at(1, 12, 0),
            oldest_reached: at(4, 12, 0),
            completed_at: None,
        }
    }

    #[test]
    fn nothing_stored_starts_a_backfill_with_the_newest_chunk() {
        assert_eq!(
            next_stretch(&memory(None, None), false, at(6, 12, 0), QUARTER),
            Stretch::Newest
        );
    }

    #[test]
    fn a_profile_stored_before_backfills_went_newest_first_is_read_forward() {
        let memory = memory(Some(at(6, 11, 30)), None);
        assert_eq!(next_stretch(&memory, false, at(6, 12, 0), QUARTER), Stretch::Forward);
    }

    #[test]
    fn a_running_backfill_reads_older_chunks_and_alternates_with_the_present_once_it_is_due() {
        // The newest stored interval is the last complete one: older chunk.
        let current = memory(Some(at(6, 11, 45)), Some(running()));
        assert_eq!(
            next_stretch(&current, false, at(6, 12, 5), QUARTER),
            Stretch::Older(running())
        );
        // A newer interval is complete: forward, then older again.
        let behind = memory(Some(at(6, 11, 30)), Some(running()));
        assert_eq!(next_stretch(&behind, false, at(6, 12, 0), QUARTER), Stretch::Forward);
        assert_eq!(
            next_stretch(&behind, true, at(6, 12, 0), QUARTER),
            Stretch::Older(running())
        );
    }

    #[test]
    fn older_requests_go_back_a_chunk_while_the_meter_has_data_and_double_over_what_it_found_empty() {
        let day = TimeDelta::days(1);
        let chunk = day * 2;
        let reached = |oldest_reached| Backfill {
            started_at: at(30, 0, 0),
            depth_limit: at(30, 0, 0) - day * 40,
            oldest_reached,
            completed_at: None,
        };
        let now = at(30, 0, 0);
        // Data back to the oldest instant asked: a chunk.
        let backfill = reached(now - day * 4);
        assert_eq!(
            older_range(&backfill, Some(now - day * 4), chunk),
            (now - day * 6, now - day * 4)
        );
        // Data starting within the last chunk: still a chunk.
        assert_eq!(
            older_range(&backfill, Some(now - day * 3), chunk),
            (now - day * 6, now - day * 4)
        );
        // Nothing older than 10 days back, asked back to 12, 14, then 18
        // days: 2, 4 then 8 days empty, so 2, 4 then 8 days more.
        assert_eq!(
            older_range(&reached(now - day * 12), Some(now - day * 10), chunk),
            (now - day * 14, now - day * 12)
        );
        assert_eq!(
            older_range(&reached(now - day * 14), Some(now - day * 10), chunk),
            (now - day * 18, now - day * 14)
        );
        assert_eq!(
            older_range(&reached(now - day * 18), Some(now - day * 10), chunk),
            (now - day * 26, now - day * 18)
        );
        // 16 days empty: the reach stops at four chunks (8 days), and
        // never goes past the depth limit.
        assert_eq!(
            older_range(&reached(now - day * 26), Some(now - day * 10), chunk),
            (now - day * 34, now - day * 26)
        );
        assert_eq!(
            older_range(&reached(now - day * 34), Some(now - day * 10), chunk),
            (now - day * 40, now - day * 34)
        );
        // Nothing stored at all: empty since the backfill started.
        assert_eq!(
            older_range(&reached(now - day * 2), None, chunk),
            (now - day * 4, now - day * 2)
        );
    }

    #[test]
    fn a_complete_backfill_leaves_reads_forward() {
        let done = Backfill {
            completed_at: Some(at(6, 12, 10)),
            ..running()
        };
        let memory = memory(Some(at(6, 11, 45)), Some(done));
        assert_eq!(next_stretch(&memory, false, at(6, 12, 5), QUARTER), Stretch::Forward);
    }
}
