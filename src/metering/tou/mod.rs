//! Time of use: which tariff band each instant falls in, under a tariff
//! calendar (season → week profile → day profile, with special days), in
//! the calendar's local time. Pure: no I/O. docs/TARIFFS.md describes the
//! model, its JSON shape and its rules for DST.

use chrono::{DateTime, Duration, Utc};

pub(crate) mod a1000;
pub(crate) mod calendar;
pub(crate) mod definition;
pub(crate) mod easter;
pub(crate) mod local;
pub(crate) mod presets;
pub(crate) mod split;
pub(crate) mod switches;

pub(crate) use calendar::{Calendar, Problem};
pub(crate) use definition::CalendarDefinition;
pub(crate) use split::CalendarVersions;

/// A stretch of real time that lies wholly in one tariff band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    /// The band's name, as the calendar defines it (`"F1"`, `"T2"`, …).
    pub band: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Splits real time into tariff bands: what statements, balances and the
/// TOU audit need of a calendar.
pub(crate) trait BandSplit {
    /// Consecutive pieces covering `[from, to)` exactly, in order, each in
    /// one band; two neighbours may share a band. Empty when `from >= to`.
    fn pieces(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Piece>;

    /// The bands the calendar can give, in its order (for a statement's
    /// rows, including bands with no energy in the period).
    fn bands(&self) -> Vec<String>;
}

/// One entry per `step` of real time from `from` while before `to`, each
/// with the band in force at the step's start (an interval is labelled by
/// where it begins, as interval data is stamped). Steps are real time, not
/// local: a 25-hour local day has 100 quarter hours, a 23-hour one 92.
/// Empty when `from >= to` or `step` is not positive.
pub(crate) fn classify(
    split: &impl BandSplit,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
) -> Vec<(DateTime<Utc>, String)> {
    if step <= Duration::zero() {
        return Vec::new();
    }
    let pieces = split.pieces(from, to);
    let mut steps = Vec::new();
    let mut at = from;
    let mut piece = pieces.iter().peekable();
    while at < to {
        while piece.peek().is_some_and(|p| p.to <= at) {
            piece.next();
        }
        let Some(current) = piece.peek() else { break };
        steps.push((at, current.band.clone()));
        at += step;
    }
    steps
}
