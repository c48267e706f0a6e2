//! What a read of a device does once its driver has it: pulse values
//! derived, meter conditions and clock checked, values handed to ingest,
//! reachability tracked; and an operator's "read now".

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::clock_check::check_clock;
use super::context::{DeviceConfig, WorkerServices};
use super::history::read_history;
use super::meter_events::{record_conditions, record_event_registers};
use super::runtime::{DeviceRuntime, record_exchange};
use super::stats::PollStats;
use super::status::Transition;
use crate::device::driver::{Driver, Step};
use crate::device::profile::RegisterGroup;
use crate::device::pulse::{self, Continuity};
use crate::device::reading::Reading;
use crate::domain::ids::BusId;
use crate::domain::job::JobErrorCode;
use crate::store::devices::{DeviceStatus, update_device_status};
use crate::store::events::{insert_event, update_event_cleared};
use crate::store::jobs::{update_job_finished, update_job_started};
use crate::store::readings::fetch_latest;

/// Hands a complete read's values to ingest (pulse values derived first),
/// records what the meter reported of itself, and updates the device's
/// reachability. Returns the transition and how many values were read.
pub(crate) async fn finish_read(
    bus: BusId,
    runtime: &mut DeviceRuntime,
    step: Step,
    services: &WorkerServices,
) -> (Option<Transition>, usize) {
    let at = services.clock.now();
    match step {
        Step::More => (None, 0),
        Step::Done(mut output) => {
            if let Some(inputs) = runtime.config.profile.pulse_inputs {
                derive_pulses(&services.pool, runtime, inputs, &mut output.readings, at).await;
            }
            if let (Some(status), Some(iec)) = (&output.status, &runtime.config.profile.iec62056) {
                record_conditions(&services.pool, &runtime.config, status, iec, at).await;
                record_event_registers(&services.pool, &runtime.config, &output.readings, iec).await;
            }
            check_clock(
                &services.pool,
                &runtime.config,
                output.meter_clock,
                at,
                services.clock_drift_threshold,
            )
            .await;
            let count = output.readings.len();
            if count > 0 {
                PollStats::add(&services.stats.readings_queued, count as u64);
                let device = runtime.config.id;
                let batch = output.readings.into_iter().map(|r| (device, r)).collect();
                if services.ingest.send(batch).await.is_err() {
                    tracing::error!(%bus, "ingest has stopped; readings lost");
                }
            }
            (runtime.tracker.success(at), count)
        }
        Step::Failed(error) => (runtime.tracker.failure(at, error.to_string()), 0),
    }
}

/// Reads `group` of the device to its end, from its first request.
pub(crate) async fn read_whole(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    group: RegisterGroup,
    services: &WorkerServices,
) -> Step {
    let mut restart = true;
    loop {
        let (step, exchange) = driver
            .read(
                runtime.config.target(),
                &mut runtime.read,
                group,
                restart,
                &services.clock,
            )
            .await;
        record_exchange(services, bus, &runtime.config, exchange);
        restart = false;
        if !matches!(step, Step::More) {
            return step;
        }
    }
}

/// An operator's "read now": every register group of the device, one
/// after the other, ahead of the schedule (a scheduled read of a group
/// under way starts again from its first request); then, for a meter that
/// keeps one, its load profile from the last stored interval.
pub(crate) async fn run_read_now(
    driver: &mut Driver,
    bus: BusId,
    runtime: Option<&mut DeviceRuntime>,
    services: &WorkerServices,
    job: i64,
) {
    let Some(runtime) = runtime else {
        refuse_read_job(&services.pool, job).await;
        return;
    };
    start_job(&services.pool, job).await;
    let mut total = 0;
    let mut failure = None;
    for group in driver.groups(&runtime.config.profile) {
        let lateness = std::time::Duration::ZERO;
        let period = runtime.config.period(group);
        services
            .stats
            .links
            .record_lateness(bus, runtime.config.id, lateness, period);
        let step = read_whole(driver, bus, runtime, group, services).await;
        if let Step::Failed(error) = &step {
            failure = Some(error.to_string());
        }
        let (transition, count) = finish_read(bus, runtime, step, services).await;
        total += count;
        record_status(&services.pool, runtime, transition).await;
        if failure.is_some() {
            break;
        }
    }
    if failure.is_none() {
        total += read_history(driver, bus, runtime, services).await;
    }
    let result = serde_json::json!({ "readings": total });
    let outcome = match &failure {
        Some(error) => Err((JobErrorCode::Device, error.as_str())),
        None => Ok(&result),
    };
    if let Err(error) = update_job_finished(&services.pool, job, outcome).await {
        tracing::warn!(job, %error, "cannot record the read's outcome");
    }
}

