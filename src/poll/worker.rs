//! The worker of one bus: owns the link, sends one request at a time, in the
//! order the schedule says, and reports what it read.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_modbus::ExceptionCode;

use super::command::BusCommand;
use super::ingest::IngestSender;
use super::link::{Link, LinkError};
use super::link_stats::Outcome;
use super::scan::{ScanProgress, probe};
use super::schedule::Schedule;
use super::stats::PollStats;
use super::status::{Tracker, Transition};
use crate::device::decode::decode_blocks;
use crate::device::profile::{Block, Profile, RegisterGroup};
use crate::device::pulse::{self, Continuity};
use crate::device::reading::Reading;
use crate::device::registry::ProfileSet;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::transport::Transport;
use crate::store::devices::{DeviceStatus, update_device_status};
use crate::store::events::{insert_event, update_event_cleared};
use crate::store::read_jobs::{update_read_job_finished, update_read_job_started};
use crate::store::readings::fetch_latest;
use crate::store::scans::{Found, update_scan_finished, update_scan_progress};

/// What a worker needs to know of one device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub id: DeviceId,
    pub name: String,
    pub address: u8,
    pub profile: Arc<Profile>,
    pub realtime: Duration,
    pub energy: Duration,
    /// Zone of the device's site: the zone its clock runs in.
    pub zone: Tz,
    /// Status as stored, to continue from after a restart.
    pub status: DeviceStatus,
}

impl DeviceConfig {
    /// What, when changed, requires the worker to re-plan.
    pub fn plan_key(&self) -> (DeviceId, u8, &str, Duration, Duration, Tz) {
        (
            self.id,
            self.address,
            &self.profile.name,
            self.realtime,
            self.energy,
            self.zone,
        )
    }

    fn period(&self, group: RegisterGroup) -> Duration {
        match group {
            RegisterGroup::Realtime => self.realtime,
            RegisterGroup::Energy => self.energy,
        }
    }
}

/// Shared services a worker uses.
#[derive(Clone)]
pub struct WorkerServices {
    pub pool: PgPool,
    pub ingest: IngestSender,
    pub stats: Arc<PollStats>,
    pub profiles: Arc<ProfileSet>,
    pub request_timeout: Duration,
}

struct DeviceRuntime {
    config: DeviceConfig,
    tracker: Tracker,
    /// Optional blocks the device answered "illegal data address" for.
    unsupported: HashSet<u16>,
    /// The profile's read requests, per register group.
    blocks: HashMap<RegisterGroup, Vec<Block>>,
    /// Reads under way: one request is sent at a time, so a long read (a
    /// slow device's 43 energy requests) lets due reads of higher class,
    /// and reads due earlier, go between its requests.
    in_progress: HashMap<RegisterGroup, ReadInProgress>,
    /// Pulse counters' wraps, for pulse devices (loaded at their first read).
    continuity: Option<Continuity>,
}

#[derive(Default)]
struct ReadInProgress {
    started: bool,
    next_block: usize,
    answers: Vec<(usize, Vec<u16>)>,
}

/// What one request did to a read.
enum Step {
    /// More requests to go.
    More,
    /// The read is complete.
    Done(Vec<Reading>),
    Failed(LinkError),
}

