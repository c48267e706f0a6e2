//! One command to many devices (engineer): a device list, a site's or a
//! bus's devices. Each device's command is checked as a single command is
//! (`commands::check_on_device`); a device that cannot take it is refused
//! on its own, with the reason, and the others are queued. As a broadcast,
//! one command per bus goes to unit 0, and only where every device of that
//! bus is in the target and may take it that way: a broadcast reaches
//! every device on the line.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::commands::{check_on_device, parse_command};
use super::{Caller, ServiceError};
use crate::device::registry::ProfileSet;
use crate::domain::command::{Command, CommandKind, CommandParameters};
use crate::domain::ids::{BusId, DeviceId, SiteId};
use crate::domain::job::{JobKind, JobState};
use crate::domain::role::Right;
use crate::store::buses::{BusRow, fetch_bus};
use crate::store::command_batches::{BatchJob, BatchRow, NewBatch, Refusal, fetch_batch, insert_batch};
use crate::store::devices::{DeviceRow, fetch_devices};
use crate::store::jobs::{JobAudit, NewJob, fetch_job_states};
use crate::store::sites::fetch_site;

/// Most devices one bulk may name.
pub(crate) const MAX_DEVICES: usize = 1000;

/// Which devices a bulk command is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Devices(Vec<DeviceId>),
    Site(SiteId),
    Bus(BusId),
}

impl Target {
    fn as_json(&self) -> Value {
        match self {
            Target::Devices(ids) => json!({"device_ids": ids}),
            Target::Site(id) => json!({"site_id": id}),
            Target::Bus(id) => json!({"bus_id": id}),
        }
    }
}

/// A bulk command as asked: a kind, its named parameters (with
/// `broadcast`: one command per bus to unit 0), and its target.
#[derive(Debug, Clone)]
pub(crate) struct BulkRequest<'a> {
    pub kind: &'a str,
    pub parameters: CommandParameters,
    pub target: Target,
}

/// A bulk and where each device's command is.
#[derive(Debug, Clone)]
pub(crate) struct Bulk {
    pub row: BatchRow,
    /// Each device's command's state; none where it was refused.
    pub states: Vec<Option<JobState>>,
}

