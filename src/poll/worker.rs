//! The worker of one bus, whatever its protocol: owns the bus's driver
//! (and through it the line), does one exchange at a time, in the order of
//! priority (operator command > on-demand read > real-time values > energy
//! registers > history registers > load profile; scans in the time no read
//! needs), and reports what it read. [`BusWorker::step`] does one thing at a
//! time, so a test can drive a worker step by step.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::command::{BusCommand, Write};
use super::context::{DeviceConfig, WorkerServices};
use super::history::{history_period, history_settings, read_history};
use super::load_curve::load_curve_period;
use super::outbox::Record;
use super::read::{finish_read, record_status, run_read_now, start_job};
pub use super::read_plan::Work;
use super::read_plan::{ReadPlan, Task};
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
            BusCommand::Write(write) => self.writes.push_back(*write),
        }
    }
}

/// What one step of a worker did: what the tests that drive a worker step
/// by step look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stepped {
    /// A job came in from the bus's claimer (it waits in the worker's queue).
    Queued,
    /// The device list changed and the reads were planned anew.
    Replanned,
    /// A command was sent to a device.
    Wrote(DeviceId),
    /// An on-demand read of a device ran.
    ReadNow(DeviceId),
    /// One address of a scan was probed.
    Probed(u8),
    /// One exchange of a scheduled read; `due` lists what else was due
    /// when it was chosen.
    Read {
        device: DeviceId,
        work: Work,
        due: Vec<(DeviceId, Work)>,
    },
    /// Nothing was due after all (the plan changed while waiting).
    Idle,
}

/// The worker of one bus: its driver, what it knows of each device, and
/// the plan of their reads.
pub struct BusWorker {
    bus: BusId,
    driver: Driver,
    devices: watch::Receiver<Vec<DeviceConfig>>,
    commands: mpsc::Receiver<BusCommand>,
    services: WorkerServices,
    runtimes: HashMap<DeviceId, DeviceRuntime>,
    schedule: ReadPlan,
    asked: Asked,
}

/// How long a stopping worker lets the exchange on the wire finish: above
/// any one request's answer time, so a meter's answer is read and handed to
/// ingest rather than cut off; below what a process stop may take.
pub const FINISH_EXCHANGE: Duration = Duration::from_secs(8);

/// Runs the bus until `shutdown` fires. Nothing new starts once it has; an
/// exchange already on the wire is finished (for up to
/// [`FINISH_EXCHANGE`]) and what it read handed to ingest.
pub async fn run_bus(
    bus: BusId,
    transport: Transport,
    devices: watch::Receiver<Vec<DeviceConfig>>,
    commands: mpsc::Receiver<BusCommand>,
    services: WorkerServices,
    shutdown: Shutdown,
) {
    let mut worker = BusWorker::start(bus, transport, devices, commands, services).await;
    while !shutdown.is_shutdown() {
        let step = worker.step_unless(shutdown.wait());
        let cut_off = async {
            shutdown.wait().await;
            tokio::time::sleep(FINISH_EXCHANGE).await;
        };
        tokio::select! {
            stepped = step => if stepped.is_none() { return },
            () = cut_off => {
                tracing::warn!(%bus, "stopping: the exchange on the wire did not finish in time and is cut off");
                return;
            }
        }
    }
}

impl BusWorker {
    /// A worker for `bus`, with its reads planned for the devices it is given.
    pub async fn start(
        bus: BusId,
        transport: Transport,
        mut devices: watch::Receiver<Vec<DeviceConfig>>,
        commands: mpsc::Receiver<BusCommand>,
        services: WorkerServices,
    ) -> BusWorker {
        let mut driver = Driver::new(&transport, services.request_timeout);
        driver.set_exchange_deadline(services.iec_exchange_deadline);
        services.stats.links.start(bus);
        devices.borrow_and_update();
        let mut worker = BusWorker {
            bus,
            driver,
            devices,
            commands,
            services,
            runtimes: HashMap::new(),
            schedule: ReadPlan::default(),
            asked: Asked::default(),
        };
        worker.plan().await;
        worker
    }

