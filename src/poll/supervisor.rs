//! Keeps one worker per enabled bus, in step with the database: new buses
//! get a worker, changed device lists are handed to the running worker, a
//! changed transport restarts it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::command::QUEUE;
use super::context::{DeviceConfig, DeviceIdentity, DevicePassword, FieldProgramming, WorkerServices};
use super::jobs::{JobWakers, run_claimer, spawn_job_listener};
use super::outbox::{OutboxSettings, spawn_outbox};
use super::stats::PollStats;
use super::worker::run_bus;
use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::domain::ids::BusId;
use crate::domain::sealing::{OpenError, SecretKey, open};
use crate::domain::secret::SecretName;
use crate::domain::transport::Transport;
use crate::shutdown::{self, Shutdown, Trigger};
use crate::store::buses::fetch_buses;
use crate::store::device_secrets::{StoredSecret, fetch_sealed_secrets};
use crate::store::devices::{DeviceLimits, DeviceRow, DeviceStatus, fetch_devices};
use crate::store::identity::fetch_identities;

/// Polling settings.
#[derive(Debug, Clone)]
pub(crate) struct PollSettings {
    /// How long to wait for an answer.
    pub request_timeout: Duration,
    /// How long one IEC 62056-21 exchange may take in all.
    pub iec_exchange_deadline: Duration,
    /// How often to look for configuration changes in the database.
    pub refresh: Duration,
    /// How far a meter's clock may be off before a `clock_drift` event opens.
    pub clock_drift_threshold: Duration,
    /// What the poller takes for now (read stamps, meter clocks).
    pub clock: Clock,
    /// How long a command waits for field programming, tried how often.
    pub field_programming: FieldProgramming,
    /// The key the devices' passwords are sealed with (`OHMNIBUS_SECRET_KEY`).
    pub secret_key: Option<SecretKey>,
    /// Where the ingest keeps what the database cannot take yet.
    pub outbox: OutboxSettings,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            request_timeout: Duration::from_millis(1_000),
            iec_exchange_deadline: crate::config::DEFAULT_IEC_EXCHANGE_DEADLINE,
            refresh: Duration::from_secs(2),
            clock_drift_threshold: Duration::from_secs(30),
            clock: Clock::System,
            field_programming: FieldProgramming::default(),
            secret_key: None,
            outbox: OutboxSettings::default(),
        }
    }
}

/// How long a look at the bus configuration may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

struct RunningBus {
    transport: Transport,
    devices: watch::Sender<Vec<DeviceConfig>>,
    stop: Trigger,
    task: JoinHandle<()>,
    claimer: JoinHandle<()>,
}

/// Starts polling; returns when `shutdown` fires and every worker and
/// the ingest have finished.
pub(crate) async fn run_poller(
    pool: PgPool,
    profiles: Arc<ProfileSet>,
    settings: PollSettings,
    stats: Arc<PollStats>,
    shutdown: Shutdown,
) {
    let wakers = Arc::new(JobWakers::default());
    let listener = spawn_job_listener(pool.clone(), Arc::clone(&wakers), shutdown.clone());
    let (outbox, outbox_task) = spawn_outbox(
        pool.clone(),
        Arc::clone(&stats),
        settings.clock.clone(),
        settings.outbox.clone(),
    );
    let services = WorkerServices {
        pool: pool.clone(),
        outbox,
        stats,
        profiles: Arc::clone(&profiles),
        request_timeout: settings.request_timeout,
        iec_exchange_deadline: settings.iec_exchange_deadline,
        clock_drift_threshold: settings.clock_drift_threshold,
        clock: settings.clock.clone(),
        field_programming: settings.field_programming,
    };
    let mut running: HashMap<BusId, RunningBus> = HashMap::new();
    loop {
        let key = settings.secret_key.as_ref();
        // A database whose network went silent must not hold the loop (nor
        // a stop): the look is given up after a while and tried again.
        let looked = tokio::select! {
            looked = tokio::time::timeout(REFRESH_TIMEOUT, refresh(&pool, &profiles, key, &services, &wakers, &mut running)) => looked,
            () = shutdown.wait() => break,
        };
        match looked {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read the bus configuration; polling goes on with what it has");
            }
            Err(_) => tracing::warn!(
                "the database did not answer the look at the bus configuration; polling goes on with what it has"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.refresh) => {}
            () = shutdown.wait() => break,
        }
    }
    // Every worker is told at once, so the buses finish their exchanges
    // side by side. A claimer holds nothing that is not in the database (a
    // job it claimed and did not hand over is settled by the next start),
    // so it is not waited for: its query may be one the database never
    // answers.
    let stopping: Vec<_> = running
        .into_values()
        .map(|bus| {
            bus.stop.fire();
            bus.claimer.abort();
            bus.task
        })
        .collect();
    for task in stopping {
        let _ = task.await;
    }
    let _ = listener.await;
    drop(services);
    let _ = outbox_task.await;
}

