//! A meter's load profile, read once per recorded interval (after the
//! device's readout, behind every due register read of the bus) and resumed
//! from the last stored interval (or the profile's backfill depth), at most
//! `chunk_days` at a time; what is new is flagged (clock drift, spikes) and
//! stored.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::context::WorkerServices;
use super::outbox::Record;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::Driver;
use crate::device::iec::LoadProfileSettings;
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
    let Some(settings) = history_settings(runtime) else {
        return Ok(HistoryRead::default());
    };
    let password = &runtime.config.password;
    if password.refused_at.is_some() {
        // The meter refused the password: asking again may lock it.
        tracing::debug!(device = %runtime.config.name, "load profile not read: the meter refused the password; set it again");
        return Ok(HistoryRead::default());
    }
    if let Some(Err(error)) = &password.own {
        tracing::warn!(device = %runtime.config.name, %error, "load profile not read");
        return Err(error.to_string());
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
            tracing::warn!(device = %runtime.config.name, %error, "load profile not read; retried");
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

/// Stops the device's programming-mode work at once and has the refusal
/// stored (the lock and its `password_refused` event), naming whose
/// password it was, never the password.
fn password_refused(runtime: &mut DeviceRuntime, services: &WorkerServices) {
    let at = services.clock.now();
    let config = &mut runtime.config;
    config.password.refused_at = Some(at);
    let whose = match config.password.set_at {
        Some(set_at) => format!(
            "the device's own password (set {})",
            set_at.format("%Y-%m-%d %H:%M UTC")
        ),
        None => format!("the password of profile {}", config.profile.name),
    };
    let message = format!(
        "{} refused {whose}; its load profile is not read until the password is set again",
        config.name
    );
    tracing::warn!(device = %config.name, "{message}");
    services.outbox.send(Record::PasswordRefused {
        device: config.id,
        tried: config.password.set_at,
        message,
        at,
    });
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
            password_refused(runtime, services);
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
    // What the meter recorded after the newest stored interval is new.
    let new = intervals
        .iter()
        .filter(|interval| last.is_none_or(|last| interval.start > last))
        .count();
    if let Some(newest) = intervals.iter().map(|i| i.start).max() {
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
