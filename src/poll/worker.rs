//! The worker of one bus, whatever its protocol: owns the bus's driver
//! (and through it the line), does one exchange at a time, in the order of
//! priority (operator command > on-demand read > real-time values > energy
//! registers > load profile and history backfill; scans in the time no
//! read needs), and reports what it read.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::command::{BusCommand, Write};
use super::context::{DeviceConfig, WorkerServices};
use super::history::{history_settings, read_history};
use super::outbox::Record;
use super::read::{finish_read, record_status, run_read_now, start_job};
use super::read_plan::ReadPlan;
use super::runtime::{DeviceRuntime, load_memory, record_exchange};
use super::scan::ScanProgress;
use super::write::run_write;
use crate::device::driver::{Driver, DriverError, Step};
use crate::device::profile::RegisterGroup;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::JobErrorCode;
use crate::domain::transport::Transport;
use crate::shutdown::Shutdown;
use crate::store::scans::{Found, ScanFindings};

/// Work operators asked for, waiting for the line, each kind in the order
/// it came.
#[derive(Default)]
struct Asked {
    writes: VecDeque<Write>,
    reads: VecDeque<(i64, DeviceId)>,
    scans: VecDeque<ScanProgress>,
}

impl Asked {
    fn push(&mut self, command: BusCommand) {
        match command {
            BusCommand::Scan { job, first, last } => self.scans.push_back(ScanProgress::new(job, first, last)),
            BusCommand::ReadNow { job, device } => self.reads.push_back((job, device)),
            BusCommand::Write(write) => self.writes.push_back(write),
        }
    }
}

/// Runs the bus until `shutdown` fires.
pub async fn run_bus(
    bus: BusId,
    transport: Transport,
    mut devices: watch::Receiver<Vec<DeviceConfig>>,
    mut commands: mpsc::Receiver<BusCommand>,
    services: WorkerServices,
    shutdown: Shutdown,
) {
    let mut driver = Driver::new(&transport, services.request_timeout);
    services.stats.links.start(bus);
    let mut runtimes: HashMap<DeviceId, DeviceRuntime> = HashMap::new();
    let mut schedule = ReadPlan::default();
    let mut asked = Asked::default();
    let configs = devices.borrow_and_update().clone();
    let groups = configs.iter().map(|config| driver.groups(&config.profile)).collect();
    plan(&configs, groups, &mut runtimes, &mut schedule, &services).await;
    loop {
        let due = schedule.next_due();
        // Scans use the time no scheduled read needs.
        let scan_now = !asked.scans.is_empty() && due.is_none_or(|due| due > Instant::now());
        tokio::select! {
            biased;
            () = shutdown.wait() => return,
            Some(command) = commands.recv() => asked.push(command),
            changed = devices.changed() => {
                if changed.is_err() { return; }
                let configs = devices.borrow_and_update().clone();
                let groups = configs.iter().map(|config| driver.groups(&config.profile)).collect();
                plan(&configs, groups, &mut runtimes, &mut schedule, &services).await;
            }
            () = std::future::ready(()), if !asked.writes.is_empty() => {
                if let Some(write) = asked.writes.pop_front() {
                    let runtime = runtimes.get_mut(&write.device);
                    run_write(&mut driver, bus, runtime, &services, write).await;
                }
            }
            () = std::future::ready(()), if !asked.reads.is_empty() => {
                if let Some((job, device)) = asked.reads.pop_front() {
                    run_read_now(&mut driver, bus, runtimes.get_mut(&device), &services, job).await;
                }
            }
            () = std::future::ready(()), if scan_now => {
                if let Some(scan) = asked.scans.front_mut()
                    && scan_step(&mut driver, scan, &services).await
                {
                    asked.scans.pop_front();
                }
            }
            _ = sleep_until_due(due) => {
                read_due(&mut driver, bus, &mut runtimes, &mut schedule, &services).await;
            }
        }
    }
}