/// Fails a read job whose device this worker does not poll.
pub(crate) async fn refuse_read_job(pool: &PgPool, job: i64) {
    let refusal = Err((
        JobErrorCode::NotPolled,
        "the device is not polled on this bus (disabled or removed)",
    ));
    if let Err(error) = update_job_finished(pool, job, refusal).await {
        tracing::warn!(job, %error, "cannot record the read's refusal");
    }
}

/// Records that a job started; a database outage only loses the mark.
pub(crate) async fn start_job(pool: &PgPool, job: i64) {
    if let Err(error) = update_job_started(pool, job, None).await {
        tracing::warn!(job, %error, "cannot record the job's start");
    }
}

/// For a pulse device: keeps its counters continuous across wraps (seeded
/// from what is stored, so a restart loses nothing), records wraps and
/// resets as events, and adds the engineering values of its inputs.
async fn derive_pulses(
    pool: &PgPool,
    runtime: &mut DeviceRuntime,
    inputs: u8,
    readings: &mut Vec<Reading>,
    at: DateTime<Utc>,
) {
    let device = runtime.config.id;
    if runtime.continuity.is_none() {
        match fetch_latest(pool, device).await {
            Ok(stored) => {
                let stored = stored
                    .into_iter()
                    .filter_map(|r| r.obis.parse().ok().map(|code| (code, r.value)));
                runtime.continuity = Some(Continuity::from_stored(stored));
            }
            Err(error) => tracing::warn!(%device, %error, "cannot read stored counts; counting wraps from now"),
        }
    }
    let continuity = runtime.continuity.get_or_insert_with(Continuity::default);
    let changes = continuity.apply(readings);
    for (codes, event, severity, what) in [
        (
            &changes.wrapped,
            "register_rollover",
            "info",
            "wrapped past 2^32 - 1; the count continues",
        ),
        (
            &changes.reset,
            "register_decreased",
            "warning",
            "went back without wrapping: the counter was reset",
        ),
    ] {
        for code in codes {
            let message = format!("{}: counter {code} {what}", runtime.config.name);
            let result = match insert_event(pool, device, event, severity, &message, at).await {
                Ok(()) => update_event_cleared(pool, device, event, at).await,
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::warn!(%device, %error, "cannot store counter event");
            }
        }
    }
    let (derived, problems) = pulse::derive(readings, inputs);
    if !problems.is_empty() {
        tracing::warn!(device = %runtime.config.name, ?problems, "pulse inputs configured out of range; their values not derived");
    }
    readings.extend(derived);
}

/// Stores the device's status and opens or clears its `comm_lost` event.
/// A database outage here is logged, not fatal: the next poll writes again.
pub(crate) async fn record_status(pool: &PgPool, runtime: &DeviceRuntime, transition: Option<Transition>) {
    record_device_status(pool, &runtime.config, &runtime.tracker.status, transition).await;
}

/// [`record_status`] for a device, its status, what changed.
pub(crate) async fn record_device_status(
    pool: &PgPool,
    config: &DeviceConfig,
    status: &DeviceStatus,
    transition: Option<Transition>,
) {
    let id = config.id;
    let at = status.last_attempt_at;
    // The event goes first: whoever sees the new status finds its event too.
    let result = match transition {
        None => Ok(()),
        Some(Transition::Lost) => {
            let message = format!(
                "{} stopped answering: {}",
                config.name,
                status.last_error.as_deref().unwrap_or("no answer")
            );
            insert_event(pool, id, "comm_lost", "warning", &message, at).await
        }
        Some(Transition::Restored) => {
            let message = format!("{} answers again", config.name);
            match update_event_cleared(pool, id, "comm_lost", at).await {
                Ok(()) => match insert_event(pool, id, "comm_restored", "info", &message, at).await {
                    Ok(()) => update_event_cleared(pool, id, "comm_restored", at).await,
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            }
        }
    };
    if let Err(error) = result {
        tracing::warn!(device = %id, %error, "cannot store communication event");
    }
    if let Err(error) = update_device_status(pool, id, status).await {
        tracing::warn!(device = %id, %error, "cannot store device status");
    }
}
