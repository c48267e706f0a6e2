//! The worker of one IEC 62056-21 bus: owns the line, holds it for one whole
//! meter session at a time (sign-on to end of readout, or programming mode
//! to its break), and reads each device on its schedule: a data readout
//! every energy period, and the meter's load profile, resumed from the last
//! stored interval, once per recorded interval.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::clock_check::{check_clock, readout_clock};
use super::command::BusCommand;
use super::iec_line::{IecLine, session_config};
use super::link_stats::Outcome;
use super::meter_events::{record_conditions, record_event_registers};
use super::read::{record_device_status, refuse_read_job, start_job};
use super::schedule::Schedule;
use super::stats::PollStats;
use super::status::Tracker;
use super::worker::{DeviceConfig, WorkerServices};
use crate::device::iec::LoadProfileSettings;
use crate::device::iec_decode::decode_readout;
use crate::device::iec_load_profile::{intervals_from_blocks, profile_request};
use crate::device::profile::RegisterGroup;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::JobErrorCode;
use crate::domain::transport::Transport;
use crate::metering::clock_drift::{CLOCK_DRIFT, flag_clock_uncertain};
use crate::metering::validation::flag_interval_spikes;
use crate::protocol::iec62056::session::{SessionConfig, SessionError};
use crate::store::devices::fetch_device_limits;
use crate::store::events::fetch_event_spans;
use crate::store::intervals::{fetch_last_meter_interval, insert_meter_intervals, update_profile_read_at};
use crate::store::jobs::update_job_finished;

/// What the worker keeps of one device.
struct IecDevice {
    config: DeviceConfig,
    tracker: Tracker,
    /// When the load profile is next due (it is read after a readout).
    profile_due: Instant,
    /// While catching up: where the next chunk starts (past a stretch the
    /// meter holds nothing for, which stored intervals would not show).
    profile_from: Option<DateTime<Utc>>,
}

/// Runs the bus until `shutdown` turns true.
pub async fn run_iec_bus(
    bus: BusId,
    transport: Transport,
    mut devices: watch::Receiver<Vec<DeviceConfig>>,
    mut commands: mpsc::Receiver<BusCommand>,
    services: WorkerServices,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = session_config(&transport, services.request_timeout);
    let mut line: Option<IecLine> = None;
    let mut known: HashMap<DeviceId, IecDevice> = HashMap::new();
    let mut schedule = Schedule::default();
    let mut read_now: VecDeque<(i64, DeviceId)> = VecDeque::new();
    services.stats.links.start(bus);
    plan(&devices.borrow_and_update(), &mut known, &mut schedule);
    loop {
        let due = schedule.next_due();
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
            }
            Some(command) = commands.recv() => match command {
                BusCommand::ReadNow { job, device } => read_now.push_back((job, device)),
                BusCommand::Write(write) => {
                    // The API refuses these for IEC devices; a job that got
                    // here anyway is failed, not left queued.
                    let refusal = Err((JobErrorCode::Unsupported, "commands are Modbus writes; an IEC 62056-21 bus takes none"));
                    if let Err(error) = update_job_finished(&services.pool, write.job, refusal).await {
                        tracing::warn!(job = write.job, %error, "cannot record the command's refusal");
                    }
                }
                BusCommand::Scan { job, .. } => {
                    let refusal = "a scan probes Modbus unit addresses; an IEC 62056-21 line has none to probe";
                    if let Err(error) = update_job_finished(&services.pool, job, Err((JobErrorCode::Unsupported, refusal))).await {
                        tracing::warn!(job, %error, "cannot record the scan's refusal");
                    }
                }
            },
            changed = devices.changed() => {
                if changed.is_err() { return; }
                plan(&devices.borrow_and_update(), &mut known, &mut schedule);
            }
            () = std::future::ready(()), if !read_now.is_empty() => {
                if let Some((job, device)) = read_now.pop_front() {
                    let device = known.get_mut(&device);
                    read_now_job(&mut line, &transport, &config, bus, device, &services, job).await;
                }
            }
            _ = sleep_until_due(due) => {
                let Some(task) = schedule.next(Instant::now()).cloned() else { continue };
                let Some(device) = known.get_mut(&task.device) else { continue };
                let late = Instant::now().saturating_duration_since(task.due);
                services.stats.links.record_lateness(bus, device.config.id, late, device.config.energy);
                let with_profile = Instant::now() >= device.profile_due;
                let result = read_device(&mut line, &transport, &config, bus, device, &services, with_profile).await;
                let now = Instant::now();
                match &result {
                    Ok(_) => schedule.succeeded(task.device, task.group, now),
                    Err(_) => { schedule.failed(task.device, task.group, now); }
                }
            }
        }
    }
}

