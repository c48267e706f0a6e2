//! Commands to devices (engineer): typed and protocol-neutral when asked,
//! checked against the device's profile and the manual's ranges, then
//! queued as a `command` job with its audit entry, or, as a dry run,
//! answered with the exact frames that would be sent, sending nothing.

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::devices::existing_device;
use super::{Caller, ServiceError};
use crate::device::command_plan::{PlanError, PlannedWrite, plan_modbus};
use crate::device::driver::{Target, program_frames};
use crate::device::profile::{Profile, TouTables};
use crate::device::registry::ProfileSet;
use crate::domain::command::{Command, CommandKind, CommandParameters};
use crate::domain::ids::{CalendarId, DeviceId};
use crate::domain::job::JobKind;
use crate::domain::role::Right;
use crate::domain::transport::Protocol;
use crate::metering::tou::a1000::compile;
use crate::service::tariff_calendars::load_calendar;
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

/// One message a command would send.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The profile's name of the write, or the step of a programming
    /// session (`sign-on`, `password`, `write 0.9.1`, …).
    pub write: String,
    /// Modbus: the unit it goes to (0 for a broadcast), the function, the
    /// first register and the values.
    pub modbus: Option<ModbusFrame>,
    /// The whole frame: an RTU frame with its CRC, a Modbus TCP ADU, or an
    /// IEC 62056-21 message with its block check.
    pub bytes: Vec<u8>,
    /// IEC 62056-21: the message with its control characters named
    /// (`<SOH>P1<STX>(********)<ETX><BCC 0x61>`).
    pub text: Option<String>,
}

/// What a Modbus request writes.
#[derive(Debug, Clone)]
pub(crate) struct ModbusFrame {
    pub unit: u8,
    pub function: u8,
    pub register: u16,
    pub values: Vec<u16>,
}

/// How a command is done on the device's line.
enum Plan {
    /// Register writes.
    Modbus(Vec<PlannedWrite>),
    /// One programming-mode session, as the profile's
    /// `[iec62056.commands]` entry of the kind says.
    Iec,
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
    let profile = loaded_profile(profiles, &device)?;
    let plan = plan(pool, &device, &profile, &bus, &command, now).await?;
    if request.dry_run {
        // The meter's clock runs in its bus's site zone, as the poller reads it.
        let zone = bus.time_zone.tz();
        let unit = device.address.map_or(0, |address| address as u8);
        let frames = match plan {
            Plan::Modbus(writes) => writes
                .iter()
                .map(|write| {
                    let values = write.words(now, zone).unwrap_or_default();
                    Frame {
                        write: write.name.clone(),
                        bytes: write.frame(&bus.transport.0, unit, &values),
                        modbus: Some(ModbusFrame {
                            unit: if write.broadcast { 0 } else { unit },
                            function: write.function,
                            register: write.address,
                            values,
                        }),
                        text: None,
                    }
                })
                .collect(),
            Plan::Iec => {
                let target = Target {
                    name: &device.name,
                    address: 0,
                    iec_address: device.iec_address.as_deref().unwrap_or_default(),
                    profile: &profile,
                    zone,
                    // The dry run shows the password masked, whichever it is.
                    password: None,
                };
                program_frames(target, &bus.transport.0, kind.as_str(), now)
                    .map_err(|error| ServiceError::invalid("kind", error))?
                    .into_iter()
                    .map(|frame| Frame {
                        text: Some(frame.text()),
                        write: frame.step,
                        modbus: None,
                        bytes: frame.bytes,
                    })
                    .collect()
            }
        };
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

/// The device's profile, as loaded.
fn loaded_profile(profiles: &ProfileSet, device: &DeviceRow) -> Result<std::sync::Arc<Profile>, ServiceError> {
    profiles
        .get(&device.profile)
        .ok_or_else(|| ServiceError::invalid("kind", format!("the device's profile {} is not loaded", device.profile)))
}

/// Checks `command` against the device's profile and bus at `now`, as
/// every command is checked before it is queued: `Ok` when the device can
/// take it, else why not.
pub(crate) async fn check_on_device(
    pool: &PgPool,
    profiles: &ProfileSet,
    device: &DeviceRow,
    bus: &BusRow,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let profile = loaded_profile(profiles, device)?;
    plan(pool, device, &profile, bus, command, now).await.map(|_| ())
}

/// The writes of `command` on the device, or why it cannot take it.
async fn plan(
    pool: &PgPool,
    device: &DeviceRow,
    profile: &Profile,
    bus: &BusRow,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<Plan, ServiceError> {
    if command.kind == CommandKind::PushTou {
        check_tou(pool, profile, command.parameters.calendar_id.unwrap_or_default(), now).await?;
    }
    if bus.transport.0.protocol() == Protocol::Iec62056 {
        if command.parameters.broadcast {
            return Err(ServiceError::invalid(
                "broadcast",
                "IEC 62056-21 has no broadcast: each meter is signed on by its address",
            ));
        }
        let known = profile
            .iec62056
            .as_ref()
            .is_some_and(|iec| iec.commands.contains_key(command.kind.as_str()));
        if !known {
            return Err(ServiceError::invalid(
                "kind",
                format!(
                    "{} has no {} over IEC 62056-21 in its profile ({} is read over IEC 62056-21)",
                    profile.name, command.kind, device.name
                ),
            ));
        }
        return Ok(Plan::Iec);
    }
    let writes = plan_modbus(profile, command).map_err(|error| match error {
        PlanError::Parameter(error) => ServiceError::invalid(error.field, error.reason),
        PlanError::NotOverWire(reason) => ServiceError::invalid("kind", reason),
    })?;
    if command.kind == CommandKind::SetAddress {
        check_new_address(pool, device, profile, command.parameters.address.unwrap_or_default()).await?;
    }
    Ok(Plan::Modbus(writes))
}

/// A calendar to push must exist and fit the meter's time-of-use tables
/// (its version in force at `now`, with this year's holidays).
async fn check_tou(pool: &PgPool, profile: &Profile, calendar: i64, now: DateTime<Utc>) -> Result<(), ServiceError> {
    let Some(TouTables::A1000) = profile.tou_tables else {
        return Err(ServiceError::invalid(
            "kind",
            format!("{} keeps no time-of-use tables this server can program", profile.name),
        ));
    };
    let loaded = load_calendar(pool, CalendarId(calendar))
        .await
        .map_err(|error| match error {
            ServiceError::NotFound(reason) => ServiceError::invalid("calendar_id", reason),
            other => other,
        })?;
    let year = now.with_timezone(&loaded.time_zone.tz()).year();
    compile(loaded.versions.at(now), year).map_err(|limit| {
        ServiceError::invalid(
            "calendar_id",
            format!(
                "tariff calendar {calendar} does not fit the {} tables: {limit}",
                profile.name
            ),
        )
    })?;
    Ok(())
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
