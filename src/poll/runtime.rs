//! What a worker keeps of one device between reads.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use super::context::{DeviceConfig, WorkerServices};
use super::status::Tracker;
use crate::device::driver::{Exchange, ReadState};
use crate::device::profile_interval::Interval;
use crate::device::pulse::Continuity;
use crate::device::pulse_check::Misconfigured;
use crate::domain::event::{EventCode, EventKind};
use crate::domain::ids::BusId;
use crate::metering::clock_drift::flag_clock_uncertain;
use crate::metering::validation::flag_interval_spikes;
use crate::store::StoreError;
use crate::store::events::{fetch_event_spans, fetch_last_event_spans};
use crate::store::load_profile::fetch_last_meter_interval;
use crate::store::load_profile_backfill::{Backfill, fetch_backfill, fetch_oldest_meter_interval};
use crate::store::logbook::{fetch_last_logbook_entry, fetch_logbook_refusals};
use crate::store::readings::fetch_latest;

/// What the worker keeps of one device between reads.
pub(crate) struct DeviceRuntime {
    pub(crate) config: DeviceConfig,
    pub(crate) tracker: Tracker,
    /// Reads under way, and what the driver learnt of the device.
    pub(crate) read: ReadState,
    /// What the worker knows of the device from the database.
    pub(crate) memory: Memory,
    /// While catching up: where the next chunk starts (past a stretch the
    /// meter holds nothing for, which stored intervals would not show).
    pub(crate) history_from: Option<DateTime<Utc>>,
    /// The last load-profile read went forward: while a first backfill
    /// runs, reads alternate between the present and older chunks.
    pub(crate) read_forward_last: bool,
    /// The logbook was asked for since the worker took the device: while
    /// the load profile catches up, it waits for the turn that does not.
    pub(crate) logbook_asked: bool,
}

impl DeviceRuntime {
    pub(crate) fn new(config: &DeviceConfig, memory: Memory) -> DeviceRuntime {
        DeviceRuntime {
            tracker: Tracker::new(config.status.clone()),
            read: ReadState::new(&config.profile),
            config: config.clone(),
            memory,
            history_from: None,
            read_forward_last: false,
            logbook_asked: false,
        }
    }

    /// Flags intervals the meter recorded before they are stored (a stored
    /// interval is never changed): those within a span its clock drifted,
    /// and those past its physical limits.
    pub(crate) fn flag_meter_intervals(&self, intervals: &mut [Interval]) {
        if let Some(first) = intervals.iter().map(|i| i.start).min() {
            let drifts: Vec<_> = self
                .memory
                .drift_spans
                .iter()
                .filter(|(_, cleared)| cleared.is_none_or(|cleared| cleared > first))
                .copied()
                .collect();
            flag_clock_uncertain(intervals, &drifts);
        }
        let limits = self.config.limits.physical(self.config.profile.max_current_a);
        flag_interval_spikes(limits.as_ref(), intervals);
    }
}

/// Counts an exchange in the bus statistics.
pub(crate) fn record_exchange(
    services: &WorkerServices,
    bus: BusId,
    config: &DeviceConfig,
    exchange: Option<Exchange>,
) {
    if let Some(exchange) = exchange {
        services
            .stats
            .links
            .record(bus, config.id, exchange.outcome, exchange.took);
    }
}

/// The latest span of an event code: its code, start and clear time.
pub(crate) type EventSpan = (EventCode, DateTime<Utc>, Option<DateTime<Utc>>);

