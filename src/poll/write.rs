//! Commands to devices: one write of a profile command, ahead of every read
//! on the bus (operator command > on-demand read > real-time > energy), and
//! what came of it.

use super::command::Write;
use super::context::WorkerServices;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::{Driver, DriverError};
use crate::domain::ids::BusId;
use crate::domain::job::JobErrorCode;
use crate::store::devices::update_device_address;
use crate::store::jobs::{update_job_finished, update_job_started};

/// Sends the command and records the job's outcome.
pub(crate) async fn run_write(
    driver: &mut Driver,
    bus: BusId,
    runtime: Option<&mut DeviceRuntime>,
    services: &WorkerServices,
    write: Write,
) {
    let job = write.job;
    let outcome = match runtime {
        None => Err((
            JobErrorCode::NotPolled,
            "the device is not polled on this bus (disabled or removed)".to_owned(),
        )),
        Some(runtime) => send(driver, bus, runtime, services, write).await,
    };
    let result = match &outcome {
        Ok(note) => serde_json::json!({ "outcome": note }),
        Err(_) => serde_json::Value::Null,
    };
    let outcome = match &outcome {
        Ok(_) => Ok(&result),
        Err((code, error)) => Err((*code, error.as_str())),
    };
    if let Err(error) = update_job_finished(&services.pool, job, outcome).await {
        tracing::warn!(job, %error, "cannot record the command's outcome");
    }
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
) -> Result<Option<&'static str>, (JobErrorCode, String)> {
    let values = driver
        .command_values(
            runtime.config.target(),
            &write.command,
            write.values,
            services.clock.now(),
        )
        .map_err(|error| failure(&error))?;
    let progress = serde_json::json!({ "values": values });
    if let Err(error) = update_job_started(&services.pool, write.job, Some(&progress)).await {
        tracing::warn!(job = write.job, %error, "cannot record the command's start");
    }
    let (result, exchange) = driver
        .execute(runtime.config.target(), &write.command, &values, write.broadcast)
        .await;
    record_exchange(services, bus, &runtime.config, exchange);
    let done = result.map_err(|error| failure(&error))?;
    if let Some(address) = done.new_address {
        // Reads go to the new address from now on; the stored device follows.
        runtime.config.address = address.get();
        update_device_address(&services.pool, runtime.config.id, address)
            .await
            .map_err(|error| {
                let error = format!("the device took address {address}, but it could not be stored: {error}");
                (JobErrorCode::Store, error)
            })?;
    }
    Ok(done.note)
}
