//! Starting jobs: an on-demand read, a bus scan, a command to a device.
//! Each is checked here, then queued with its audit entry in one
//! transaction; the worker of the bus claims it (see `poll::jobs`).

use serde_json::json;
use sqlx::PgPool;

use crate::device::command::SET_ADDRESS;
use crate::device::profile::{Profile, WriteCommand};
use crate::device::registry::ProfileSet;
use crate::domain::address::UnitAddress;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::JobKind;
use crate::store::StoreError;
use crate::store::buses::fetch_bus;
use crate::store::command_jobs::{CommandJobRow, CommandParameters};
use crate::store::devices::{DeviceRow, fetch_device, fetch_devices_on_bus};
use crate::store::jobs::{JobAudit, JobRow, NewJob, insert_job};
use crate::store::read_jobs::ReadJobRow;
use crate::store::scans::{ScanParameters, ScanRow};

/// Why a job was not queued.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    NotFound(String),
    /// A request field with a bad value: `field` names it.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> JobError {
    JobError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Who asks, and the key that makes a retried request queue nothing new.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Requester<'a> {
    pub user: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// A command as asked: one of the device profile's commands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommandRequest<'a> {
    pub command: &'a str,
    /// One value per register; none for a clock command set to now.
    pub values: Option<&'a [i64]>,
    pub broadcast: bool,
}

async fn device(pool: &PgPool, device: DeviceId) -> Result<DeviceRow, JobError> {
    fetch_device(pool, device)
        .await?
        .ok_or_else(|| JobError::NotFound(format!("no device {device}")))
}

fn view<T>(job: JobRow, into: impl FnOnce(JobRow) -> Option<T>) -> Result<T, JobError> {
    // A key reused for another request of the same kind returns that job,
    // which has the same kind, so this holds.
    let id = job.id;
    into(job).ok_or_else(|| JobError::NotFound(format!("job {id} is of another kind")))
}

/// Queues an on-demand read of every register group of the device, ahead
/// of its schedule.
pub(crate) async fn start_read(pool: &PgPool, requester: Requester<'_>, id: DeviceId) -> Result<ReadJobRow, JobError> {
    let row = device(pool, id).await?;
    let job = NewJob {
        kind: JobKind::ReadNow,
        bus: row.bus_id,
        device: Some(id),
        parameters: json!({}),
        requested_by: requester.user,
        idempotency_key: requester.idempotency_key,
    };
    let audit = JobAudit {
        action: "read_device",
        target: format!("device/{id}"),
        detail: json!({}),
    };
    let (job, _) = insert_job(pool, &job, audit).await?;
    view(job, ReadJobRow::from_job)
}

fn scan_address(field: &str, value: Option<i64>, default: u8) -> Result<u8, JobError> {
    match value {
        None => Ok(default),
        Some(value) => UnitAddress::new(value)
            .map(UnitAddress::get)
            .map_err(|error| invalid(field, error.to_string())),
    }
}

/// Queues a scan of the bus's unit addresses `first..=last` (default 1–247).
pub(crate) async fn start_scan(
    pool: &PgPool,
    requester: Requester<'_>,
    bus: BusId,
    first: Option<i64>,
    last: Option<i64>,
) -> Result<ScanRow, JobError> {
    let first = scan_address("first_address", first, 1)?;
    let last = scan_address("last_address", last, 247)?;
    if last < first {
        return Err(invalid("last_address", "must not be below first_address"));
    }
    fetch_bus(pool, bus)
        .await?
        .ok_or_else(|| JobError::NotFound(format!("no bus {bus}")))?;
    let parameters = ScanParameters {
        first_address: first,
        last_address: last,
    };
    let job = NewJob {
        kind: JobKind::Scan,
        bus,
        device: None,
        parameters: json!(parameters),
        requested_by: requester.user,
        idempotency_key: requester.idempotency_key,
    };
    let audit = JobAudit {
        action: "scan_bus",
        target: format!("bus/{bus}"),
        detail: json!({"first": first, "last": last}),
    };
    let (job, _) = insert_job(pool, &job, audit).await?;
    view(job, ScanRow::from_job)
}

