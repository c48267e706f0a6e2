//! What a read of a device does once its driver has it: pulse values
//! derived, meter conditions and clock checked, values, events and status
//! handed to the outbox (the worker never waits for the database);
//! and an operator's "read now".

use chrono::{DateTime, Utc};

use super::clock_check::check_clock;
use super::context::{DeviceConfig, WorkerServices};
use super::history::read_history;
use super::meter_events::{record_conditions, record_event_registers};
use super::outbox::{Outbox, Record};
use super::pulse_settings::check_pulse_settings;
use super::runtime::{DeviceRuntime, record_exchange};
use super::status::Transition;
use crate::device::driver::{Driver, Step};
use crate::device::energy_display::to_stored_units;
use crate::device::profile::RegisterGroup;
use crate::device::pulse::{self, Continuity};
use crate::device::reading::Reading;
use crate::domain::event::EventKind;
use crate::domain::ids::BusId;
use crate::domain::job::JobErrorCode;
use crate::store::devices::DeviceStatus;

/// Hands a complete read's values to ingest (pulse values derived first),
/// records what the meter reported of itself, and updates the device's
/// reachability. Returns the transition and how many values were read.
pub(crate) fn finish_read(
    runtime: &mut DeviceRuntime,
    step: Step,
    services: &WorkerServices,
) -> (Option<Transition>, usize) {
    let at = services.clock.now();
    match step {
        Step::More => (None, 0),
        Step::Done(mut output) => {
            let outbox = &services.outbox;
            in_stored_units(&runtime.config, &mut output.readings);
            if let Some(inputs) = runtime.config.profile.pulse_inputs {
                derive_pulses(outbox, runtime, inputs, &mut output.readings, at);
            }
            if let (Some(status), Some(iec)) = (&output.status, &runtime.config.profile.iec62056) {
                record_conditions(outbox, &runtime.config, status, iec, at);
                let spans = &mut runtime.memory.event_spans;
                record_event_registers(outbox, &runtime.config, spans, &output.readings, iec, at);
            }
            check_clock(
                outbox,
                &runtime.config,
                &mut runtime.memory.drift_spans,
                output.meter_clock,
                at,
                services.clock_drift_threshold,
            );
            if let Some(identity) = output.identity.take() {
                check_identity(outbox, &mut runtime.config, identity, at);
            }
            let count = output.readings.len();
            if count > 0 {
                let device = runtime.config.id;
                let batch = output.readings.into_iter().map(|r| (device, r)).collect();
                // Another meter's values are not billed as the device's.
                if runtime.config.identity.quarantined() {
                    outbox.send(Record::HeldReadings(batch));
                } else {
                    outbox.send(Record::Readings(batch));
                }
            }
            (runtime.tracker.success(at), count)
        }
        Step::Failed(error) => (runtime.tracker.failure(at, error.to_string()), 0),
    }
}

/// Reads `group` of the device to its end, from its first request.
pub(crate) async fn read_whole(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    group: RegisterGroup,
    services: &WorkerServices,
) -> Step {
    let mut restart = true;
    loop {
        let (step, exchange) = driver
            .read(
                runtime.config.target(),
                &mut runtime.read,
                group,
                restart,
                &services.clock,
            )
            .await;
        record_exchange(services, bus, &runtime.config, exchange);
        restart = false;
        if !matches!(step, Step::More) {
            return step;
        }
    }
}

/// An operator's "read now": every register group of the device, one
/// after the other, ahead of the schedule (a scheduled read of a group
/// under way starts again from its first request); then, for a meter that
/// keeps one, its load profile from the last stored interval.
pub(crate) async fn run_read_now(
    driver: &mut Driver,
    bus: BusId,
    runtime: Option<&mut DeviceRuntime>,
    services: &WorkerServices,
    job: i64,
) {
    let Some(runtime) = runtime else {
        refuse_read_job(&services.outbox, job);
        return;
    };
    start_job(&services.outbox, job);
    let mut total = 0;
    let mut failure = None;
    for group in driver.groups(&runtime.config.profile) {
        let lateness = std::time::Duration::ZERO;
        let period = runtime.config.period(group);
        services
            .stats
            .links
            .record_lateness(bus, runtime.config.id, lateness, period);
        let step = read_whole(driver, bus, runtime, group, services).await;
        if let Step::Failed(error) = &step {
            failure = Some(error.to_string());
        }
        let (transition, count) = finish_read(runtime, step, services);
        total += count;
        record_status(&services.outbox, runtime, transition);
        if failure.is_some() {
            break;
        }
    }
    if failure.is_none() && !runtime.config.identity.quarantined() {
        // A load profile that cannot be read now is left to its own turn.
        total += read_history(driver, bus, runtime, services)
            .await
            .map_or(0, |read| read.new);
    }
    let outcome = match failure {
        Some(error) => Err((JobErrorCode::Device, error)),
        None => Ok(serde_json::json!({ "readings": total })),
    };
    services.outbox.send(Record::JobFinished { job, outcome });
}

