//! A meter's load profile, read after its readout once per recorded
//! interval and resumed from the last stored interval (or the profile's
//! backfill depth), at most `chunk_days` at a time; what is new is flagged
//! (clock drift, spikes) and stored.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

use super::context::WorkerServices;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::Driver;
use crate::device::iec::LoadProfileSettings;
use crate::domain::ids::BusId;
use crate::metering::clock_drift::{CLOCK_DRIFT, flag_clock_uncertain};
use crate::metering::validation::flag_interval_spikes;
use crate::store::devices::fetch_device_limits;
use crate::store::events::fetch_event_spans;
use crate::store::intervals::{fetch_last_meter_interval, insert_meter_intervals, update_profile_read_at};

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
/// one, and plans the next: at once while catching up (the next chunk goes
/// with the next readout, so the line is shared between chunks), else one
/// interval on. Returns how many intervals were new.
pub(crate) async fn read_history(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
) -> usize {
    let Some(settings) = history_settings(runtime) else {
        return 0;
    };
    match read_stretch(driver, bus, runtime, services, &settings).await {
        Ok((stored, next)) => {
            runtime.history_from = next;
            runtime.history_due = match next {
                Some(_) => Instant::now(),
                None => Instant::now() + Duration::from_secs(u64::from(settings.interval_minutes) * 60),
            };
            stored
        }
        Err(error) => {
            tracing::warn!(device = %runtime.config.name, %error, "load profile not read; retried at the next readout");
            0
        }
    }
}

/// Returns how many intervals were new and, while catching up, where the
/// next chunk starts.
async fn read_stretch(
    driver: &mut Driver,
    bus: BusId,
    runtime: &DeviceRuntime,
    services: &WorkerServices,
    settings: &LoadProfileSettings,
) -> Result<(usize, Option<DateTime<Utc>>), String> {
    let id = runtime.config.id;
    let last = fetch_last_meter_interval(&services.pool, id)
        .await
        .map_err(|error| error.to_string())?;
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
    let (mut intervals, problems) = result.map_err(|error| error.to_string())?;
    if !problems.is_empty() {
        tracing::warn!(device = %runtime.config.name, ?problems, "load profile rows not stored");
    }
    if let Some(first) = intervals.iter().map(|i| i.start).min() {
        let drifts = fetch_event_spans(&services.pool, id, CLOCK_DRIFT, first)
            .await
            .map_err(|error| error.to_string())?;
        flag_clock_uncertain(&mut intervals, &drifts);
    }
    // Spikes are flagged before storing: a stored interval is never changed.
    let limits = fetch_device_limits(&services.pool, id)
        .await
        .map_err(|error| error.to_string())?
        .and_then(|configured| configured.physical(runtime.config.profile.max_current_a));
    flag_interval_spikes(limits.as_ref(), &mut intervals);
    let stored = insert_meter_intervals(&services.pool, id, &intervals)
        .await
        .map_err(|error| error.to_string())?;
    if to.is_none() {
        // Read through to the present: what the meter lacks up to now is
        // a gap it will not fill (see derive::estimate).
        update_profile_read_at(&services.pool, id, asked_at)
            .await
            .map_err(|error| error.to_string())?;
    }
    Ok((usize::try_from(stored).unwrap_or(usize::MAX), to))
}
