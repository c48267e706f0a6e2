//! Commands to devices: the writes of a typed command, ahead of every read
//! on the bus (operator command > on-demand read > real-time > energy), and
//! what came of it.

use super::command::Write;
use super::context::WorkerServices;
use super::outbox::Record;
use super::program::run_program;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::command_plan::{PlannedWrite, plan_modbus};
use crate::device::driver::{CommandDone, Driver, DriverError};
use crate::domain::address::UnitAddress;
use crate::domain::command::CommandKind;
use crate::domain::ids::BusId;
use crate::domain::job::JobErrorCode;

/// Sends the command and records the job's outcome.
pub(crate) async fn run_write(
    driver: &mut Driver,
    bus: BusId,
    runtime: Option<&mut DeviceRuntime>,
    services: &WorkerServices,
    write: Write,
) {
    let job = write.job;
    let Some(runtime) = runtime else {
        let refusal = "the device is not polled on this bus (disabled or removed)".to_owned();
        let outcome = Err((JobErrorCode::NotPolled, refusal));
        services.outbox.send(Record::JobFinished { job, outcome });
        return;
    };
    if matches!(driver, Driver::Iec(_)) {
        run_program(driver, bus, runtime, services, write).await;
        return;
    }
    let record = match send(driver, bus, runtime, services, write).await {
        Err(failure) => Record::JobFinished {
            job,
            outcome: Err(failure),
        },
        Ok(done) => {
            let result = serde_json::json!({ "outcome": done.note });
            match done.new_address {
                // Reads go to the new address from now on; the stored device follows.
                Some(address) => {
                    runtime.config.address = address.get();
                    Record::AddressChanged {
                        job,
                        device: runtime.config.id,
                        address,
                        result,
                    }
                }
                None => Record::JobFinished {
                    job,
                    outcome: Ok(result),
                },
            }
        }
    };
    services.outbox.send(record);
}

fn failure(error: &DriverError) -> (JobErrorCode, String) {
    let code = match error {
        DriverError::Unsupported(_) | DriverError::Profile(_) => JobErrorCode::Unsupported,
        DriverError::Modbus(_) | DriverError::Iec(_) => JobErrorCode::Device,
    };
    (code, error.describe())
}

/// One write as the job records it.
fn written(write: &PlannedWrite, words: &[u16]) -> serde_json::Value {
    serde_json::json!({
        "write": write.name,
        "function": write.function,
        "register": write.address,
        "values": words,
        "broadcast": write.broadcast,
    })
}

/// Plans the command on the device's profile as of now (a clock's values
/// are the time it is sent) and sends its writes in order; the first that
/// fails ends the command.
async fn send(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
    write: Write,
) -> Result<CommandDone, (JobErrorCode, String)> {
    let target = runtime.config.target();
    let plan =
        plan_modbus(target.profile, &write.command).map_err(|error| (JobErrorCode::Unsupported, error.to_string()))?;
    let now = services.clock.now();
    let mut sends = Vec::with_capacity(plan.len());
    for planned in &plan {
        let words = planned.words(now, target.zone).ok_or_else(|| {
            let reason = format!(
                "{}: the time {now} does not fit the meter's clock registers",
                planned.name
            );
            (JobErrorCode::Unsupported, reason)
        })?;
        sends.push((planned, words));
    }
    let progress = serde_json::json!({
        "written": sends.iter().map(|(planned, words)| written(planned, words)).collect::<Vec<_>>(),
    });
    services.outbox.send(Record::JobStarted {
        job: write.job,
        progress: Some(progress),
    });
    let new_address = (write.command.kind == CommandKind::SetAddress)
        .then(|| {
            write
                .command
                .parameters
                .address
                .and_then(|address| UnitAddress::new(address).ok())
        })
        .flatten();
    let mut done = CommandDone {
        note: None,
        new_address: None,
    };
    for (planned, words) in sends {
        let (result, exchange) = driver
            .write(runtime.config.target(), planned, &words, new_address)
            .await;
        record_exchange(services, bus, &runtime.config, exchange);
        done = result.map_err(|error| failure(&error))?;
    }
    Ok(done)
}
