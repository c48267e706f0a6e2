//! Commands to devices (engineer): typed and protocol-neutral when asked,
//! checked against the device's profile and the manual's ranges, then
//! queued as a `command` job with its audit entry, or, as a dry run,
//! answered with the exact frames that would be sent, sending nothing.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::devices::existing_device;
use super::{Caller, ServiceError};
use crate::device::command_plan::{PlanError, PlannedWrite, plan_modbus};
use crate::device::profile::Profile;
use crate::device::registry::ProfileSet;
use crate::domain::command::{Command, CommandKind, CommandParameters};
use crate::domain::ids::DeviceId;
use crate::domain::job::JobKind;
use crate::domain::role::Right;
use crate::domain::transport::Protocol;
use crate::store::buses::{BusRow, fetch_bus};
use crate::store::command_jobs::{CommandJobRow, fetch_command_job, fetch_latest_command_job};
use crate::store::devices::{DeviceRow, fetch_devices_on_bus};
use crate::store::jobs::{JobAudit, NewJob, insert_job};

/// A command as asked: a kind, its named parameters, and whether only to
/// show what would be sent.
#[derive(Debug, Clone)]
pub(crate) struct CommandRequest<'a> {
    pub kind: &'a str,
    pub parameters: CommandParameters,
    pub dry_run: bool,
}

/// What starting a command did.
#[derive(Debug)]
pub(crate) enum Started {
    /// Queued for the bus's worker.
    Queued(Box<CommandJobRow>),
    /// Checked and shown; nothing queued, nothing sent.
    DryRun(Box<DryRun>),
}

/// The frames a command would put on the wire, as of now.
#[derive(Debug, Clone)]
pub(crate) struct DryRun {
    pub kind: CommandKind,
    pub parameters: CommandParameters,
    pub frames: Vec<Frame>,
}

/// One request a command would send.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The profile's name of the write.
    pub write: String,
    /// The unit it goes to; 0 for a broadcast.
    pub unit: u8,
    pub function: u8,
    pub register: u16,
    pub values: Vec<u16>,
    /// The whole frame: an RTU frame with its CRC, or a Modbus TCP ADU.
    pub bytes: Vec<u8>,
}

