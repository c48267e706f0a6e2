//! Time of use: which tariff band each instant falls in, under a tariff
//! calendar (season → week profile → day profile, with special days), in
//! the calendar's local time. Pure: no I/O.

use chrono::{DateTime, Utc};

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
