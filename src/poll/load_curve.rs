//! A Modbus meter's own load curve (the COUNTIS's, `device::load_curve`),
//! read in its turn like an IEC 62056-21 load profile: newest block first,
//! back to the newest interval stored, so after the first read (all the
//! meter keeps, about 7 days) each read asks only for what is new. What is
//! new is flagged (clock drift, spikes) and stored as the meter's intervals.

use std::time::Duration;

use chrono::TimeDelta;

use super::context::WorkerServices;
use super::outbox::Record;
use super::runtime::{DeviceRuntime, record_exchange};
use crate::device::driver::{Driver, LoadCurveEnd};
use crate::domain::clock::is_future;
use crate::domain::event::EventKind;
use crate::domain::ids::BusId;

/// How often the device's load curve is read, if its profile has one and
/// the bus is Modbus.
pub(crate) fn load_curve_period(driver: &Driver, runtime: &DeviceRuntime) -> Option<Duration> {
    let settings = runtime.config.profile.modbus.load_curve.as_ref()?;
    matches!(driver, Driver::Modbus(_)).then(|| Duration::from_secs(u64::from(settings.read_minutes) * 60))
}

/// Reads what is new of the device's load curve and hands it to the
/// outbox. Returns how many intervals were new. A firmware without a load
/// curve (exception 02) and a garbled block are events, not failures.
pub(crate) async fn read_load_curve(
    driver: &mut Driver,
    bus: BusId,
    runtime: &mut DeviceRuntime,
    services: &WorkerServices,
) -> Result<usize, String> {
    let Some(settings) = runtime.config.profile.modbus.load_curve.clone() else {
        return Ok(0);
    };
    let stored = runtime.memory.last_interval;
    let mut exchanges = Vec::new();
    let result = driver
        .read_load_curve(
            runtime.config.target(),
            &mut runtime.read,
            &settings,
            stored,
            &mut exchanges,
        )
        .await;
    for exchange in exchanges {
        record_exchange(services, bus, &runtime.config, Some(exchange));
    }
    let read = match result {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!(device = %runtime.config.name, %error, "load curve not read; retried");
            return Err(error.to_string());
        }
    };
    let now = services.clock.now();
    let id = runtime.config.id;
    let name = &runtime.config.name;
    match &read.end {
        LoadCurveEnd::Done | LoadCurveEnd::NotAsked => {}
        LoadCurveEnd::Unsupported => {
            tracing::info!(device = %name, "the meter keeps no load curve (exception 02); not asked again");
            services.outbox.send(Record::Event {
                device: id,
                kind: EventKind::LoadCurveUnsupported,
                message: format!("{name}: the meter answered \"illegal data address\" to its load curve (0xF000/0xF010): its firmware keeps none; not read"),
                started_at: now,
                cleared_at: Some(now),
            });
        }
        LoadCurveEnd::Garbled(error) => {
            tracing::warn!(device = %name, %error, "load curve block not stored");
            services.outbox.send(Record::Event {
                device: id,
                kind: EventKind::LoadCurveGarbled,
                message: format!(
                    "{name}: {error} in block {} of the load curve (1 the newest); that block is not stored, the blocks before it are",
                    read.blocks
                ),
                started_at: now,
                cleared_at: Some(now),
            });
        }
    }
    let mut intervals = read.intervals;
    if intervals.is_empty() {
        return Ok(0);
    }
    runtime.flag_meter_intervals(&mut intervals);
    let present = || intervals.iter().filter(|interval| !is_future(interval.start, now));
    let new = present().count();
    let newest = present().max_by_key(|interval| interval.start);
    let read_through = newest.map(|interval| interval.start + TimeDelta::minutes(i64::from(interval.minutes)));
    if let Some(newest) = newest.map(|interval| interval.start) {
        runtime.memory.last_interval = Some(stored.map_or(newest, |stored| stored.max(newest)));
    }
    services.outbox.send(Record::Intervals {
        device: id,
        intervals,
        // The meter has spoken up to the end of its newest record.
        read_through: read_through.filter(|_| read.end == LoadCurveEnd::Done),
        // A first read goes back to the curve's oldest block (about 7 days
        // kept) in one go, later ones to the newest stored interval: no
        // backfill to track.
        backfill: None,
    });
    Ok(new)
}
