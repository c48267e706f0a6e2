//! Commands to devices: the writes of a typed command, ahead of every read
//! on the bus (operator command > on-demand read > real-time > energy), each
//! checked on the devices it reaches (`write_verify`), and what came of it.
//!
//! For each planned write, in order: the registers its profile verifies it
//! by are read on each device it reaches (`before`); a clock write is held
//! to the rules of its profile (`max_change_s`, `once_per_day`) and refused
//! without writing when the meter would not take it; the write is sent (sent
//! again after no answer only when it is idempotent); the registers are
//! read again (`after`, at the new address after an address change) and
//! must show what the write should have made them show.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use serde_json::Value;

use super::command::Write;
use super::context::WorkerServices;
use super::outbox::Record;
use super::program::run_program;
use super::runtime::{DeviceRuntime, record_exchange};
use super::write_verify::{Reached, Shown, clock_read, reached, read_verification, unverified, verify_after};
use crate::device::command_plan::{PlannedWrite, plan_modbus};
use crate::device::command_verify::check_clock_rule;
use crate::device::driver::modbus_link::LinkError;
use crate::device::driver::{CommandDone, Driver, DriverError};
use crate::domain::address::UnitAddress;
use crate::domain::command::CommandKind;
use crate::domain::event::EventKind;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::JobErrorCode;

/// Attempts at an idempotent write that got no answer.
const WRITE_ATTEMPTS: usize = 3;

type Failure = (JobErrorCode, String);

/// Sends the command and records the job's outcome.
pub(crate) async fn run_write(
    driver: &mut Driver,
    bus: BusId,
    runtimes: &mut HashMap<DeviceId, DeviceRuntime>,
    services: &WorkerServices,
    write: Write,
) {
    let job = write.job;
    if !runtimes.contains_key(&write.device) {
        let refusal = "the device is not polled on this bus (disabled or removed)".to_owned();
        let outcome = Err((JobErrorCode::NotPolled, refusal));
        services.outbox.send(Record::JobFinished { job, outcome });
        return;
    }
    if matches!(driver, Driver::Iec(_)) {
        if let Some(runtime) = runtimes.get_mut(&write.device) {
            run_program(driver, bus, runtime, services, write).await;
        }
        return;
    }
    let device = write.device;
    let kind = write.command.kind;
    let (outcome, reached, unverified) = send(driver, bus, runtimes, services, write).await;
    let record = match outcome {
        Err(failure) => Record::JobFinished {
            job,
            outcome: Err(failure),
        },
        Ok(done) => {
            let note = match (done.note, unverified.is_empty()) {
                (note, true) => note.map(str::to_owned),
                (note, false) => Some(format!(
                    "{}; not verified on {}",
                    note.unwrap_or("done"),
                    unverified.join(", ")
                )),
            };
            let mut result = serde_json::json!({ "outcome": note });
            if kind == CommandKind::SetClock {
                // When the time was sent, by the worker's clock: what the
                // once-a-day rule compares (`store::command_jobs::fetch_clock_sets`).
                result["clock_set_at"] = serde_json::json!(clock_was_set(runtimes, services, &reached));
            }
            match (done.new_address, runtimes.get_mut(&device)) {
                // Reads go to the new address from now on; the stored device follows.
                (Some(address), Some(runtime)) => {
                    runtime.config.address = address.get();
                    Record::AddressChanged {
                        job,
                        device,
                        address,
                        result,
                    }
                }
                _ => Record::JobFinished {
                    job,
                    outcome: Ok(result),
                },
            }
        }
    };
    services.outbox.send(record);
}

/// A clock set took on `reached`: remembered for the once-a-day rule, and
/// the request for site programming, if one was open, cleared.
fn clock_was_set(
    runtimes: &mut HashMap<DeviceId, DeviceRuntime>,
    services: &WorkerServices,
    reached: &[DeviceId],
) -> DateTime<Utc> {
    let at = services.clock.now();
    for device in reached {
        if let Some(runtime) = runtimes.get_mut(device) {
            runtime.memory.clock_set_at = Some(at);
        }
        services.outbox.send(Record::EventCleared {
            device: *device,
            code: EventKind::ClockNeedsSiteProgramming.code(),
            at,
        });
    }
    at
}