async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// One readout per device and energy period; first reads spread over a second.
fn plan(configs: &[DeviceConfig], known: &mut HashMap<DeviceId, IecDevice>, schedule: &mut Schedule) {
    let mut kept = HashMap::new();
    let start = Instant::now();
    for config in configs {
        let device = match known.remove(&config.id) {
            Some(old) if old.config.plan_key() == config.plan_key() => old,
            _ => IecDevice {
                tracker: Tracker::new(config.status.clone()),
                config: config.clone(),
                profile_due: start,
                profile_from: None,
            },
        };
        kept.insert(config.id, device);
    }
    *known = kept;
    *schedule = Schedule::default();
    let spread = Duration::from_millis(1_000 / (configs.len() as u64 + 1));
    for (index, config) in configs.iter().enumerate() {
        schedule.add(
            config.id,
            RegisterGroup::Energy,
            config.energy,
            start + spread * index as u32,
        );
    }
}

/// An operator's "read now": the readout and the load profile, at once.
async fn read_now_job(
    line: &mut Option<IecLine>,
    transport: &Transport,
    config: &SessionConfig,
    bus: BusId,
    device: Option<&mut IecDevice>,
    services: &WorkerServices,
    job: i64,
) {
    let Some(device) = device else {
        refuse_read_job(&services.pool, job).await;
        return;
    };
    start_job(&services.pool, job).await;
    let result = read_device(line, transport, config, bus, device, services, true).await;
    let readings = serde_json::json!({ "readings": result.as_ref().ok() });
    let outcome = match &result {
        Ok(_) => Ok(&readings),
        Err(error) => Err((JobErrorCode::Device, error.as_str())),
    };
    if let Err(error) = update_job_finished(&services.pool, job, outcome).await {
        tracing::warn!(job, %error, "cannot record the read's outcome");
    }
}