/// Runs the bus until `shutdown` turns true.
pub async fn run_bus(
    bus: BusId,
    transport: Transport,
    mut devices: watch::Receiver<Vec<DeviceConfig>>,
    mut commands: mpsc::Receiver<BusCommand>,
    services: WorkerServices,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut link = Link::new(transport, services.request_timeout);
    services.stats.links.start(bus);
    let mut runtimes: HashMap<DeviceId, DeviceRuntime> = HashMap::new();
    let mut schedule = Schedule::default();
    let mut scans: VecDeque<ScanProgress> = VecDeque::new();
    // Operator reads come before everything scheduled (DESIGN.md: operator
    // command > on-demand read > real-time > energy).
    let mut read_now: VecDeque<(i64, DeviceId)> = VecDeque::new();
    plan(&devices.borrow_and_update(), &mut runtimes, &mut schedule);
    loop {
        let due = schedule.next_due();
        // Scans use the time no scheduled read needs.
        let scan_now = !scans.is_empty() && due.is_none_or(|due| due > Instant::now());
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
            }
            Some(command) = commands.recv() => match command {
                BusCommand::Scan { job, first, last } => scans.push_back(ScanProgress::new(job, first, last)),
                BusCommand::ReadNow { job, device } => read_now.push_back((job, device)),
            },
            changed = devices.changed() => {
                if changed.is_err() { return; }
                plan(&devices.borrow_and_update(), &mut runtimes, &mut schedule);
            }
            () = std::future::ready(()), if !read_now.is_empty() => {
                if let Some((job, device)) = read_now.pop_front() {
                    run_read_now(&mut link, bus, runtimes.get_mut(&device), &services, job).await;
                }
            }
            () = std::future::ready(()), if scan_now => {
                if let Some(scan) = scans.front_mut() {
                    let finished = scan_step(&mut link, scan, &services).await;
                    if finished {
                        scans.pop_front();
                    }
                }
            }
            _ = sleep_until_due(due) => {
                let task = schedule.next(Instant::now()).cloned().expect("a task was due");
                let Some(runtime) = runtimes.get_mut(&task.device) else { continue };
                let step = read_step(&mut link, bus, runtime, task.group, task.due, &services.stats).await;
                let now = Instant::now();
                match &step {
                    Step::More => continue,
                    Step::Done(_) => schedule.succeeded(task.device, task.group, now),
                    Step::Failed(error) => {
                        tracing::debug!(%bus, device = %task.device, %error, "read failed");
                        schedule.failed(task.device, task.group, now);
                    }
                }
                let (transition, _) = finish_read(bus, runtime, step, &services).await;
                record_status(&services.pool, runtime, transition).await;
            }
        }
    }
}

