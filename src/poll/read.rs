//! Reading one device: a read of a register group request by request,
//! what a finished read does (pulse values, ingest, reachability, events),
//! and an operator's "read now".

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_modbus::ExceptionCode;

use super::clock_check::{check_clock, meter_clock};
use super::link::{Link, LinkError};
use super::link_stats::Outcome;
use super::stats::PollStats;
use super::status::{Tracker, Transition};
use super::worker::{DeviceConfig, WorkerServices};
use crate::device::decode::decode_blocks;
use crate::device::profile::{Block, RegisterGroup};
use crate::device::pulse::{self, Continuity};
use crate::device::reading::Reading;
use crate::domain::ids::BusId;
use crate::domain::job::JobErrorCode;
use crate::store::devices::{DeviceStatus, update_device_status};
use crate::store::events::{insert_event, update_event_cleared};
use crate::store::jobs::{update_job_finished, update_job_started};
use crate::store::readings::fetch_latest;

/// What the worker keeps of one device between reads.
pub(crate) struct DeviceRuntime {
    pub(crate) config: DeviceConfig,
    pub(crate) tracker: Tracker,
    /// Optional blocks the device answered "illegal data address" for.
    pub(crate) unsupported: HashSet<u16>,
    /// The profile's read requests, per register group.
    pub(crate) blocks: HashMap<RegisterGroup, Vec<Block>>,
    /// Reads under way: one request is sent at a time, so a long read (a
    /// slow device's 43 energy requests) lets due reads of higher class,
    /// and reads due earlier, go between its requests.
    pub(crate) in_progress: HashMap<RegisterGroup, ReadInProgress>,
    /// Pulse counters' wraps, for pulse devices (loaded at their first read).
    pub(crate) continuity: Option<Continuity>,
}

#[derive(Default)]
pub(crate) struct ReadInProgress {
    pub(crate) started: bool,
    pub(crate) next_block: usize,
    pub(crate) answers: Vec<(usize, Vec<u16>)>,
}

/// What one request did to a read.
pub(crate) enum Step {
    /// More requests to go.
    More,
    /// The read is complete.
    Done(Vec<Reading>),
    Failed(LinkError),
}

/// Hands a complete read's values to ingest (pulse values derived first) and
/// updates the device's reachability. Returns the transition and how many
/// values were read.
pub(crate) async fn finish_read(
    bus: BusId,
    runtime: &mut DeviceRuntime,
    step: Step,
    services: &WorkerServices,
) -> (Option<Transition>, usize) {
    let at = services.clock.now();
    match step {
        Step::More => (None, 0),
        Step::Done(mut readings) => {
            if let Some(inputs) = runtime.config.profile.pulse_inputs {
                derive_pulses(&services.pool, runtime, inputs, &mut readings, at).await;
            }
            check_clock(
                &services.pool,
                &runtime.config,
                meter_clock(&readings),
                at,
                services.clock_drift_threshold,
            )
            .await;
            let count = readings.len();
            if count > 0 {
                PollStats::add(&services.stats.readings_queued, count as u64);
                let device = runtime.config.id;
                let batch = readings.into_iter().map(|r| (device, r)).collect();
                if services.ingest.send(batch).await.is_err() {
                    tracing::error!(%bus, "ingest has stopped; readings lost");
                }
            }
            (runtime.tracker.success(at), count)
        }
        Step::Failed(error) => (runtime.tracker.failure(at, error.to_string()), 0),
    }
}

/// An operator's "read now": every register group of the device, one
/// after the other, ahead of the schedule.
pub(crate) async fn run_read_now(
    link: &mut Link,
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
    for group in RegisterGroup::ALL {
        if runtime.blocks.get(&group).is_none_or(Vec::is_empty) {
            continue;
        }
        // A scheduled read of this group under way starts again from its first request.
        runtime.in_progress.remove(&group);
        let step = loop {
            match read_step(link, bus, runtime, group, Instant::now(), services).await {
                Step::More => continue,
                done => break done,
            }
        };
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

/// Sends the next request of a read of `group`, and decodes the read once
/// its last answer is in. The first request of a read records how late it
/// started against the time it was `due`.
pub(crate) async fn read_step(
    link: &mut Link,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    group: RegisterGroup,
    due: Instant,
    services: &WorkerServices,
) -> Step {
    let stats = &services.stats;
    let device = runtime.config.id;
    let blocks = runtime.blocks.get(&group).map(Vec::as_slice).unwrap_or_default();
    let progress = runtime.in_progress.entry(group).or_default();
    while progress.next_block < blocks.len() && runtime.unsupported.contains(&blocks[progress.next_block].start) {
        progress.next_block += 1;
    }
    if let Some(block) = blocks.get(progress.next_block) {
        if !progress.started {
            progress.started = true;
            stats.links.record_lateness(
                bus,
                device,
                Instant::now().saturating_duration_since(due),
                runtime.config.period(group),
            );
        }
        let turnaround = Duration::from_millis(runtime.config.profile.modbus.turnaround_ms);
        let (result, took) = link
            .read_holding(runtime.config.address, block.start, block.count, turnaround)
            .await;
        let outcome = result.as_ref().err().map_or(Outcome::Answered, LinkError::outcome);
        stats.links.record(bus, device, outcome, took);
        match result {
            Ok(words) => progress.answers.push((progress.next_block, words)),
            Err(LinkError::Exception {
                code: ExceptionCode::IllegalDataAddress,
                ..
            }) if block.optional => {
                tracing::info!(device = %runtime.config.name, start = block.start, "optional registers not supported; not asked again");
                runtime.unsupported.insert(block.start);
            }
            Err(error) => {
                runtime.in_progress.remove(&group);
                return Step::Failed(error);
            }
        }
        progress.next_block += 1;
        if progress.next_block < blocks.len() {
            return Step::More;
        }
    }
    let progress = runtime.in_progress.remove(&group).unwrap_or_default();
    let answers: Vec<_> = progress
        .answers
        .iter()
        .map(|(index, words)| (&blocks[*index], words.as_slice()))
        .collect();
    let (readings, invalid) = decode_blocks(
        &runtime.config.profile,
        &answers,
        services.clock.now(),
        runtime.config.zone,
    );
    if !invalid.is_empty() {
        tracing::warn!(device = %runtime.config.name, registers = ?invalid, "device sent values its registers cannot hold; not stored");
    }
    Step::Done(readings)
}

/// Stores the device's status and opens or clears its `comm_lost` event.
/// A database outage here is logged, not fatal: the next poll writes again.
pub(crate) async fn record_status(pool: &PgPool, runtime: &DeviceRuntime, transition: Option<Transition>) {
    record_device_status(pool, &runtime.config, &runtime.tracker.status, transition).await;
}

/// [`record_status`] for any worker: the device, its status, what changed.
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