    /// Does the next thing the bus needs, waiting until something is due:
    /// a command, then an on-demand read, then the scheduled read of
    /// highest priority, then a scan in time no read needs. `None` once the
    /// device list or the job inbox is gone (the worker is to stop).
    pub async fn step(&mut self) -> Option<Stepped> {
        self.step_unless(std::future::pending()).await
    }

    /// [`step`](BusWorker::step), or `None` if `stop` completes while the
    /// worker waits for something to do. Once a step has begun (an
    /// exchange is on the wire), it is done whole.
    pub async fn step_unless(&mut self, stop: impl Future<Output = ()>) -> Option<Stepped> {
        let due = self.schedule.next_due();
        // Scans use the time no scheduled read needs.
        let scan_now = !self.asked.scans.is_empty() && due.is_none_or(|due| due > Instant::now());
        tokio::select! {
            biased;
            () = stop => None,
            command = self.commands.recv() => {
                self.asked.push(command?);
                Some(Stepped::Queued)
            }
            changed = self.devices.changed() => {
                changed.ok()?;
                self.plan().await;
                Some(Stepped::Replanned)
            }
            () = std::future::ready(()), if !self.asked.writes.is_empty() => {
                let write = self.asked.writes.pop_front()?;
                let device = write.device;
                run_write(&mut self.driver, self.bus, &mut self.runtimes, &self.services, write).await;
                Some(Stepped::Wrote(device))
            }
            () = std::future::ready(()), if !self.asked.reads.is_empty() => {
                let (job, device) = self.asked.reads.pop_front()?;
                let runtime = self.runtimes.get_mut(&device);
                run_read_now(&mut self.driver, self.bus, runtime, &self.services, job).await;
                Some(Stepped::ReadNow(device))
            }
            () = std::future::ready(()), if scan_now => {
                let scan = self.asked.scans.front_mut()?;
                let address = scan.next;
                if scan_step(&mut self.driver, scan, &self.services).await {
                    self.asked.scans.pop_front();
                }
                Some(Stepped::Probed(address))
            }
            _ = sleep_until_due(due) => Some(self.read_due().await),
        }
    }

    /// Sends the next exchange of the read due first (register groups
    /// before load profiles, see [`ReadPlan::next`]); once the read is
    /// over, records it.
    async fn read_due(&mut self) -> Stepped {
        let now = Instant::now();
        let due: Vec<(DeviceId, Work)> = self.schedule.due(now).collect();
        let Some(task) = self.schedule.next(now).cloned() else {
            return Stepped::Idle;
        };
        let due = due
            .into_iter()
            .filter(|&(d, w)| (d, w) != (task.device, task.work))
            .collect();
        let stepped = Stepped::Read {
            device: task.device,
            work: task.work,
            due,
        };
        let Some(runtime) = self.runtimes.get_mut(&task.device) else {
            return stepped;
        };
        match task.work {
            Work::Read(group) => {
                read_group(
                    &mut self.driver,
                    self.bus,
                    runtime,
                    &mut self.schedule,
                    &self.services,
                    &task,
                    group,
                )
                .await;
            }
            Work::LoadProfile => {
                read_load_profile(&mut self.driver, self.bus, runtime, &mut self.schedule, &self.services).await;
            }
        }
        stepped
    }

