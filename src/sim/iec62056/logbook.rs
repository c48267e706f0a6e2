//! The TH40C's event logbook (`R5 P.98`): the manual says the meter keeps
//! up to 255 events with date and time ("Eventi e allarmi") but gives
//! neither the layout nor the codes, so the simulator answers in the layout
//! the head-end accepts (`docs/PROTOCOLS.md`, "Event logbook") with codes
//! of its own: the status `KKPS`, KK the [`LoggedEventKind`] (hex), P the
//! phase (0 for the whole meter), S 0 for the start, 1 for the stop. Its
//! entries are the occurrences its counters report ([`super::events`]), so
//! a test can check the one against the other.

use chrono::{DateTime, Utc};

use super::events::{LoggedEventKind, events};
use super::kind::IecKind;
use super::model::IecMeter;
use crate::protocol::iec62056::{LogbookEntry, ProfileRequest, ProfileTime};

/// Entries the TH40C keeps (TH40C manual, "Eventi e allarmi": up to 255).
pub const TH40C_LOGBOOK_ENTRIES: usize = 255;

/// The kinds the TH40C's counters report (`codes`: App. A's C.50.4x-8x,
/// current loss, over voltage, C.51, C.90).
pub const TH40C_LOGBOOK_KINDS: [LoggedEventKind; 8] = [
    LoggedEventKind::VoltageLoss,
    LoggedEventKind::PhaseFailure,
    LoggedEventKind::CurrentUnbalance,
    LoggedEventKind::UnderVoltage,
    LoggedEventKind::CurrentLoss,
    LoggedEventKind::OverVoltage,
    LoggedEventKind::PowerDown,
    LoggedEventKind::TerminalCover,
];

/// The simulator's status of an entry.
pub fn logbook_status(kind: LoggedEventKind, phase: u8, stop: bool) -> String {
    format!("{:02X}{phase}{}", kind as u8, u8::from(stop))
}

/// Every start and (past) stop of the kinds `kinds` since `from`, up to
/// `now`, oldest first (by instant, then status), the newest `keep` kept.
pub fn logbook_occurrences(
    seed: u64,
    kinds: &[LoggedEventKind],
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    keep: usize,
) -> Vec<(DateTime<Utc>, String)> {
    let mut found = Vec::new();
    for &kind in kinds {
        let phases = if kind.per_phase() { 1..=3 } else { 0..=0 };
        for phase in phases {
            for event in events(seed, kind, phase, from, now) {
                found.push((event.start, logbook_status(kind, phase, false)));
                if event.stop <= now {
                    found.push((event.stop, logbook_status(kind, phase, true)));
                }
            }
        }
    }
    found.sort();
    let skip = found.len().saturating_sub(keep);
    found.drain(..skip);
    found
}

impl IecMeter {
    /// The answer to `R5 P.98(from;to)`: the entries stamped in the range
    /// (empty bounds: oldest / newest), in local time with the season.
    /// `None` for a meter without a logbook (the A1000 here): it answers
    /// `(ERROR)`.
    pub fn logbook(&mut self, request: &ProfileRequest, now: DateTime<Utc>) -> Option<Vec<LogbookEntry>> {
        self.logbook_requests += 1;
        if self.kind() != IecKind::Th40c || self.no_logbook {
            return None;
        }
        let bound = |meter: &IecMeter, time: &Option<ProfileTime>| {
            time.map(|t| {
                if t.season == 2 {
                    t.time.and_utc()
                } else {
                    meter.instant(t.time)
                }
            })
        };
        let from = bound(self, &request.from);
        let to = bound(self, &request.to);
        let epoch = self.history().epoch();
        let all = logbook_occurrences(
            self.config.seed,
            &TH40C_LOGBOOK_KINDS,
            epoch,
            now,
            TH40C_LOGBOOK_ENTRIES,
        );
        Some(
            all.into_iter()
                .filter(|(at, _)| from.is_none_or(|from| *at >= from) && to.is_none_or(|to| *at <= to))
                .map(|(at, status)| LogbookEntry {
                    profile: request.profile,
                    stamp: ProfileTime {
                        season: self.season(at),
                        time: self.local(at),
                    },
                    status,
                    values: Vec::new(),
                })
                .collect(),
        )
    }
}