/// Checks the command on every device of the target and queues it where
/// it fits, all in one transaction with one audit entry for the bulk and
/// one per command. A key the caller already used for a bulk returns that
/// bulk and queues nothing.
pub(crate) async fn start_bulk(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    idempotency_key: Option<&str>,
    request: BulkRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Bulk, ServiceError> {
    caller.require(Right::Configure)?;
    let broadcast = request.parameters.broadcast;
    let command = parse_command(request.kind, request.parameters)?;
    if command.kind == CommandKind::SetAddress {
        return Err(ServiceError::invalid(
            "kind",
            "set_address gives one device its own address; send it alone",
        ));
    }
    let all = fetch_devices(pool).await?;
    let (devices, mut refused) = target_devices(pool, &all, &request.target).await?;
    let mut buses: HashMap<BusId, BusRow> = HashMap::new();
    for device in &devices {
        if let std::collections::hash_map::Entry::Vacant(entry) = buses.entry(device.bus_id) {
            let bus = fetch_bus(pool, device.bus_id)
                .await?
                .ok_or_else(|| ServiceError::not_found(format!("no bus {}", device.bus_id)))?;
            entry.insert(bus);
        }
    }
    let parameters = serde_json::to_value(&command).expect("a command serialises");
    let mut jobs = Vec::new();
    if broadcast {
        for (bus, on_bus) in by_bus(&devices) {
            let every = all.iter().filter(|device| device.bus_id == bus).collect::<Vec<_>>();
            check_broadcast(pool, profiles, &buses[&bus], &every, &on_bus, &command, now).await?;
            // The job is filed under a device the worker polls, if any: it
            // runs a command only for a device it has.
            let first = on_bus.iter().find(|device| device.enabled).unwrap_or(&on_bus[0]);
            jobs.push(batch_job(
                caller,
                bus,
                first.id,
                on_bus.iter().map(|d| d.id).collect(),
                &parameters,
            ));
        }
    } else {
        for device in &devices {
            match check_on_device(pool, profiles, device, &buses[&device.bus_id], &command, now).await {
                Ok(_) => jobs.push(batch_job(
                    caller,
                    device.bus_id,
                    device.id,
                    vec![device.id],
                    &parameters,
                )),
                Err(error) => refused.push((device.id, refusal(&error))),
            }
        }
    }
    let batch = NewBatch {
        command: parameters,
        target: request.target.as_json(),
        broadcast,
        requested_by: &caller.user,
        idempotency_key,
    };
    let (row, _) = insert_batch(pool, &batch, jobs, refused, "command_bulk").await?;
    progress(pool, row).await
}

/// A bulk by id, with each device's command's state.
pub(crate) async fn get_bulk(pool: &PgPool, caller: &Caller, id: i64) -> Result<Bulk, ServiceError> {
    caller.require(Right::Read)?;
    let row = fetch_batch(pool, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no bulk command {id}")))?;
    progress(pool, row).await
}

async fn progress(pool: &PgPool, row: BatchRow) -> Result<Bulk, ServiceError> {
    let ids: Vec<i64> = row.results.0.iter().filter_map(|result| result.command_id).collect();
    let states: HashMap<i64, JobState> = fetch_job_states(pool, &ids).await?.into_iter().collect();
    let states = row
        .results
        .0
        .iter()
        .map(|result| result.command_id.and_then(|id| states.get(&id).copied()))
        .collect();
    Ok(Bulk { row, states })
}

/// The target's devices, and the listed ids that name none (refused).
async fn target_devices<'a>(
    pool: &PgPool,
    all: &'a [DeviceRow],
    target: &Target,
) -> Result<(Vec<&'a DeviceRow>, Vec<(DeviceId, Refusal)>), ServiceError> {
    let (devices, missing, field): (Vec<&DeviceRow>, Vec<DeviceId>, &str) = match target {
        Target::Devices(ids) => {
            if ids.is_empty() || ids.len() > MAX_DEVICES {
                return Err(ServiceError::invalid(
                    "device_ids",
                    format!("must name 1-{MAX_DEVICES} devices"),
                ));
            }
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            let found = all
                .iter()
                .filter(|device| unique.contains(&device.id))
                .collect::<Vec<_>>();
            let missing = unique
                .into_iter()
                .filter(|id| !found.iter().any(|device| device.id == *id))
                .collect();
            (found, missing, "device_ids")
        }
        Target::Site(site) => {
            if fetch_site(pool, *site).await?.is_none() {
                return Err(ServiceError::not_found(format!("no site {site}")));
            }
            (
                all.iter().filter(|device| device.site_id == *site).collect(),
                Vec::new(),
                "site_id",
            )
        }
        Target::Bus(bus) => {
            if fetch_bus(pool, *bus).await?.is_none() {
                return Err(ServiceError::not_found(format!("no bus {bus}")));
            }
            (
                all.iter().filter(|device| device.bus_id == *bus).collect(),
                Vec::new(),
                "bus_id",
            )
        }
    };
    if devices.is_empty() && missing.is_empty() {
        return Err(ServiceError::invalid(field, "names no device"));
    }
    let missing = missing
        .into_iter()
        .map(|id| {
            let refusal = Refusal {
                code: "not_found".to_owned(),
                message: format!("no device {id}"),
            };
            (id, refusal)
        })
        .collect();
    Ok((devices, missing))
}

/// The target's devices by bus, each bus's in id order.
fn by_bus<'a>(devices: &[&'a DeviceRow]) -> BTreeMap<BusId, Vec<&'a DeviceRow>> {
    let mut buses: BTreeMap<BusId, Vec<&DeviceRow>> = BTreeMap::new();
    for device in devices {
        buses.entry(device.bus_id).or_default().push(device);
    }
    for on_bus in buses.values_mut() {
        on_bus.sort_by_key(|device| device.id);
    }
    buses
}

/// A broadcast reaches every device on the line: each must be in the
/// target and take the command sent to unit 0.
async fn check_broadcast(
    pool: &PgPool,
    profiles: &ProfileSet,
    bus: &BusRow,
    every: &[&DeviceRow],
    target: &[&DeviceRow],
    command: &Command,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    for device in every {
        if !target.iter().any(|wanted| wanted.id == device.id) {
            return Err(ServiceError::invalid(
                "broadcast",
                format!(
                    "a broadcast reaches every device of bus {} ({}); {} (device {}) is on it but not in the target",
                    bus.id, bus.name, device.name, device.id
                ),
            ));
        }
        check_on_device(pool, profiles, device, bus, command, now)
            .await
            .map_err(|error| {
                ServiceError::invalid(
                    "broadcast",
                    format!(
                        "bus {} ({}): {} (device {}) cannot take it: {error}",
                        bus.id, bus.name, device.name, device.id
                    ),
                )
            })?;
    }
    Ok(())
}

fn batch_job<'a>(
    caller: &'a Caller,
    bus: BusId,
    device: DeviceId,
    devices: Vec<DeviceId>,
    parameters: &Value,
) -> BatchJob<'a> {
    BatchJob {
        devices,
        job: NewJob {
            kind: JobKind::Command,
            bus,
            device: Some(device),
            parameters: parameters.clone(),
            requested_by: &caller.user,
            idempotency_key: None,
        },
        audit: JobAudit {
            action: "command_device",
            target: format!("device/{device}"),
            detail: json!({"command": parameters}),
        },
    }
}

/// A device's refusal as the API shows an error: its code and message.
pub(crate) fn refusal(error: &ServiceError) -> Refusal {
    let code = match error {
        ServiceError::NotFound(_) => "not_found",
        ServiceError::Conflict { .. } => "conflict",
        ServiceError::Invalid { .. } => "invalid_field",
        ServiceError::Forbidden { .. } => "forbidden",
        ServiceError::NotConfigured(_) => "not_configured",
        ServiceError::Storage(_) => "internal",
    };
    Refusal {
        code: code.to_owned(),
        message: error.to_string(),
    }
}