/// What the worker needs to know of a device from the database, loaded when
/// it starts on the device and kept up to date in memory from then on, so
/// its reads never wait for the database.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    /// Pulse counters' wraps, for pulse devices (seeded from the stored
    /// counts, so a restart loses nothing).
    pub(crate) continuity: Option<Continuity>,
    /// The latest span of each of the profile's event registers, by code.
    pub(crate) event_spans: Vec<EventSpan>,
    /// Start of the newest load-profile interval stored from the meter,
    /// leaving out any stamped in the future (where the next read resumes).
    pub(crate) last_interval: Option<DateTime<Utc>>,
    /// The first backfill of the meter's load profile, newest first, if
    /// one was started (see `poll::history`).
    pub(crate) backfill: Option<Backfill>,
    /// Start of the oldest load-profile interval stored from the meter,
    /// while a first backfill runs: how far back it has found data, so how
    /// long a stretch its latest older requests found empty (see
    /// `poll::history`).
    pub(crate) oldest_interval: Option<DateTime<Utc>>,
    /// The device's `clock_drift` events over the load profile's backfill
    /// depth: intervals recorded during one are flagged.
    pub(crate) drift_spans: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// When this worker last set the device's clock (a meter that takes one
    /// set a day; the claimer looks up the sets stored before).
    pub(crate) clock_set_at: Option<DateTime<Utc>>,
    /// A pulse device's settings out of range at the last read that had
    /// them (`None` until then): its `pulse_channel_misconfigured` event
    /// changes only when they do.
    pub(crate) misconfigured: Option<Vec<Misconfigured>>,
    /// Stamp of the newest entry stored of each logbook, by profile number
    /// (where its next read resumes; none: the whole logbook is asked for).
    pub(crate) last_logbook_entries: Vec<(u8, DateTime<Utc>)>,
    /// The logbooks the meter refused whole (`meter_logbook_refusals`),
    /// by profile number, with when it last did: each asked for again a
    /// day on (`device::iec_logbook::LOGBOOK_REASK`).
    pub(crate) logbooks_refused: Vec<(u8, DateTime<Utc>)>,
}

/// How long loading a device's memory may take; past it the worker starts
/// without (counting wraps from now, backfilling the load profile from its
/// depth, whose stored intervals are not stored twice).
const LOAD_TIMEOUT: Duration = Duration::from_secs(3);

/// Loads what the worker needs to know of the device: only what its
/// profile calls for.
pub(crate) async fn load_memory(pool: &PgPool, config: &DeviceConfig, now: DateTime<Utc>) -> Memory {
    let id = config.id;
    let load = async {
        let mut memory = Memory::default();
        if config.profile.pulse_inputs.is_some() {
            let stored = fetch_latest(pool, id).await?;
            let stored = stored.into_iter().map(|r| (r.obis, r.value));
            memory.continuity = Some(Continuity::from_stored(stored));
        }
        if let Some(iec) = &config.profile.iec62056 {
            if !iec.events.is_empty() {
                let codes: Vec<EventCode> = iec.events.iter().map(|event| event.code.clone()).collect();
                memory.event_spans = fetch_last_event_spans(pool, id, &codes, now).await?;
            }
            for (_, logbook) in iec.logbooks() {
                if let Some(last) = fetch_last_logbook_entry(pool, id, logbook.profile, now).await? {
                    memory.last_logbook_entries.push((logbook.profile, last));
                }
            }
            if iec.logbooks().next().is_some() {
                memory.logbooks_refused = fetch_logbook_refusals(pool, id).await?;
            }
            if let Some(settings) = &iec.load_profile {
                memory.last_interval = fetch_last_meter_interval(pool, id, now).await?;
                memory.backfill = fetch_backfill(pool, id).await?;
                if memory.backfill.is_some_and(|backfill| backfill.completed_at.is_none()) {
                    memory.oldest_interval = fetch_oldest_meter_interval(pool, id).await?;
                }
                let since = now - TimeDelta::days(i64::from(settings.backfill_days) + 1);
                memory.drift_spans = fetch_event_spans(pool, id, &EventKind::ClockDrift, since).await?;
            }
        }
        Ok::<Memory, StoreError>(memory)
    };
    match tokio::time::timeout(LOAD_TIMEOUT, load).await {
        Ok(Ok(memory)) => memory,
        Ok(Err(error)) => {
            tracing::warn!(device = %id, %error, "cannot load what is stored of the device; starting without");
            Memory::default()
        }
        Err(_) => {
            tracing::warn!(device = %id, "the database did not answer; starting the device without what is stored of it");
            Memory::default()
        }
    }
}