    /// Rebuilds the plan for the current device list (each device's
    /// register groups as its driver reads them, and its load profile if
    /// its meter keeps one), keeping what is known of devices that stay and
    /// loading what is stored of new ones. First reads are spread over the
    /// first second so a bus of many devices does not start with a burst
    /// of late reads.
    async fn plan(&mut self) {
        let configs = self.devices.borrow_and_update().clone();
        let services = &self.services;
        let start = Instant::now();
        let mut kept: HashMap<DeviceId, DeviceRuntime> = HashMap::new();
        let mut new = Vec::new();
        for config in &configs {
            match self.runtimes.remove(&config.id) {
                Some(mut old) if old.config.plan_key() == config.plan_key() => {
                    old.read.restart();
                    old.config.limits = config.limits.clone();
                    old.config.password.follow(&config.password);
                    old.config.identity.follow(&config.identity);
                    kept.insert(config.id, old);
                }
                _ => new.push(config),
            }
        }
        let now = services.clock.now();
        let loads = new.iter().map(|config| load_memory(&services.pool, config, now));
        for (config, memory) in new.iter().zip(join_all(loads).await) {
            kept.insert(config.id, DeviceRuntime::new(config, memory));
        }
        self.schedule = ReadPlan::default();
        let spread = Duration::from_millis(1_000 / (configs.len() as u64 + 1));
        for (index, config) in configs.iter().enumerate() {
            let first = start + spread * index as u32;
            for group in self.driver.groups(&config.profile) {
                self.schedule
                    .add(config.id, Work::Read(group), config.period(group), first);
            }
            // A load profile is read over IEC 62056-21 only: a TH40C polled
            // over Modbus keeps one the bus cannot read.
            if let Some(runtime) = kept.get(&config.id)
                && self.driver.reads_load_profile()
                && let Some(settings) = history_settings(runtime)
            {
                self.schedule
                    .add(config.id, Work::LoadProfile, history_period(&settings), first);
            }
            // A COUNTIS keeps its own load curve, read over Modbus.
            if let Some(runtime) = kept.get(&config.id)
                && let Some(period) = load_curve_period(&self.driver, runtime)
            {
                self.schedule.add(config.id, Work::LoadProfile, period, first);
            }
        }
        self.runtimes = kept;
    }
}

/// One exchange of a read of `group`; once the read is over, records it.
async fn read_group(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    schedule: &mut ReadPlan,
    services: &WorkerServices,
    task: &Task,
    group: RegisterGroup,
) {
    if !runtime.read.is_reading(group) {
        let late = Instant::now().saturating_duration_since(task.due);
        let period = runtime.config.period(group);
        services.stats.links.record_lateness(bus, task.device, late, period);
    }
    let (step, exchange) = driver
        .read(
            runtime.config.target(),
            &mut runtime.read,
            group,
            false,
            &services.clock,
        )
        .await;
    record_exchange(services, bus, &runtime.config, exchange);
    let now = Instant::now();
    match &step {
        Step::More => return,
        Step::Done(_) => schedule.succeeded(task.device, task.work, now),
        Step::Failed(error) => {
            tracing::debug!(%bus, device = %task.device, %error, "read failed");
            schedule.failed(task.device, task.work, now);
            if error.is_silence() {
                schedule.hold_device(task.device, task.work);
            }
        }
    }
    let (transition, _) = finish_read(runtime, step, services);
    record_status(&services.outbox, runtime, transition);
}

/// The next stretch of a meter's load profile. A device whose last read
/// failed is not asked for it: the load profile waits for its next readout.
async fn read_load_profile(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    schedule: &mut ReadPlan,
    services: &WorkerServices,
) {
    let device = runtime.config.id;
    let now = Instant::now();
    // A meter in quarantine is not the device's: its history waits too.
    if runtime.tracker.status.consecutive_failures > 0 || runtime.config.identity.quarantined() {
        let readout = schedule.due_of(device, Work::Read(RegisterGroup::Energy));
        let period = history_settings(runtime)
            .map(|s| history_period(&s))
            .or_else(|| load_curve_period(driver, runtime))
            .unwrap_or(Duration::from_secs(60));
        schedule.due_at(device, Work::LoadProfile, readout.unwrap_or(now + period));
        return;
    }
    match read_history(driver, bus, runtime, services).await {
        Ok(read) if read.catching_up => schedule.due_at(device, Work::LoadProfile, Instant::now()),
        Ok(_) => schedule.succeeded(device, Work::LoadProfile, Instant::now()),
        Err(_) => {
            schedule.failed(device, Work::LoadProfile, Instant::now());
        }
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
