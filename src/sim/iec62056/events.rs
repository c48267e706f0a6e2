//! Power-quality events of a simulated IEC meter: deterministic from the
//! seed, a few a month per kind and phase, each with a start and a stop.
//! The meter's counters, cumulative minutes and last start/stop times are
//! computed from this list, so a test can check them against it.
//!
//! Events do not change the energy history (a real voltage loss would
//! lower the energy of its intervals); the simulator keeps the two
//! independent so the energy laws stay exact.

use chrono::{DateTime, Duration, Utc};

use crate::sim::site::noise;

/// The event kinds of both manuals (A1000 display codes 10–35; TH40C §2.5
/// in `docs/PROTOCOLS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoggedEventKind {
    /// A1000 10/13/14, TH40C C.50.4x: phase voltage below 78 % Un with current.
    VoltageLoss,
    /// A1000 20/23/24 "phase failure", TH40C C.50.5x "mancanza alimentazione".
    PhaseFailure,
    /// A1000 30/31.
    OverCurrent,
    /// A1000 32/33 (no phase).
    ReverseRun,
    /// A1000 34/35, TH40C C.51.0/C.51.1 (no phase).
    PowerDown,
    /// TH40C 1-1:31.32.0 etc.: phase current below 2 % In.
    CurrentLoss,
    /// TH40C C.50.6x.
    CurrentUnbalance,
    /// TH40C 32.36.0 etc.
    OverVoltage,
    /// TH40C C.50.8x, 32.33.0 etc.
    UnderVoltage,
    /// TH40C C.90.1/C.90.2.
    TerminalCover,
}

impl LoggedEventKind {
    /// Whether events of the kind are per phase (phases 1–3) or of the
    /// whole meter (phase 0).
    pub fn per_phase(self) -> bool {
        !matches!(
            self,
            LoggedEventKind::ReverseRun | LoggedEventKind::PowerDown | LoggedEventKind::TerminalCover
        )
    }

    /// Chance that an event starts on a given day, per phase.
    fn daily_chance(self) -> f64 {
        match self {
            LoggedEventKind::PowerDown | LoggedEventKind::TerminalCover => 0.02,
            LoggedEventKind::OverCurrent | LoggedEventKind::UnderVoltage => 0.08,
            _ => 0.05,
        }
    }

    fn salt(self) -> u64 {
        self as u64 * 8 + 1000
    }
}

/// One event: from `start` to `stop` (whole minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub start: DateTime<Utc>,
    pub stop: DateTime<Utc>,
}

impl Event {
    /// Minutes of the event that lie before `now`.
    pub fn minutes_until(&self, now: DateTime<Utc>) -> i64 {
        (self.stop.min(now) - self.start).num_minutes().max(0)
    }
}

/// Counters of one kind and phase over a time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventSummary {
    pub count: u32,
    pub minutes: i64,
    pub last_start: Option<DateTime<Utc>>,
    /// `None` while the last event is still going on.
    pub last_stop: Option<DateTime<Utc>>,
}

/// Events of `kind` on `phase` (0 for a meter-wide kind) that started in
/// `[from, now]`, oldest first: at most one a day, starting at a seeded
/// minute of the UTC day and lasting 1 to 180 minutes.
pub fn events(seed: u64, kind: LoggedEventKind, phase: u8, from: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Event> {
    let mut found = Vec::new();
    let first_day = from.timestamp().div_euclid(86_400);
    let last_day = now.timestamp().div_euclid(86_400);
    for day in first_day..=last_day {
        let salt = kind.salt() + u64::from(phase);
        if noise(seed, salt, day as u64) >= kind.daily_chance() {
            continue;
        }
        let minute = (noise(seed, salt + 500, day as u64) * 1_300.0) as i64;
        let length = 1 + (noise(seed, salt + 900, day as u64) * 180.0) as i64;
        let start = DateTime::from_timestamp(day * 86_400 + minute * 60, 0).expect("in range");
        if start < from || start > now {
            continue;
        }
        found.push(Event {
            start,
            stop: start + Duration::minutes(length),
        });
    }
    found
}

/// Counters of the events of `kind` on `phase` that started in `[from, now]`.
pub fn summary(seed: u64, kind: LoggedEventKind, phase: u8, from: DateTime<Utc>, now: DateTime<Utc>) -> EventSummary {
    let list = events(seed, kind, phase, from, now);
    let last = list.last();
    EventSummary {
        count: list.len() as u32,
        minutes: list.iter().map(|event| event.minutes_until(now)).sum(),
        last_start: last.map(|event| event.start),
        last_stop: last.and_then(|event| (event.stop <= now).then_some(event.stop)),
    }
}

/// Whether an event of `kind` on `phase` is going on at `now`.
pub fn active(seed: u64, kind: LoggedEventKind, phase: u8, now: DateTime<Utc>) -> bool {
    events(seed, kind, phase, now - Duration::days(1), now)
        .iter()
        .any(|event| event.stop > now)
}