fn failure(error: &DriverError, runtime: &DeviceRuntime) -> Failure {
    if let DriverError::Modbus(LinkError::Exception { code, .. }) = error
        && Some(u8::from(*code)) == runtime.config.profile.modbus.write_protect_exception
    {
        let message = format!(
            "{} refused the write as protected (Modbus exception {:02}); its write protection is lifted on site",
            runtime.config.name,
            u8::from(*code)
        );
        return (JobErrorCode::WriteProtected, message);
    }
    let code = match error {
        DriverError::Unsupported(_) | DriverError::Profile(_) => JobErrorCode::Unsupported,
        DriverError::Modbus(_) | DriverError::Iec(_) => JobErrorCode::Device,
    };
    (code, error.describe())
}

/// One write as the job records it.
fn written(write: &PlannedWrite, words: &[u16]) -> Value {
    serde_json::json!({
        "write": write.name,
        "function": write.function,
        "register": write.address,
        "values": words,
        "broadcast": write.broadcast,
    })
}

/// What the job shows while and after it runs.
#[derive(Default)]
struct Progress {
    written: Vec<Value>,
    before: Shown,
    after: Shown,
    broadcast: bool,
    /// Devices a broadcast reached that could not be verified, and why.
    unverified: Vec<String>,
}

impl Progress {
    fn json(&self) -> Value {
        serde_json::json!({
            "written": self.written,
            "before": self.before.to_json(self.broadcast),
            "after": self.after.to_json(self.broadcast),
        })
    }
}

/// Plans the command on the device's profile and carries out its writes in
/// order; the first that fails or does not verify ends the command. Returns
/// the outcome and the devices the writes reached.
async fn send(
    driver: &mut Driver,
    bus: BusId,
    runtimes: &mut HashMap<DeviceId, DeviceRuntime>,
    services: &WorkerServices,
    write: Write,
) -> (Result<CommandDone, Failure>, Vec<DeviceId>, Vec<String>) {
    let runtime = &runtimes[&write.device];
    let plan = match plan_modbus(&runtime.config.profile, &write.command) {
        Ok(plan) => plan,
        Err(error) => {
            return (
                Err((JobErrorCode::Unsupported, error.to_string())),
                Vec::new(),
                Vec::new(),
            );
        }
    };
    let new_address = (write.command.kind == CommandKind::SetAddress)
        .then(|| {
            write
                .command
                .parameters
                .address
                .and_then(|address| UnitAddress::new(address).ok())
        })
        .flatten();
    let mut progress = Progress {
        broadcast: write.command.parameters.broadcast,
        ..Progress::default()
    };
    services.outbox.send(Record::JobStarted {
        job: write.job,
        progress: Some(progress.json()),
    });
    let mut done = CommandDone {
        note: None,
        new_address: None,
    };
    let mut devices = Vec::new();
    for planned in &plan {
        let mut targets = reached(runtimes, write.device, planned);
        let step = write_one(
            driver,
            bus,
            runtimes,
            services,
            &write,
            planned,
            &mut targets,
            new_address,
            &mut progress,
        )
        .await;
        services.outbox.send(Record::JobProgress {
            job: write.job,
            progress: progress.json(),
        });
        match step {
            Ok(step) => done = step,
            Err(failure) => return (Err(failure), devices, progress.unverified),
        }
        devices.extend(
            targets
                .iter()
                .filter(|target| !target.skipped)
                .map(|target| target.device),
        );
    }
    (Ok(done), devices, progress.unverified)
}