/// Reads one device: its readout, then (when asked) its load profile.
/// Returns how many values and intervals were stored, or why it failed.
async fn read_device(
    line: &mut Option<IecLine>,
    transport: &Transport,
    session: &SessionConfig,
    bus: BusId,
    device: &mut IecDevice,
    services: &WorkerServices,
    with_profile: bool,
) -> Result<usize, String> {
    let address = device.config.iec_address.clone().unwrap_or_default();
    let started = Instant::now();
    let readout = match line {
        Some(open) => open.readout(&address).await,
        None => match IecLine::open(transport, session.clone()).await {
            Ok(open) => line.insert(open).readout(&address).await,
            Err(error) => Err(error),
        },
    };
    services
        .stats
        .links
        .record(bus, device.config.id, outcome(&readout), started.elapsed());
    let at = services.clock.now();
    let readout = match readout {
        Ok(readout) => readout,
        Err(error) => {
            if error.is_link_failure() {
                *line = None;
            }
            let message = error.to_string();
            let transition = device.tracker.failure(at, message.clone());
            record_device_status(&services.pool, &device.config, &device.tracker.status, transition).await;
            return Err(message);
        }
    };
    let Some(iec) = device.config.profile.iec62056.as_ref() else {
        return Err(format!(
            "profile {} has no [iec62056] section",
            device.config.profile.name
        ));
    };
    let decoded = decode_readout(iec, &readout.data_sets, at, device.config.zone);
    if !decoded.unlisted.is_empty() || !decoded.invalid.is_empty() {
        tracing::debug!(device = %device.config.name, unlisted = ?decoded.unlisted, invalid = ?decoded.invalid, "readout values not stored");
    }
    let mut count = decoded.readings.len();
    record_conditions(&services.pool, &device.config, &decoded, iec, at).await;
    record_event_registers(&services.pool, &device.config, &decoded, iec).await;
    let meter = readout_clock(&readout.data_sets);
    check_clock(
        &services.pool,
        &device.config,
        meter,
        at,
        services.clock_drift_threshold,
    )
    .await;
    if count > 0 {
        PollStats::add(&services.stats.readings_queued, count as u64);
        let batch = decoded.readings.into_iter().map(|r| (device.config.id, r)).collect();
        if services.ingest.send(batch).await.is_err() {
            tracing::error!(%bus, "ingest has stopped; readings lost");
        }
    }
    let transition = device.tracker.success(at);
    record_device_status(&services.pool, &device.config, &device.tracker.status, transition).await;
    if with_profile && let Some(settings) = &iec.load_profile {
        let password = iec.password.clone().unwrap_or_default();
        match read_load_profile(line, bus, device, services, settings, &address, &password).await {
            Ok((stored, next)) => {
                count += stored;
                // Catching up: the next chunk goes with the next readout,
                // so the line is shared between chunks; else one interval on.
                device.profile_from = next;
                device.profile_due = match next {
                    Some(_) => Instant::now(),
                    None => Instant::now() + Duration::from_secs(u64::from(settings.interval_minutes) * 60),
                };
            }
            Err(error) => {
                tracing::warn!(device = %device.config.name, %error, "load profile not read; retried at the next readout");
            }
        }
    }
    Ok(count)
}

/// Reads the load profile from the last stored interval (or the profile's
/// backfill depth), at most `chunk_days` at a time, and stores what is new.
/// Returns how many intervals were new and, while catching up, where the
/// next chunk starts.
async fn read_load_profile(
    line: &mut Option<IecLine>,
    bus: BusId,
    device: &IecDevice,
    services: &WorkerServices,
    settings: &LoadProfileSettings,
    address: &str,
    password: &str,
) -> Result<(usize, Option<DateTime<Utc>>), String> {
    let id = device.config.id;
    let last = fetch_last_meter_interval(&services.pool, id)
        .await
        .map_err(|error| error.to_string())?;
    let stored_until = match last {
        Some(start) => start + TimeDelta::minutes(i64::from(settings.interval_minutes)),
        None => services.clock.now() - TimeDelta::days(i64::from(settings.backfill_days)),
    };
    let from = device.profile_from.map_or(stored_until, |next| next.max(stored_until));
    let until = from + TimeDelta::days(i64::from(settings.chunk_days));
    let asked_at = services.clock.now();
    let to = (until < asked_at).then_some(until);
    let request = profile_request(settings, from, to, device.config.zone);
    let Some(open) = line.as_mut() else {
        return Err("the line closed after the readout".to_owned());
    };
    let started = Instant::now();
    let blocks = open.load_profile(address, password, &request).await;
    services
        .stats
        .links
        .record(bus, id, outcome(&blocks), started.elapsed());
    let blocks = blocks.map_err(|error| {
        if error.is_link_failure() {
            *line = None;
        }
        error.to_string()
    })?;
    let (mut intervals, problems) = intervals_from_blocks(settings, &blocks, device.config.zone);
    if !problems.is_empty() {
        tracing::warn!(device = %device.config.name, ?problems, "load profile rows not stored");
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
        .and_then(|configured| configured.physical(device.config.profile.max_current_a));
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

/// How an exchange ended, for the bus statistics.
fn outcome<T>(result: &Result<T, SessionError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Answered,
        Err(SessionError::Timeout { .. }) => Outcome::Timeout,
        Err(SessionError::BadBcc { .. }) => Outcome::CrcError,
        Err(SessionError::MeterError(_) | SessionError::PasswordRefused | SessionError::Nak { .. }) => {
            Outcome::Exception
        }
        Err(_) => Outcome::TransportError,
    }
}