async fn refresh(
    pool: &PgPool,
    profiles: &ProfileSet,
    key: Option<&SecretKey>,
    services: &WorkerServices,
    wakers: &JobWakers,
    running: &mut HashMap<BusId, RunningBus>,
) -> Result<(), crate::store::StoreError> {
    let buses = fetch_buses(pool).await?;
    let devices = fetch_devices(pool).await?;
    let passwords = fetch_sealed_secrets(pool, SecretName::IecPassword).await?;
    let identities = fetch_identities(pool).await?;
    for bus in &buses {
        services.stats.name_bus(bus.id, &bus.name);
    }
    for device in &devices {
        services.stats.name_device(device.id, &device.name);
    }
    let mut seen = Vec::new();
    for bus in buses.into_iter().filter(|bus| bus.enabled) {
        seen.push(bus.id);
        let zone = bus.time_zone.tz();
        let configs: Vec<DeviceConfig> = devices
            .iter()
            .filter(|device| device.bus_id == bus.id && device.enabled)
            .filter_map(|device| {
                let password = device_password(device, &passwords, key);
                let identity = identities
                    .iter()
                    .find(|(id, _, _)| *id == device.id)
                    .map(|(_, expected, seen)| DeviceIdentity {
                        expected: expected.clone(),
                        seen: seen.clone(),
                        reported_at: None,
                    })
                    .unwrap_or_default();
                device_config(device, profiles, zone, password, identity)
            })
            .collect();
        let transport = bus.transport.0.clone();
        if let Some(current) = running.get(&bus.id) {
            if current.transport == transport && !current.task.is_finished() {
                let changed = {
                    let old = current.devices.borrow();
                    old.len() != configs.len() || old.iter().zip(&configs).any(|(a, b)| a.differs(b))
                };
                if changed {
                    let _ = current.devices.send(configs);
                }
                continue;
            }
            if let Some(old) = running.remove(&bus.id) {
                old.stop.fire();
            }
        }
        tracing::info!(bus = %bus.name, transport = %transport.describe(), devices = configs.len(), "starting bus worker");
        let (devices_tx, devices_rx) = watch::channel(configs);
        let (stop_tx, stop_rx) = shutdown::channel();
        let (jobs, inbox) = mpsc::channel(QUEUE);
        let claimer = tokio::spawn(run_claimer(
            pool.clone(),
            bus.id,
            jobs,
            wakers.register(bus.id),
            services.clock.clone(),
            stop_rx.clone(),
        ));
        let (id, line, services) = (bus.id, transport.clone(), services.clone());
        let task = tokio::spawn(run_bus(id, line, devices_rx, inbox, services, stop_rx));
        running.insert(
            bus.id,
            RunningBus {
                transport,
                devices: devices_tx,
                stop: stop_tx,
                task,
                claimer,
            },
        );
    }
    // Dropping an entry drops its trigger: that bus's worker and claimer stop.
    running.retain(|id, _| seen.contains(id));
    Ok(())
}

/// The device's own password, opened with the server's key, and its lock.
fn device_password(row: &DeviceRow, stored: &[StoredSecret], key: Option<&SecretKey>) -> DevicePassword {
    let name = SecretName::IecPassword;
    let own = stored.iter().find(|secret| secret.device == row.id);
    DevicePassword {
        own: own.map(|secret| match key {
            Some(key) => open(key, row.id, name, &secret.sealed),
            None => Err(OpenError::NoKey { name }),
        }),
        set_at: own.map(|secret| secret.set_at),
        refused_at: row.password_refused_at,
    }
}

fn device_config(
    row: &DeviceRow,
    profiles: &ProfileSet,
    zone: Tz,
    password: DevicePassword,
    identity: DeviceIdentity,
) -> Option<DeviceConfig> {
    let Some(profile) = profiles.get(&row.profile) else {
        tracing::warn!(device = %row.name, profile = %row.profile, "unknown profile; device not polled");
        return None;
    };
    Some(DeviceConfig {
        id: row.id,
        name: row.name.clone(),
        // Devices of IEC 62056-21 buses have no Modbus unit (0, never sent).
        address: row.address.and_then(|unit| u8::try_from(unit).ok()).unwrap_or(0),
        iec_address: row.iec_address.clone(),
        profile,
        realtime: Duration::from_secs(u64::try_from(row.realtime_seconds).unwrap_or(10)),
        energy: Duration::from_secs(u64::try_from(row.energy_seconds).unwrap_or(60)),
        history: Duration::from_secs(u64::try_from(row.history_seconds).unwrap_or(900)),
        zone,
        status: DeviceStatus {
            state: row.state,
            last_success_at: row.last_success_at,
            last_attempt_at: row.last_attempt_at.unwrap_or(row.created_at),
            consecutive_failures: u32::try_from(row.consecutive_failures).unwrap_or(0),
            last_error: row.last_error.clone(),
        },
        limits: DeviceLimits {
            profile: row.profile.clone(),
            ct_ratio: row.ct_ratio,
            max_current_a: row.max_current_a,
            voltage_v: row.voltage_v,
            phases: row.phases,
            energy_unit: row.energy_unit.clone(),
            energy_decimals: row.energy_decimals,
        },
        password,
        identity,
    })
}