/// Sends the next exchange of the read due first; once the read is over,
/// records it, and reads the device's load profile when that is due too.
async fn read_due(
    driver: &mut Driver,
    bus: BusId,
    runtimes: &mut HashMap<DeviceId, DeviceRuntime>,
    schedule: &mut ReadPlan,
    services: &WorkerServices,
) {
    let Some(task) = schedule.next(Instant::now()).cloned() else {
        return;
    };
    let Some(runtime) = runtimes.get_mut(&task.device) else {
        return;
    };
    if !runtime.read.is_reading(task.group) {
        let late = Instant::now().saturating_duration_since(task.due);
        let period = runtime.config.period(task.group);
        services.stats.links.record_lateness(bus, task.device, late, period);
    }
    let with_history = Instant::now() >= runtime.history_due && history_settings(runtime).is_some();
    let (step, exchange) = driver
        .read(
            runtime.config.target(),
            &mut runtime.read,
            task.group,
            false,
            &services.clock,
        )
        .await;
    record_exchange(services, bus, &runtime.config, exchange);
    let now = Instant::now();
    match &step {
        Step::More => return,
        Step::Done(_) => schedule.succeeded(task.device, task.group, now),
        Step::Failed(error) => {
            tracing::debug!(%bus, device = %task.device, %error, "read failed");
            schedule.failed(task.device, task.group, now);
        }
    }
    let read = matches!(step, Step::Done(_));
    let (transition, _) = finish_read(runtime, step, services);
    record_status(&services.outbox, runtime, transition);
    if read && with_history {
        read_history(driver, bus, runtime, services).await;
    }
}

/// Probes the next address of a scan and records progress. Returns true when
/// the scan has ended.
async fn scan_step(driver: &mut Driver, scan: &mut ScanProgress, services: &WorkerServices) -> bool {
    let address = scan.next;
    if scan.probed == 0 {
        start_job(&services.outbox, scan.job);
    }
    let failure = match driver.probe(address, &services.profiles).await {
        Ok(Some(profiles)) => {
            scan.found.push(Found { address, profiles });
            None
        }
        Ok(None) => None,
        Err(error @ DriverError::Unsupported(_)) => Some((JobErrorCode::Unsupported, error.to_string())),
        Err(error) => Some((JobErrorCode::Device, error.to_string())),
    };
    scan.probed += 1;
    scan.next = address.wrapping_add(1);
    let findings = serde_json::json!(ScanFindings {
        probed: scan.probed,
        found: scan.found.clone(),
    });
    let ended = failure.is_some() || scan.is_done();
    let job = scan.job;
    match failure {
        Some(failure) => services.outbox.send(Record::JobFinished {
            job,
            outcome: Err(failure),
        }),
        None => {
            services.outbox.send(Record::JobProgress {
                job,
                progress: findings.clone(),
            });
            if scan.is_done() {
                let outcome = Ok(findings);
                services.outbox.send(Record::JobFinished { job, outcome });
            }
        }
    }
    ended
}

async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Rebuilds the schedule for a new device list (each device's register
/// groups as its driver reads them), keeping what is known of devices that
/// stay, and loading what is stored of new ones. First reads
/// are spread over the first second so a bus of many devices does not
/// start with a burst of late reads.
async fn plan(
    configs: &[DeviceConfig],
    groups: Vec<Vec<RegisterGroup>>,
    runtimes: &mut HashMap<DeviceId, DeviceRuntime>,
    schedule: &mut ReadPlan,
    services: &WorkerServices,
) {
    let start = Instant::now();
    let mut kept: HashMap<DeviceId, DeviceRuntime> = HashMap::new();
    let mut new = Vec::new();
    for config in configs {
        match runtimes.remove(&config.id) {
            Some(mut old) if old.config.plan_key() == config.plan_key() => {
                old.read.restart();
                old.config.limits = config.limits.clone();
                kept.insert(config.id, old);
            }
            _ => new.push(config),
        }
    }
    let now = services.clock.now();
    let loads = new.iter().map(|config| load_memory(&services.pool, config, now));
    for (config, memory) in new.iter().zip(join_all(loads).await) {
        kept.insert(config.id, DeviceRuntime::new(config, memory, start));
    }
    *runtimes = kept;
    *schedule = ReadPlan::default();
    let spread = Duration::from_millis(1_000 / (configs.len() as u64 + 1));
    for (index, (config, groups)) in configs.iter().zip(groups).enumerate() {
        let first = start + spread * index as u32;
        for group in groups {
            schedule.add(config.id, group, config.period(group), first);
        }
    }
}
