//! What a command's write is checked against on the devices it reaches:
//! the registers its profile names are read before the write and after it
//! (`device::command_verify`), on the device, or after a broadcast on every
//! device of the bus whose profile has the same write. A read that gets no
//! answer is tried again (reading changes nothing on the meter).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::context::WorkerServices;
use super::outbox::Record;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::command_plan::PlannedWrite;
use crate::device::command_verify::{check, clock_of, registers};
use crate::device::driver::modbus_link::LinkError;
use crate::device::driver::{Driver, DriverError};
use crate::device::write_rules::{ClockRule, Expect, Verify};
use crate::domain::event::EventKind;
use crate::domain::ids::{BusId, DeviceId};
use crate::domain::job::JobErrorCode;

/// Attempts at a verification read that got no answer or a garbled one.
pub(crate) const READ_ATTEMPTS: usize = 3;

/// A device a write reaches, and how its profile says to verify it there.
#[derive(Debug, Clone)]
pub(crate) struct Reached {
    pub device: DeviceId,
    pub verify: Verify,
    pub clock_rule: Option<ClockRule>,
    /// What the verification registers held before the write.
    pub before: Option<Vec<u16>>,
    /// Not read before a broadcast (no answer): not verified, not counted as reached.
    pub skipped: bool,
}

/// The devices `write` reaches: the device asked; for a broadcast, every
/// device of the bus whose profile takes the same write at unit 0.
pub(crate) fn reached(
    runtimes: &HashMap<DeviceId, DeviceRuntime>,
    device: DeviceId,
    write: &PlannedWrite,
) -> Vec<Reached> {
    if !write.broadcast {
        return vec![Reached {
            device,
            verify: write.verify.clone(),
            clock_rule: write.clock_rule,
            before: None,
            skipped: false,
        }];
    }
    let mut reached: Vec<Reached> = runtimes
        .values()
        .filter_map(|runtime| {
            let same = runtime.config.profile.modbus.commands.values().find(|command| {
                command.broadcast && command.address == write.address && command.function == write.function
            })?;
            Some(Reached {
                device: runtime.config.id,
                verify: same.verify.clone(),
                clock_rule: same.clock_rule(),
                before: None,
                skipped: false,
            })
        })
        .collect();
    reached.sort_by_key(|reached| reached.device);
    reached
}

/// The registers a verification reads, as the job shows them: `0x1040`.
pub(crate) fn register_key(address: u16) -> String {
    format!("0x{address:04X}")
}

/// Reads the verification registers of `reached` at `unit`, trying again
/// after no answer or a bad frame. `None` when the profile reads nothing.
pub(crate) async fn read_verification(
    driver: &mut Driver,
    bus: BusId,
    runtime: &DeviceRuntime,
    services: &WorkerServices,
    verify: &Verify,
    write: &PlannedWrite,
    unit: u8,
) -> Option<Result<(u16, Vec<u16>), DriverError>> {
    let written = write_count(write);
    let (start, count, _) = registers(verify, write.address, written).ok()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (result, exchange) = driver.read_registers(runtime.config.target(), unit, start, count).await;
        record_exchange(services, bus, &runtime.config, exchange);
        match result {
            Err(DriverError::Modbus(LinkError::Timeout(_) | LinkError::Crc)) if attempt < READ_ATTEMPTS => continue,
            other => return Some(other.map(|words| (start, words))),
        }
    }
}

/// The number of registers the write fills (its planned values' count).
fn write_count(write: &PlannedWrite) -> u16 {
    match &write.values {
        crate::device::command_plan::PlannedValues::Words(words) => words.len() as u16,
        crate::device::command_plan::PlannedValues::Clock(layout) => layout.count(),
    }
}

/// The meter's clock from what its verification read gave, if it read one.
pub(crate) fn clock_read(runtime: &DeviceRuntime, start: u16, words: &[u16]) -> Option<NaiveDateTime> {
    clock_of(&runtime.config.profile, start, words, runtime.config.zone)
}

/// Checks what was read after the write against what it should show.
#[allow(clippy::too_many_arguments)]
pub(crate) fn verify_after(
    runtime: &DeviceRuntime,
    verify: &Verify,
    write: &PlannedWrite,
    written: &[u16],
    before: &[u16],
    start: u16,
    after: &[u16],
    now: DateTime<Utc>,
) -> Result<(), String> {
    let (expect, within) = match verify {
        Verify::Read(read) => (read.expect, read.within_s),
        Verify::Mode(_) => (Expect::Written, None),
        Verify::Skip { .. } => return Ok(()),
    };
    let now_local = now.with_timezone(&runtime.config.zone).naive_local();
    check(
        expect,
        within,
        written,
        before,
        after,
        |words| clock_read(runtime, start, words),
        now_local,
    )
    .map_err(|reason| format!("{} of {}: {reason}", write.name, runtime.config.name))
}

/// Fails the job as unverified and raises `command_verification_failed`
/// (momentary) on the device.
pub(crate) fn unverified(
    services: &WorkerServices,
    runtime: &DeviceRuntime,
    message: String,
    at: DateTime<Utc>,
) -> (JobErrorCode, String) {
    services.outbox.send(Record::Event {
        device: runtime.config.id,
        kind: EventKind::CommandVerificationFailed,
        message: message.clone(),
        started_at: at,
        cleared_at: Some(at),
    });
    (JobErrorCode::VerificationFailed, message)
}

/// Registers read, as the job's `before` or `after` shows them: by
/// register for one device, by device (`"device 12"`) for a broadcast.
#[derive(Debug, Default)]
pub(crate) struct Shown {
    by_device: HashMap<DeviceId, Map<String, Value>>,
}

impl Shown {
    pub(crate) fn add(&mut self, device: DeviceId, start: u16, words: &[u16]) {
        self.by_device
            .entry(device)
            .or_default()
            .insert(register_key(start), Value::from(words.to_vec()));
    }

    pub(crate) fn to_json(&self, broadcast: bool) -> Value {
        if !broadcast {
            let mut flat = Map::new();
            for registers in self.by_device.values() {
                flat.extend(registers.clone());
            }
            return Value::Object(flat);
        }
        let mut devices: Vec<_> = self.by_device.iter().collect();
        devices.sort_by_key(|(device, _)| **device);
        Value::Object(
            devices
                .into_iter()
                .map(|(device, registers)| (format!("device {device}"), Value::Object(registers.clone())))
                .collect(),
        )
    }
}