/// Hands a complete read's values to ingest (pulse values derived first) and
/// updates the device's reachability. Returns the transition and how many
/// values were read.
async fn finish_read(
    bus: BusId,
    runtime: &mut DeviceRuntime,
    step: Step,
    services: &WorkerServices,
) -> (Option<Transition>, usize) {
    let at = Utc::now();
    match step {
        Step::More => (None, 0),
        Step::Done(mut readings) => {
            if let Some(inputs) = runtime.config.profile.pulse_inputs {
                derive_pulses(&services.pool, runtime, inputs, &mut readings).await;
            }
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
async fn run_read_now(
    link: &mut Link,
    bus: BusId,
    runtime: Option<&mut DeviceRuntime>,
    services: &WorkerServices,
    job: i64,
) {
    let Some(runtime) = runtime else {
        let _ = update_read_job_finished(
            &services.pool,
            job,
            Err("the device is not polled on this bus (disabled or removed)"),
        )
        .await;
        return;
    };
    if let Err(error) = update_read_job_started(&services.pool, job).await {
        tracing::warn!(job, %error, "cannot record the read's start");
    }
    let mut total = 0;
    let mut failure = None;
    for group in RegisterGroup::ALL {
        if runtime.blocks.get(&group).is_none_or(Vec::is_empty) {
            continue;
        }
        // A scheduled read of this group under way starts again from its first request.
        runtime.in_progress.remove(&group);
        let step = loop {
            match read_step(link, bus, runtime, group, Instant::now(), &services.stats).await {
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
    let outcome = match &failure {
        Some(error) => Err(error.as_str()),
        None => Ok(total),
    };
    if let Err(error) = update_read_job_finished(&services.pool, job, outcome).await {
        tracing::warn!(job, %error, "cannot record the read's outcome");
    }
}

/// For a pulse device: keeps its counters continuous across wraps (seeded
/// from what is stored, so a restart loses nothing), records wraps and
/// resets as events, and adds the engineering values of its inputs.
async fn derive_pulses(pool: &PgPool, runtime: &mut DeviceRuntime, inputs: u8, readings: &mut Vec<Reading>) {
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
    let at = Utc::now();
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

/// Probes the next address of a scan and records progress. Returns true when
/// the scan has ended.
async fn scan_step(link: &mut Link, scan: &mut ScanProgress, services: &WorkerServices) -> bool {
    let address = scan.next;
    let failure = match probe(link, address, &services.profiles).await {
        Ok(Some(profiles)) => {
            scan.found.push(Found { address, profiles });
            None
        }
        Ok(None) => None,
        Err(error) => Some(error.to_string()),
    };
    scan.probed += 1;
    scan.next = address.wrapping_add(1);
    let result = match &failure {
        Some(error) => update_scan_finished(&services.pool, scan.job, Some(error)).await,
        None => match update_scan_progress(&services.pool, scan.job, scan.probed, &scan.found).await {
            Ok(()) if scan.is_done() => update_scan_finished(&services.pool, scan.job, None).await,
            other => other,
        },
    };
    if let Err(error) = result {
        tracing::warn!(job = scan.job, %error, "cannot record scan progress");
    }
    failure.is_some() || scan.is_done()
}

async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Rebuilds the schedule for a new device list, keeping what is known of
/// devices that stay. First reads are spread over the first second so a bus
/// of many devices does not start with a burst of late reads.
fn plan(configs: &[DeviceConfig], runtimes: &mut HashMap<DeviceId, DeviceRuntime>, schedule: &mut Schedule) {
    let mut kept: HashMap<DeviceId, DeviceRuntime> = HashMap::new();
    for config in configs {
        let runtime = match runtimes.remove(&config.id) {
            Some(mut old) if old.config.plan_key() == config.plan_key() => {
                old.in_progress.clear();
                old
            }
            _ => DeviceRuntime {
                tracker: Tracker::new(config.status.clone()),
                blocks: RegisterGroup::ALL
                    .iter()
                    .map(|&g| (g, config.profile.blocks(g)))
                    .collect(),
                config: config.clone(),
                unsupported: HashSet::new(),
                in_progress: HashMap::new(),
                continuity: None,
            },
        };
        kept.insert(config.id, runtime);
    }
    *runtimes = kept;
    *schedule = Schedule::default();
    let start = Instant::now();
    let spread = Duration::from_millis(1_000 / (configs.len() as u64 + 1));
    for (index, config) in configs.iter().enumerate() {
        let first = start + spread * index as u32;
        for group in RegisterGroup::ALL {
            if !kept_blocks_empty(runtimes, config.id, group) {
                schedule.add(config.id, group, config.period(group), first);
            }
        }
    }
}

fn kept_blocks_empty(runtimes: &HashMap<DeviceId, DeviceRuntime>, device: DeviceId, group: RegisterGroup) -> bool {
    runtimes
        .get(&device)
        .and_then(|r| r.blocks.get(&group))
        .is_none_or(Vec::is_empty)
}

/// Sends the next request of a read of `group`, and decodes the read once
/// its last answer is in. The first request of a read records how late it
/// started against the time it was `due`.
async fn read_step(
    link: &mut Link,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    group: RegisterGroup,
    due: Instant,
    stats: &PollStats,
) -> Step {
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
    let (readings, invalid) = decode_blocks(&runtime.config.profile, &answers, Utc::now(), runtime.config.zone);
    if !invalid.is_empty() {
        tracing::warn!(device = %runtime.config.name, registers = ?invalid, "device sent values its registers cannot hold; not stored");
    }
    Step::Done(readings)
}

/// Stores the device's status and opens or clears its `comm_lost` event.
/// A database outage here is logged, not fatal: the next poll writes again.
async fn record_status(pool: &PgPool, runtime: &DeviceRuntime, transition: Option<Transition>) {
    let id = runtime.config.id;
    let status = &runtime.tracker.status;
    if let Err(error) = update_device_status(pool, id, status).await {
        tracing::warn!(device = %id, %error, "cannot store device status");
    }
    let at = status.last_attempt_at;
    let result = match transition {
        None => return,
        Some(Transition::Lost) => {
            let message = format!(
                "{} stopped answering: {}",
                runtime.config.name,
                status.last_error.as_deref().unwrap_or("no answer")
            );
            insert_event(pool, id, "comm_lost", "warning", &message, at).await
        }
        Some(Transition::Restored) => {
            let message = format!("{} answers again", runtime.config.name);
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
}