/// Checks a command against the device's profile and queues it (or, dry,
/// shows it). A key the caller already used for a command returns that
/// command and queues nothing.
pub(crate) async fn start_command(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    idempotency_key: Option<&str>,
    id: DeviceId,
    request: CommandRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Started, ServiceError> {
    caller.require(Right::Configure)?;
    let command = parse_command(request.kind, request.parameters)?;
    let kind = command.kind;
    let device = existing_device(pool, id).await?;
    let bus = fetch_bus(pool, device.bus_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no bus {}", device.bus_id)))?;
    let writes = check_on_device(pool, profiles, &device, &bus, &command).await?;
    if request.dry_run {
        // The meter's clock runs in its bus's site zone, as the poller reads it.
        let zone = bus.time_zone.tz();
        let unit = device.address.map_or(0, |address| address as u8);
        let frames = writes
            .iter()
            .map(|write| {
                let values = write.words(now, zone).unwrap_or_default();
                Frame {
                    write: write.name.clone(),
                    unit: if write.broadcast { 0 } else { unit },
                    function: write.function,
                    register: write.address,
                    bytes: write.frame(&bus.transport.0, unit, &values),
                    values,
                }
            })
            .collect();
        return Ok(Started::DryRun(Box::new(DryRun {
            kind,
            parameters: command.parameters,
            frames,
        })));
    }
    // Plain fields and a string tag: serialising cannot fail.
    let parameters = serde_json::to_value(&command).expect("a command serialises");
    let job = NewJob {
        kind: JobKind::Command,
        bus: device.bus_id,
        device: Some(id),
        parameters: parameters.clone(),
        requested_by: &caller.user,
        idempotency_key,
    };
    let audit = JobAudit {
        action: "command_device",
        target: format!("device/{id}"),
        detail: json!({"command": parameters}),
    };
    let (job, _) = insert_job(pool, &job, audit).await?;
    let id = job.id;
    let row =
        CommandJobRow::from_job(job).ok_or_else(|| ServiceError::not_found(format!("job {id} is of another kind")))?;
    Ok(Started::Queued(Box::new(row)))
}

/// A command's kind, as the API spells it, with its named parameters.
pub(crate) fn parse_command(kind: &str, parameters: CommandParameters) -> Result<Command, ServiceError> {
    let kind = CommandKind::parse(kind).ok_or_else(|| {
        let known: Vec<&str> = CommandKind::ALL.iter().map(|kind| kind.as_str()).collect();
        ServiceError::invalid("kind", format!("{kind:?} is not one of {}", known.join(", ")))
    })?;
    Command::new(kind, parameters).map_err(|error| ServiceError::invalid(error.field, error.reason))
}

/// Checks `command` against the device's profile and bus, as every command
/// is checked before it is queued: its writes, or why it cannot take it.
pub(crate) async fn check_on_device(
    pool: &PgPool,
    profiles: &ProfileSet,
    device: &DeviceRow,
    bus: &BusRow,
    command: &Command,
) -> Result<Vec<PlannedWrite>, ServiceError> {
    let profile = profiles.get(&device.profile).ok_or_else(|| {
        ServiceError::invalid("kind", format!("the device's profile {} is not loaded", device.profile))
    })?;
    plan(pool, device, &profile, bus, command).await
}

/// The writes of `command` on the device, or why it cannot take it.
async fn plan(
    pool: &PgPool,
    device: &DeviceRow,
    profile: &Profile,
    bus: &BusRow,
    command: &Command,
) -> Result<Vec<PlannedWrite>, ServiceError> {
    if bus.transport.0.protocol() == Protocol::Iec62056 {
        return Err(ServiceError::invalid(
            "kind",
            format!(
                "{} over IEC 62056-21 is not taken by this server yet; {} is read over IEC 62056-21",
                command.kind, device.name
            ),
        ));
    }
    let writes = plan_modbus(profile, command).map_err(|error| match error {
        PlanError::Parameter(error) => ServiceError::invalid(error.field, error.reason),
        PlanError::NotOverWire(reason) => ServiceError::invalid("kind", reason),
    })?;
    if command.kind == CommandKind::SetAddress {
        check_new_address(pool, device, profile, command.parameters.address.unwrap_or_default()).await?;
    }
    Ok(writes)
}

/// A new address must be one the profile's device accepts and free on the bus.
async fn check_new_address(
    pool: &PgPool,
    device: &DeviceRow,
    profile: &Profile,
    wanted: i64,
) -> Result<(), ServiceError> {
    if !(1..=i64::from(profile.max_address)).contains(&wanted) {
        return Err(ServiceError::invalid(
            "address",
            format!("{} accepts addresses 1-{}", profile.name, profile.max_address),
        ));
    }
    let neighbours = fetch_devices_on_bus(pool, device.bus_id).await?;
    if let Some(other) = neighbours
        .iter()
        .find(|other| other.id != device.id && other.address.map(i64::from) == Some(wanted))
    {
        return Err(ServiceError::invalid(
            "address",
            format!("address {wanted} is taken by {} on this bus", other.name),
        ));
    }
    Ok(())
}

/// A command by id.
pub(crate) async fn get_command(pool: &PgPool, caller: &Caller, id: i64) -> Result<CommandJobRow, ServiceError> {
    caller.require(Right::Read)?;
    fetch_command_job(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no command {id}")))
}

/// The device's latest command, if any.
pub(crate) async fn latest_command(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
) -> Result<Option<CommandJobRow>, ServiceError> {
    caller.require(Right::Read)?;
    Ok(fetch_latest_command_job(pool, device).await?)
}

/// The parameters of a command as stored, for showing.
pub(crate) fn shown_parameters(parameters: &CommandParameters) -> Value {
    serde_json::to_value(parameters).unwrap_or(Value::Null)
}
