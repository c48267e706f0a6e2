//! Real time into bands. A calendar's band is a step function of time: it
//! changes only at switch instants, each a local day's switch time made an
//! instant by the rule of `local.rs`. Before a day's first switch the
//! previous day's last band carries, so a local midnight without a switch
//! changes nothing; splitting a period is walking the switch instants in
//! it. Local-to-instant is monotonic (gaps and folds included), so the
//! instants of consecutive days come in order; two switch times that name
//! the same instant (both inside one gap) leave the later one in force.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::calendar::Calendar;
use super::local::instant;
use super::{BandSplit, Piece};

/// A band change: from `at` on, band `band` (index into the calendar's bands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    at: DateTime<Utc>,
    band: usize,
}

impl Calendar {
    /// The band changes of the local dates `first..=last`, in order.
    fn changes(&self, first: NaiveDate, last: NaiveDate) -> Vec<Change> {
        let zone = self.zone.tz();
        first
            .iter_days()
            .take_while(|date| *date <= last)
            .flat_map(|date| {
                self.day_profile_on(date).switches.iter().map(move |switch| {
                    let minute = i64::from(switch.minute);
                    let local = date.and_hms_opt(0, 0, 0).expect("midnight") + Duration::minutes(minute);
                    Change {
                        at: instant(zone, local),
                        band: switch.band,
                    }
                })
            })
            .collect()
    }

    /// The local date of an instant.
    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone.tz()).date_naive()
    }

    /// Band indices over `[from, to)`, neighbours in different bands.
    fn split(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(usize, DateTime<Utc>, DateTime<Utc>)> {
        if from >= to {
            return Vec::new();
        }
        // Two days of margin: the band at `from` is set by a change of the
        // day before at the latest (every day profile has a switch), and a
        // gap may carry a change across midnight.
        let first = self.local_date(from) - Duration::days(2);
        let last = self.local_date(to) + Duration::days(1);
        let changes = self.changes(first, last);
        let mut band = changes
            .iter()
            .take_while(|change| change.at <= from)
            .last()
            .expect("a change in the days before")
            .band;
        let mut pieces = Vec::new();
        let mut start = from;
        for change in changes.iter().filter(|c| c.at > from && c.at < to) {
            if change.band != band {
                pieces.push((band, start, change.at));
                start = change.at;
                band = change.band;
            }
        }
        pieces.push((band, start, to));
        pieces
    }
}

impl BandSplit for Calendar {
    fn pieces(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Piece> {
        self.split(from, to)
            .into_iter()
            .map(|(band, from, to)| Piece {
                band: self.bands[band].clone(),
                from,
                to,
            })
            .collect()
    }

    fn bands(&self) -> Vec<String> {
        self.bands.clone()
    }
}

/// The versions of a calendar: each applies from its `effective_from` until
/// the next one's, so a period of last year is split by last year's
/// calendar. The first version also applies before its own date (a
/// statement for a period before the calendar was entered uses the oldest
/// version known). A passive calendar that becomes active at a given time
/// is simply the next version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CalendarVersions {
    /// Strictly increasing `effective_from`; never empty.
    versions: Vec<(DateTime<Utc>, Calendar)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VersionsError {
    #[error("a calendar needs at least one version")]
    Empty,
    #[error("versions must take effect in increasing time; {0} does not follow the version before it")]
    Unordered(DateTime<Utc>),
}

impl CalendarVersions {
    pub(crate) fn new(versions: Vec<(DateTime<Utc>, Calendar)>) -> Result<CalendarVersions, VersionsError> {
        if versions.is_empty() {
            return Err(VersionsError::Empty);
        }
        if let Some(pair) = versions.windows(2).find(|pair| pair[0].0 >= pair[1].0) {
            return Err(VersionsError::Unordered(pair[1].0));
        }
        Ok(CalendarVersions { versions })
    }

    /// One calendar, in force at all times.
    #[cfg(test)]
    pub(crate) fn single(calendar: Calendar) -> CalendarVersions {
        CalendarVersions {
            versions: vec![(DateTime::<Utc>::MIN_UTC, calendar)],
        }
    }

    pub(crate) fn versions(&self) -> &[(DateTime<Utc>, Calendar)] {
        &self.versions
    }

    /// The version in force at `at` (its zone is the local time of a
    /// statement's period).
    pub(crate) fn at(&self, at: DateTime<Utc>) -> &Calendar {
        let later = self.versions.partition_point(|(from, _)| *from <= at);
        &self.versions[later.saturating_sub(1)].1
    }

    /// One entry per step of real time from `from` (a 25-hour local day has
    /// 100 quarter hours), each step's band being the band at its start.
    pub(crate) fn classify(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Vec<(DateTime<Utc>, String)> {
        super::classify(self, from, to, step)
    }
}

impl BandSplit for CalendarVersions {
    fn pieces(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Piece> {
        let mut pieces: Vec<Piece> = Vec::new();
        for (i, (_, calendar)) in self.versions.iter().enumerate() {
            let start = if i == 0 { from } else { from.max(self.versions[i].0) };
            let end = self.versions.get(i + 1).map_or(to, |(next, _)| to.min(*next));
            for piece in calendar.pieces(start, end) {
                match pieces.last_mut() {
                    Some(last) if last.band == piece.band && last.to == piece.from => last.to = piece.to,
                    _ => pieces.push(piece),
                }
            }
        }
        pieces
    }

    /// Every version's bands, in the order they first appear from the
    /// oldest version on.
    fn bands(&self) -> Vec<String> {
        let mut bands: Vec<String> = Vec::new();
        for band in self.versions.iter().flat_map(|(_, c)| c.bands.iter()) {
            if !bands.contains(band) {
                bands.push(band.clone());
            }
        }
        bands
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
