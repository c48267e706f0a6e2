//! Commands to IEC 62056-21 meters: one programming-mode session that
//! writes and reads back (`Driver::program`), and what the job becomes.
//! A meter that takes the command only in field programming and refuses
//! it now waits in `awaiting_field_programming`: the technician is told
//! what to do (the job's instructions and a `field_programming_needed`
//! event), and the bus's claimer hands the command back to try again
//! every `FieldProgramming::retry_every` (`context.rs`) until its deadline.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::command::Write;
use super::context::{DeviceConfig, WorkerServices};
use super::outbox::Record;
use super::password::{Withheld, password_refused, programming_allowed};
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::{Driver, ProgramDone, ProgramError, WriteDone};
use crate::domain::event::EventKind;
use crate::domain::ids::BusId;
use crate::domain::job::JobErrorCode;

/// Runs the command in programming mode and records what the job becomes.
pub(crate) async fn run_program(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
    write: Write,
) {
    let now = services.clock.now();
    let job = write.job;
    services.outbox.send(Record::JobStarted { job, progress: None });
    // A meter that refused the password is not sent one again until it
    // is set again: it may lock itself.
    if let Err(withheld) = programming_allowed(&runtime.config) {
        let outcome = match withheld {
            Withheld::Refused => Err((
                JobErrorCode::PasswordRefused,
                "the meter refused the password before; nothing is sent until the password is set again".to_owned(),
            )),
            Withheld::Unreadable(reason) => Err((JobErrorCode::Unsupported, reason)),
        };
        services.outbox.send(Record::JobFinished { job, outcome });
        return;
    }
    let config = &runtime.config;
    let password = programming_password(config);
    let kind = write.command.kind.as_str();
    let (result, exchange) = driver.program(config.target(), kind, &password, now).await;
    record_exchange(services, bus, config, exchange);
    if matches!(result, Err(ProgramError::PasswordRefused)) {
        password_refused(&mut runtime.config, services);
    }
    let config = &runtime.config;
    let record = match result {
        Ok(done) => {
            services.outbox.send(Record::JobProgress {
                job,
                progress: progress(&done.writes),
            });
            Record::JobFinished {
                job,
                outcome: Ok(json!({"outcome": null})),
            }
        }
        Err(ProgramError::NotInFieldProgramming { .. }) => {
            let settings = services.field_programming;
            let deadline = write
                .field_programming_deadline
                .unwrap_or_else(|| now + chrono::Duration::from_std(settings.window).unwrap_or_default());
            if write.field_programming_deadline.is_none() {
                services.outbox.send(Record::Event {
                    device: config.id,
                    kind: EventKind::FieldProgrammingNeeded,
                    message: instructions(config, deadline),
                    started_at: now,
                    cleared_at: None,
                });
            }
            let next = now + chrono::Duration::from_std(settings.retry_every).unwrap_or_default();
            Record::JobAwaiting {
                job,
                instructions: instructions(config, deadline),
                next_try_at: next.min(deadline),
                deadline,
            }
        }
        Err(error) => {
            let (code, writes) = failure(&error);
            if let Some(writes) = writes {
                services.outbox.send(Record::JobProgress {
                    job,
                    progress: progress(writes),
                });
            }
            Record::JobFinished {
                job,
                outcome: Err((code, error.to_string())),
            }
        }
    };
    let ended = !matches!(record, Record::JobAwaiting { .. });
    services.outbox.send(record);
    if ended && write.field_programming_deadline.is_some() {
        // The window opened (or the command failed otherwise): the
        // request for a technician no longer stands.
        services.outbox.send(Record::EventCleared {
            device: config.id,
            code: EventKind::FieldProgrammingNeeded.code(),
            at: now,
        });
    }
}

/// The password the device's programming mode takes: its own, else its
/// profile's.
fn programming_password(config: &DeviceConfig) -> String {
    match config.target().password {
        Some(own) => own.expose().to_owned(),
        None => config
            .profile
            .iec62056
            .as_ref()
            .and_then(|iec| iec.password.clone())
            .unwrap_or_default(),
    }
}

/// The job's code for a failure, and the writes it kept.
fn failure(error: &ProgramError) -> (JobErrorCode, Option<&[WriteDone]>) {
    match error {
        ProgramError::Unsupported(_) | ProgramError::Invalid(_) => (JobErrorCode::Unsupported, None),
        ProgramError::NotInFieldProgramming { .. } => (JobErrorCode::FieldProgrammingExpired, None),
        ProgramError::PasswordRefused => (JobErrorCode::PasswordRefused, None),
        ProgramError::WriteRefused { done, .. } => (JobErrorCode::Device, Some(done)),
        ProgramError::NotVerified(ProgramDone { writes, .. }) => (JobErrorCode::VerificationFailed, Some(writes)),
        ProgramError::Link { done, .. } => (JobErrorCode::Device, Some(done)),
    }
}

/// What the job shows of the writes: each address with the value written,
/// and what the meter showed before and after.
fn progress(writes: &[WriteDone]) -> Value {
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    for write in writes {
        before.insert(write.read.clone(), json!(write.before));
        after.insert(write.read.clone(), json!(write.after));
    }
    let written: Vec<Value> = writes
        .iter()
        .map(|write| json!({"address": write.address, "value": write.written}))
        .collect();
    json!({"written": written, "before": before, "after": after})
}

/// What the technician must do on site, until `deadline`.
pub(crate) fn instructions(config: &DeviceConfig, deadline: DateTime<Utc>) -> String {
    let until = deadline.with_timezone(&config.zone).format("%Y-%m-%d %H:%M %Z");
    let hint = config
        .profile
        .iec62056
        .as_ref()
        .and_then(|iec| iec.field_programming_hint.clone())
        .unwrap_or_else(|| "start field programming at the meter (\"PRG\" on its display)".to_owned());
    format!(
        "At meter {}: {hint}. The command is sent as soon as the meter accepts it; it is tried every minute until {until}.",
        config.name
    )
}
