//! Events a meter logs itself, as the start and stop time of its latest
//! occurrence (a voltage loss, a power down, the terminal cover opened).
//! Each read reports only the latest pair, so the event log learns of an
//! occurrence by comparing what the meter reports with the latest event of
//! that code already stored.
//!
//! - A start newer than the stored one is a new occurrence: it is stored
//!   with its start, and cleared at its stop when the meter has one (a stop
//!   before the start belongs to the occurrence before: this one is still
//!   going on).
//! - The same start with a stop now reported clears the stored event.
//! - A stored event still open when a newer start arrives ended before that
//!   start, at a time the meter no longer holds: it is cleared at the new
//!   start, the latest it can have ended.
//! - A start older than the stored one (an earlier period's value) changes
//!   nothing.
//! - A start in the future at the server's time (a meter clock far ahead)
//!   is stored already over (at its stop, else at its start), so it never
//!   holds the code open; and a stored start in the future is not taken as
//!   the latest occurrence: the next start that differs is new (one stored
//!   open is closed at its start first), so one bad stamp never stops later
//!   occurrences from being recorded.

use chrono::{DateTime, Utc};

use crate::domain::clock::is_future;

/// The latest occurrence as the meter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported {
    pub start: DateTime<Utc>,
    pub stop: Option<DateTime<Utc>>,
}

/// The latest event of the code as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored {
    pub started_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
}

/// What to write to the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventChange {
    /// Clear the open event of the code at this instant.
    Clear(DateTime<Utc>),
    /// Store a new occurrence, cleared when `cleared_at` is known.
    Open {
        started_at: DateTime<Utc>,
        cleared_at: Option<DateTime<Utc>>,
    },
}

/// The changes that bring the stored log in line with what the meter
/// reports at server time `now`, in the order to apply them.
pub(crate) fn reconcile(reported: Reported, stored: Option<Stored>, now: DateTime<Utc>) -> Vec<EventChange> {
    let mut stop = reported.stop.filter(|stop| *stop >= reported.start);
    if is_future(reported.start, now) {
        stop = stop.or(Some(reported.start));
    }
    let mut changes = Vec::new();
    let stored = match stored {
        Some(last) if is_future(last.started_at, now) && last.started_at != reported.start => {
            if last.cleared_at.is_none() {
                changes.push(EventChange::Clear(last.started_at));
            }
            None
        }
        stored => stored,
    };
    changes.extend(match stored {
        Some(last) if reported.start < last.started_at => Vec::new(),
        Some(last) if reported.start == last.started_at => match (last.cleared_at, stop) {
            (None, Some(stop)) => vec![EventChange::Clear(stop)],
            _ => Vec::new(),
        },
        Some(last) => {
            let mut changes = Vec::new();
            if last.cleared_at.is_none() {
                changes.push(EventChange::Clear(reported.start));
            }
            changes.push(EventChange::Open {
                started_at: reported.start,
                cleared_at: stop,
            });
            changes
        }
        None => vec![EventChange::Open {
            started_at: reported.start,
            cleared_at: stop,
        }],
    });
    changes
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    /// The server's time in the tests: after every stamp but the future ones.
    const NOW: DateTime<Utc> = DateTime::from_timestamp(1_796_200_000, 0).unwrap();

    /// A year after [`NOW`]: a meter clock far ahead.
    fn next_year(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 12, 1, hour, 0, 0).unwrap()
    }

    fn open(started_at: DateTime<Utc>, cleared_at: Option<DateTime<Utc>>) -> EventChange {
        EventChange::Open { started_at, cleared_at }
    }

    #[test]
    fn a_first_report_stores_the_occurrence_with_its_stop() {
        let reported = Reported {
            start: at(3, 8),
            stop: Some(at(3, 9)),
        };
        assert_eq!(reconcile(reported, None, NOW), [open(at(3, 8), Some(at(3, 9)))]);
    }

    #[test]
    fn a_stop_older_than_the_start_leaves_the_occurrence_open() {
        // The stop of the occurrence before: this one has not ended yet.
        let reported = Reported {
            start: at(5, 8),
            stop: Some(at(3, 9)),
        };
        assert_eq!(reconcile(reported, None, NOW), [open(at(5, 8), None)]);
    }

    #[test]
    fn the_stop_of_an_open_occurrence_clears_it_once() {
        let stored = Stored {
            started_at: at(5, 8),
            cleared_at: None,
        };
        let ongoing = Reported {
            start: at(5, 8),
            stop: Some(at(3, 9)),
        };
        assert!(reconcile(ongoing, Some(stored), NOW).is_empty());
        let ended = Reported {
            start: at(5, 8),
            stop: Some(at(5, 10)),
        };
        assert_eq!(reconcile(ended, Some(stored), NOW), [EventChange::Clear(at(5, 10))]);
        let cleared = Stored {
            cleared_at: Some(at(5, 10)),
            ..stored
        };
        assert!(reconcile(ended, Some(cleared), NOW).is_empty(), "nothing twice");
    }

    #[test]
    fn a_newer_start_closes_a_missed_stop_at_that_start() {
        let stored = Stored {
            started_at: at(5, 8),
            cleared_at: None,
        };
        let reported = Reported {
            start: at(7, 1),
            stop: Some(at(7, 2)),
        };
        assert_eq!(
            reconcile(reported, Some(stored), NOW),
            [EventChange::Clear(at(7, 1)), open(at(7, 1), Some(at(7, 2)))]
        );
    }

    #[test]
    fn an_older_start_changes_nothing() {
        let stored = Stored {
            started_at: at(7, 1),
            cleared_at: Some(at(7, 2)),
        };
        let reported = Reported {
            start: at(5, 8),
            stop: None,
        };
        assert!(reconcile(reported, Some(stored), NOW).is_empty());
    }

    #[test]
    fn a_start_in_the_future_is_stored_over_and_pins_nothing() {
        assert!(NOW > at(30, 23) && NOW < next_year(0), "{NOW}");
        // Stored over at its start: it holds the code open for nothing.
        let ahead = Reported {
            start: next_year(8),
            stop: None,
        };
        assert_eq!(reconcile(ahead, None, NOW), [open(next_year(8), Some(next_year(8)))]);
        let stored = Stored {
            started_at: next_year(8),
            cleared_at: Some(next_year(8)),
        };
        assert!(reconcile(ahead, Some(stored), NOW).is_empty(), "nothing twice");
        // The clock set right: an occurrence older than the bad stamp is new.
        let later = Reported {
            start: at(30, 20),
            stop: Some(at(30, 21)),
        };
        assert_eq!(
            reconcile(later, Some(stored), NOW),
            [open(at(30, 20), Some(at(30, 21)))]
        );
        // One stored open (before this rule) is closed at its start first.
        let open_ahead = Stored {
            cleared_at: None,
            ..stored
        };
        assert_eq!(
            reconcile(later, Some(open_ahead), NOW),
            [EventChange::Clear(next_year(8)), open(at(30, 20), Some(at(30, 21)))]
        );
    }
}
