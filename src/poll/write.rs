//! Commands to devices: one write of a profile command, ahead of every read
//! on the bus (operator command > on-demand read > real-time > energy), and
//! what came of it.

use super::command::Write;
use super::context::WorkerServices;
use super::outbox::Record;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::{CommandDone, Driver, DriverError};
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

async fn send(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
    write: Write,
) -> Result<CommandDone, (JobErrorCode, String)> {
    let values = driver
        .command_values(
            runtime.config.target(),
            &write.command,
            write.values,
            services.clock.now(),
        )
        .map_err(|error| failure(&error))?;
    let progress = serde_json::json!({ "values": values });
    services.outbox.send(Record::JobStarted {
        job: write.job,
        progress: Some(progress),
    });
    let (result, exchange) = driver
        .execute(runtime.config.target(), &write.command, &values, write.broadcast)
        .await;
    record_exchange(services, bus, &runtime.config, exchange);
    result.map_err(|error| failure(&error))
}
