//! A meter's load profile, read once per recorded interval (after the
//! device's readout, behind every due register read of the bus) and resumed
//! from the last stored interval (or the profile's backfill depth), at most
//! `chunk_days` at a time; what is new is flagged (clock drift, spikes) and
//! stored.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::context::WorkerServices;
use super::load_curve::{load_curve_period, read_load_curve};
use super::outbox::Record;
use super::password::{Withheld, password_refused, programming_allowed};
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::Driver;
use crate::device::iec::LoadProfileSettings;
use crate::domain::clock::is_future;
use crate::domain::ids::BusId;
use crate::metering::clock_drift::flag_clock_uncertain;
use crate::metering::validation::flag_interval_spikes;

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
            Ok(HistoryRead {
                new,
                catching_up: next.is_some(),
            })
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
    /// The read stopped short of the present: more is due at once.
    pub(crate) catching_up: bool,
}

/// How often a meter's load profile is read once caught up: once per
/// recorded interval.
pub(crate) fn history_period(settings: &LoadProfileSettings) -> Duration {
    Duration::from_secs(u64::from(settings.interval_minutes) * 60)
}

/// Returns how many intervals were new and, while catching up, where the
/// next chunk starts.
async fn read_stretch(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
    settings: &LoadProfileSettings,
) -> Result<(usize, Option<DateTime<Utc>>), String> {
    let id = runtime.config.id;
    let last = runtime.memory.last_interval;
    let stored_until = match last {
        Some(start) => start + TimeDelta::minutes(i64::from(settings.interval_minutes)),
        None => services.clock.now() - TimeDelta::days(i64::from(settings.backfill_days)),
    };
    let from = runtime.history_from.map_or(stored_until, |next| next.max(stored_until));
    let until = from + TimeDelta::days(i64::from(settings.chunk_days));
    let asked_at = services.clock.now();
    let to = (until < asked_at).then_some(until);
    let (result, exchange) = driver.read_history(runtime.config.target(), settings, from, to).await;
    record_exchange(services, bus, &runtime.config, exchange);
    let (mut intervals, problems) = match result {
        Ok(read) => read,
        Err(error) if error.is_password_refused() => {
            password_refused(&mut runtime.config, services);
            return Err(error.to_string());
        }
        Err(error) => return Err(error.to_string()),
    };
    if !problems.is_empty() {
        tracing::warn!(device = %runtime.config.name, ?problems, "load profile rows not stored");
    }
    if let Some(first) = intervals.iter().map(|i| i.start).min() {
        let drifts: Vec<_> = runtime
            .memory
            .drift_spans
            .iter()
            .filter(|(_, cleared)| cleared.is_none_or(|cleared| cleared > first))
            .copied()
            .collect();
        flag_clock_uncertain(&mut intervals, &drifts);
    }
    // Spikes are flagged before storing: a stored interval is never changed.
    let limits = runtime.config.limits.physical(runtime.config.profile.max_current_a);
    flag_interval_spikes(limits.as_ref(), &mut intervals);
    // What the meter recorded after the newest stored interval is new. An
    // interval stamped in the future (a meter clock far ahead) is stored
    // flagged, but the next read resumes after the newest one that is not,
    // so the bad stamp pins nothing (docs/RELIABILITY.md, "Clocks").
    let now = services.clock.now();
    let present = || intervals.iter().filter(|interval| !is_future(interval.start, now));
    let new = present()
        .filter(|interval| last.is_none_or(|last| interval.start > last))
        .count();
    if let Some(newest) = present().map(|i| i.start).max() {
        runtime.memory.last_interval = Some(last.map_or(newest, |last| last.max(newest)));
    }
    services.outbox.send(Record::Intervals {
        device: id,
        intervals,
        // Read through to the present: what the meter lacks up to now is a
        // gap it will not fill (see derive::estimate).
        read_through: to.is_none().then_some(asked_at),
    });
    Ok((new, to))
}
