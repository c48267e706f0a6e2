//! The worker of one bus: owns the link, sends one request at a time, in the
//! order the schedule says, and reports what it read.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::command::{BusCommand, Write};
use super::ingest::IngestSender;
use super::link::Link;
use super::read::{DeviceRuntime, Step, finish_read, read_step, record_status, run_read_now, start_job};
use super::scan::{ScanProgress, probe};
use super::schedule::Schedule;
use super::stats::PollStats;
use super::status::Tracker;
use super::write::run_write;
use crate::device::profile::{Profile, RegisterGroup};
use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::JobErrorCode;
use crate::domain::transport::Transport;
use crate::store::devices::DeviceStatus;
use crate::store::jobs::{update_job_finished, update_job_progress};
use crate::store::scans::{Found, ScanFindings};

/// What a worker needs to know of one device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub id: DeviceId,
    pub name: String,
    /// Modbus unit address (0 on an IEC 62056-21 bus).
    pub address: u8,
    /// IEC 62056-21 device address (none on a Modbus bus).
    pub iec_address: Option<String>,
    pub profile: Arc<Profile>,
    pub realtime: Duration,
    pub energy: Duration,
    pub history: Duration,
    /// Zone of the device's site: the zone its clock runs in.
    pub zone: Tz,
    /// Status as stored, to continue from after a restart.
    pub status: DeviceStatus,
}

impl DeviceConfig {
    /// What, when changed, requires the worker to re-plan.
    pub fn plan_key(&self) -> (DeviceId, u8, Option<&str>, &str, [Duration; 3], Tz) {
        (
            self.id,
            self.address,
            self.iec_address.as_deref(),
            &self.profile.name,
            [self.realtime, self.energy, self.history],
            self.zone,
        )
    }

    pub(crate) fn period(&self, group: RegisterGroup) -> Duration {
        match group {
            RegisterGroup::Realtime => self.realtime,
            RegisterGroup::Energy => self.energy,
            RegisterGroup::History => self.history,
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
    /// How far a meter's clock may be off before a `clock_drift` event opens.
    pub clock_drift_threshold: Duration,
    /// What the worker takes for now: read stamps, clock checks.
    pub clock: Clock,
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
    // Commands to devices come before those.
    let mut writes: VecDeque<Write> = VecDeque::new();
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
                BusCommand::Write(write) => writes.push_back(write),
            },
            changed = devices.changed() => {
                if changed.is_err() { return; }
                plan(&devices.borrow_and_update(), &mut runtimes, &mut schedule);
            }
            () = std::future::ready(()), if !writes.is_empty() => {
                if let Some(write) = writes.pop_front() {
                    let runtime = runtimes.get_mut(&write.device);
                    run_write(&mut link, bus, runtime, &services, write).await;
                }
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
                let step = read_step(&mut link, bus, runtime, task.group, task.due, &services).await;
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

/// Probes the next address of a scan and records progress. Returns true when
/// the scan has ended.
async fn scan_step(link: &mut Link, scan: &mut ScanProgress, services: &WorkerServices) -> bool {
    let address = scan.next;
    if scan.probed == 0 {
        start_job(&services.pool, scan.job).await;
    }
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
    let findings = serde_json::json!(ScanFindings {
        probed: scan.probed,
        found: scan.found.clone(),
    });
    let result = match &failure {
        Some(error) => update_job_finished(&services.pool, scan.job, Err((JobErrorCode::Device, error))).await,
        None => match update_job_progress(&services.pool, scan.job, &findings).await {
            Ok(()) if scan.is_done() => update_job_finished(&services.pool, scan.job, Ok(&findings)).await,
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
