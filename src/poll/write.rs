//! Commands to devices: one write of a profile command, ahead of every read
//! on the bus (DESIGN.md: operator command > on-demand read > real-time >
//! energy), and what came of it.

use std::time::Duration;

use super::command::Write;
use super::link::{Link, LinkError};
use super::read::DeviceRuntime;
use super::worker::WorkerServices;
use crate::device::command::SET_ADDRESS;
use crate::domain::address::UnitAddress;
use crate::domain::ids::BusId;
use crate::domain::job::JobErrorCode;
use crate::protocol::modbus::rtu_client::BROADCAST;
use crate::store::devices::update_device_address;
use crate::store::jobs::{update_job_finished, update_job_started};

/// What a broadcast job reports: nothing comes back from unit 0.
pub const BROADCAST_SENT: &str = "sent to all devices (no answer expected)";

/// Sends the command and records the job's outcome.
pub(crate) async fn run_write(
    link: &mut Link,
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
        Some(runtime) => send(link, bus, runtime, services, write).await,
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

async fn send(
    link: &mut Link,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
    write: Write,
) -> Result<Option<&'static str>, (JobErrorCode, String)> {
    let config = &runtime.config;
    let command = config
        .profile
        .modbus
        .commands
        .get(&write.command)
        .ok_or_else(|| {
            let error = format!("profile {} has no command {}", config.profile.name, write.command);
            (JobErrorCode::Unsupported, error)
        })?
        .clone();
    let values = match write.values {
        Some(values) => values,
        // The meter's clock runs in its site's zone.
        None => command
            .clock
            .and_then(|layout| layout.words(services.clock.now().with_timezone(&config.zone).naive_local()))
            .ok_or_else(|| {
                (
                    JobErrorCode::Unsupported,
                    format!("values: {} needs values", write.command),
                )
            })?,
    };
    let progress = serde_json::json!({ "values": values });
    if let Err(error) = update_job_started(&services.pool, write.job, Some(&progress)).await {
        tracing::warn!(job = write.job, %error, "cannot record the command's start");
    }
    let unit = if write.broadcast { BROADCAST } else { config.address };
    let new_address = (write.command == SET_ADDRESS && !write.broadcast)
        .then(|| i64::from(values[0]))
        .and_then(|value| UnitAddress::new(value).ok());
    let answer_from = new_address.map_or(unit, UnitAddress::get);
    let turnaround = Duration::from_millis(config.profile.modbus.turnaround_ms);
    let (result, took) = link
        .write_answered_by(
            unit,
            answer_from,
            command.function,
            command.address,
            &values,
            turnaround,
        )
        .await;
    if !write.broadcast {
        let outcome = result
            .as_ref()
            .err()
            .map_or(super::link_stats::Outcome::Answered, LinkError::outcome);
        services.stats.links.record(bus, config.id, outcome, took);
    }
    match result {
        Ok(()) if write.broadcast => Ok(Some(BROADCAST_SENT)),
        Ok(()) => {
            if let Some(address) = new_address {
                // Reads go to the new address from now on; the stored device follows.
                runtime.config.address = address.get();
                update_device_address(&services.pool, runtime.config.id, address)
                    .await
                    .map_err(|error| {
                        let error = format!("the device took address {address}, but it could not be stored: {error}");
                        (JobErrorCode::Store, error)
                    })?;
            }
            Ok(None)
        }
        Err(error) => Err((JobErrorCode::Device, describe(&error))),
    }
}

/// A failure as an engineer reads it: the Modbus exception by number and
/// name, "no answer" for a timeout.
pub fn describe(error: &LinkError) -> String {
    match error {
        LinkError::Exception { code, .. } => {
            format!("device answered Modbus exception {:02} ({code})", u8::from(*code))
        }
        LinkError::Timeout(_) => "no answer".to_owned(),
        other => other.to_string(),
    }
}