/// Reads before, checks the rules, writes, reads after: one planned write.
#[allow(clippy::too_many_arguments)]
async fn write_one(
    driver: &mut Driver,
    bus: BusId,
    runtimes: &HashMap<DeviceId, DeviceRuntime>,
    services: &WorkerServices,
    write: &Write,
    planned: &PlannedWrite,
    targets: &mut [Reached],
    new_address: Option<UnitAddress>,
    progress: &mut Progress,
) -> Result<CommandDone, Failure> {
    let now = services.clock.now();
    for target in targets.iter_mut() {
        let runtime = &runtimes[&target.device];
        let unit = runtime.config.address;
        let Some(read) = read_verification(driver, bus, runtime, services, &target.verify, planned, unit).await else {
            continue;
        };
        let (start, words) = match read {
            Ok(read) => read,
            // A broadcast goes on for the devices that answer: another
            // device of the bus that does not is left unverified, and said so.
            Err(error) if planned.broadcast && target.device != write.device => {
                let note = format!("{} (reading before: {})", runtime.config.name, error.describe());
                progress.unverified.push(note);
                target.skipped = true;
                continue;
            }
            Err(error) => {
                let (code, reason) = failure(&error, runtime);
                let message = format!(
                    "{}: reading {} before the write: {reason}; nothing was written",
                    runtime.config.name, planned.name
                );
                return Err((code, message));
            }
        };
        progress.before.add(target.device, start, &words);
        if let Some(rule) = target.clock_rule {
            let meter = clock_read(runtime, start, &words).ok_or_else(|| {
                let reason = format!(
                    "{}: the meter's clock read before the write ({words:?}) is not a date and time; nothing was written",
                    runtime.config.name
                );
                (JobErrorCode::Device, reason)
            })?;
            let last_set = write
                .clock_sets
                .get(&target.device)
                .copied()
                .max(runtime.memory.clock_set_at);
            if let Err((code, reason)) = check_clock_rule(rule, meter, now, runtime.config.zone, last_set) {
                let message = format!("{}: {reason}", runtime.config.name);
                services.outbox.send(Record::Event {
                    device: target.device,
                    kind: EventKind::ClockNeedsSiteProgramming,
                    message: format!("{message}; set the clock on site"),
                    started_at: now,
                    cleared_at: None,
                });
                return Err((code, message));
            }
        }
        target.before = Some(words);
    }
    let runtime = &runtimes[&write.device];
    let target = runtime.config.target();
    let sent_at = services.clock.now();
    let words = planned.words(sent_at, target.zone).ok_or_else(|| {
        let reason = format!(
            "{}: the time {sent_at} does not fit the meter's clock registers",
            planned.name
        );
        (JobErrorCode::Unsupported, reason)
    })?;
    progress.written.push(written(planned, &words));
    let done = send_write(driver, bus, runtime, services, planned, &words, new_address).await?;
    for target in targets.iter() {
        let runtime = &runtimes[&target.device];
        let Some(before) = &target.before else {
            continue;
        };
        let unit = match new_address {
            Some(address) if target.device == write.device => address.get(),
            _ => runtime.config.address,
        };
        let read = read_verification(driver, bus, runtime, services, &target.verify, planned, unit).await;
        let at = services.clock.now();
        let (start, after) = match read {
            Some(Ok(read)) => read,
            Some(Err(error)) => {
                let message = format!(
                    "{}: {} was sent, but reading it back at address {unit} failed: {}",
                    runtime.config.name,
                    planned.name,
                    error.describe()
                );
                return Err(unverified(services, runtime, message, at));
            }
            None => continue,
        };
        progress.after.add(target.device, start, &after);
        if let Err(message) = verify_after(runtime, &target.verify, planned, &words, before, start, &after, at) {
            return Err(unverified(services, runtime, message, at));
        }
    }
    Ok(done)
}

/// Sends the write, again after no answer when it is idempotent.
async fn send_write(
    driver: &mut Driver,
    bus: BusId,
    runtime: &DeviceRuntime,
    services: &WorkerServices,
    planned: &PlannedWrite,
    words: &[u16],
    new_address: Option<UnitAddress>,
) -> Result<CommandDone, Failure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (result, exchange) = driver.write(runtime.config.target(), planned, words, new_address).await;
        record_exchange(services, bus, &runtime.config, exchange);
        match result {
            Err(DriverError::Modbus(LinkError::Timeout(_)))
                if planned.idempotent && !planned.broadcast && attempt < WRITE_ATTEMPTS =>
            {
                continue;
            }
            other => return other.map_err(|error| failure(&error, runtime)),
        }
    }
}