/// Queues a command to a device, checked against its profile: a command it
/// has, broadcast only where allowed, the number of values its registers
/// take, each 0–65535, and for an address change a free address the
/// profile accepts.
pub(crate) async fn start_command(
    pool: &PgPool,
    profiles: &ProfileSet,
    requester: Requester<'_>,
    id: DeviceId,
    request: CommandRequest<'_>,
) -> Result<CommandJobRow, JobError> {
    let row = device(pool, id).await?;
    let profile = profiles
        .get(&row.profile)
        .ok_or_else(|| invalid("command", format!("the device's profile {} is not loaded", row.profile)))?;
    if row.address.is_none() {
        return Err(invalid(
            "command",
            "commands are Modbus writes; this device is read over IEC 62056-21, which takes none yet",
        ));
    }
    let values = check_command(pool, &row, &profile, request).await?;
    let parameters = CommandParameters {
        command: request.command.to_owned(),
        values: values.clone(),
        broadcast: request.broadcast,
    };
    let job = NewJob {
        kind: JobKind::Command,
        bus: row.bus_id,
        device: Some(id),
        parameters: json!(parameters),
        requested_by: requester.user,
        idempotency_key: requester.idempotency_key,
    };
    let audit = JobAudit {
        action: "command_device",
        target: format!("device/{id}"),
        detail: json!({"command": request.command, "values": values, "broadcast": request.broadcast}),
    };
    let (job, _) = insert_job(pool, &job, audit).await?;
    view(job, CommandJobRow::from_job)
}

/// Checks a command against the device's profile; returns the values to
/// write (`None`: the server fills a clock command's when it sends it).
async fn check_command(
    pool: &PgPool,
    device: &DeviceRow,
    profile: &Profile,
    request: CommandRequest<'_>,
) -> Result<Option<Vec<u16>>, JobError> {
    let commands = &profile.modbus.commands;
    let command: &WriteCommand = commands.get(request.command).ok_or_else(|| {
        let known: Vec<&str> = commands.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        invalid(
            "command",
            format!(
                "{} has no command {:?}; its commands: {known}",
                profile.name, request.command
            ),
        )
    })?;
    if request.broadcast && !command.broadcast {
        return Err(invalid(
            "broadcast",
            format!("{} of {} may not be broadcast", request.command, profile.name),
        ));
    }
    let Some(values) = request.values else {
        if command.clock.is_some() {
            return Ok(None);
        }
        return Err(invalid(
            "values",
            format!("{} needs {} value(s)", request.command, command.count),
        ));
    };
    if values.len() != usize::from(command.count) {
        return Err(invalid(
            "values",
            format!(
                "{} takes {} value(s), got {}",
                request.command,
                command.count,
                values.len()
            ),
        ));
    }
    let words = values
        .iter()
        .enumerate()
        .map(|(index, &value)| u16::try_from(value).map_err(|_| invalid(format!("values[{index}]"), "must be 0-65535")))
        .collect::<Result<Vec<u16>, JobError>>()?;
    if request.command == SET_ADDRESS {
        let wanted = words[0];
        if !(1..=u16::from(profile.max_address)).contains(&wanted) {
            return Err(invalid(
                "values[0]",
                format!("{} accepts addresses 1-{}", profile.name, profile.max_address),
            ));
        }
        let neighbours = fetch_devices_on_bus(pool, device.bus_id).await?;
        if let Some(other) = neighbours
            .iter()
            .find(|other| other.id != device.id && other.address == Some(wanted as i16))
        {
            return Err(invalid(
                "values[0]",
                format!("address {wanted} is taken by {} on this bus", other.name),
            ));
        }
    }
    Ok(Some(words))
}