/// Fails a read job whose device this worker does not poll.
pub(crate) fn refuse_read_job(outbox: &Outbox, job: i64) {
    let refusal = "the device is not polled on this bus (disabled or removed)";
    outbox.send(Record::JobFinished {
        job,
        outcome: Err((JobErrorCode::NotPolled, refusal.to_owned())),
    });
}

/// Records that the worker started on a job.
pub(crate) fn start_job(outbox: &Outbox, job: i64) {
    outbox.send(Record::JobStarted { job, progress: None });
}

/// A Modbus meter set to count in MWh gives its energies in MWh: stored
/// in kWh (an IEC 62056-21 readout names its unit with each value).
fn in_stored_units(config: &DeviceConfig, readings: &mut [Reading]) {
    if let (Some(display), None) = (&config.profile.energy_display, &config.iec_address) {
        let limits = &config.limits;
        to_stored_units(
            readings,
            display.setting(limits.energy_unit.as_deref(), limits.energy_decimals),
        );
    }
}

/// Compares the identity a read found with the device's: a different
/// meter at its address puts the device in quarantine (logged at WARN; the
/// store opens `meter_identity_changed`), the expected one seen again ends
/// it.
fn check_identity(outbox: &Outbox, config: &mut DeviceConfig, identity: String, at: DateTime<Utc>) {
    let was_quarantined = config.identity.quarantined();
    let changed = config.identity.saw(&identity);
    if changed {
        let expected = config.identity.expected.as_deref().unwrap_or_default();
        if config.identity.quarantined() {
            tracing::warn!(device = %config.name, device_id = %config.id, %identity, %expected,
                "another meter answers at the device's address; its readings are held");
        } else if was_quarantined {
            tracing::info!(device = %config.name, device_id = %config.id, %identity, "the expected meter answers again");
        }
    }
    if config.identity.report_due(changed, at) {
        config.identity.reported_at = Some(at);
        outbox.send(Record::IdentitySeen {
            device: config.id,
            name: config.name.clone(),
            identity,
            at,
        });
    }
}

/// For a pulse device: keeps its counters continuous across wraps, records
/// wraps and resets as events, reports settings out of range, and adds the
/// engineering values of its inputs.
fn derive_pulses(
    outbox: &Outbox,
    runtime: &mut DeviceRuntime,
    inputs: u8,
    readings: &mut Vec<Reading>,
    at: DateTime<Utc>,
) {
    let device = runtime.config.id;
    let continuity = runtime.memory.continuity.get_or_insert_with(Continuity::default);
    let changes = continuity.apply(readings);
    for (codes, event, what) in [
        (
            &changes.wrapped,
            EventKind::RegisterRollover,
            "wrapped past 2^32 - 1; the count continues",
        ),
        (
            &changes.reset,
            EventKind::RegisterDecreased,
            "went back without wrapping: the counter was reset",
        ),
    ] {
        for code in codes {
            let message = format!("{}: counter {code} {what}", runtime.config.name);
            outbox.send(event_opened(device, event.clone(), message, at));
            outbox.send(Record::EventCleared {
                device,
                code: event.code(),
                at,
            });
        }
    }
    let last = &mut runtime.memory.misconfigured;
    check_pulse_settings(outbox, &runtime.config, last, readings, inputs, at);
    let derived = pulse::derive(readings, inputs);
    readings.extend(derived);
}

fn event_opened(device: crate::domain::ids::DeviceId, kind: EventKind, message: String, at: DateTime<Utc>) -> Record {
    Record::Event {
        device,
        kind,
        message,
        started_at: at,
        cleared_at: None,
    }
}

/// Hands the device's status to the outbox, after the `comm_lost` or
/// `comm_restored` event of a change: whoever sees the new status finds its
/// event too.
pub(crate) fn record_status(outbox: &Outbox, runtime: &DeviceRuntime, transition: Option<Transition>) {
    record_device_status(outbox, &runtime.config, &runtime.tracker.status, transition);
}

/// [`record_status`] for a device, its status, what changed.
pub(crate) fn record_device_status(
    outbox: &Outbox,
    config: &DeviceConfig,
    status: &DeviceStatus,
    transition: Option<Transition>,
) {
    let id = config.id;
    let at = status.last_attempt_at;
    match transition {
        None => {}
        Some(Transition::Lost) => {
            let error = status.last_error.as_deref().unwrap_or("no answer");
            tracing::warn!(device = %config.name, device_id = %id, %error, "device unreachable");
            let message = format!("{} stopped answering: {error}", config.name);
            outbox.send(event_opened(id, EventKind::CommLost, message, at));
        }
        Some(Transition::Restored) => {
            tracing::info!(device = %config.name, device_id = %id, "device answers again");
            let message = format!("{} answers again", config.name);
            let cleared = |kind: EventKind| Record::EventCleared {
                device: id,
                code: kind.code(),
                at,
            };
            outbox.send(cleared(EventKind::CommLost));
            outbox.send(event_opened(id, EventKind::CommRestored, message, at));
            outbox.send(cleared(EventKind::CommRestored));
        }
    }
    outbox.send(Record::Status {
        device: id,
        status: status.clone(),
    });
}
