//! The data behind a statement: how many intervals were measured, how many
//! estimated, how many are missing, and which carry a flag a reader of the
//! bill must see.
//!
//! An interval is one start time of the device's energy channels (all its
//! channels of that start count once). It is **estimated** when any of its
//! channels' newest version is an estimate (source `estimated` or flag
//! `estimated`), else **actual** (measured, derived from registers, or
//! corrected by an operator). **Missing** counts the time of the period no
//! stored interval covers, in intervals of the device's nominal length,
//! each uncovered stretch rounded up (a stretch of 20 minutes on a
//! 15-minute profile is 2 missing intervals). Every interval with a quality
//! flag, or estimated or edited, is listed by its start with its flags, so
//! `estimated` and `clock_uncertain` intervals are named, not hidden.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::quantity::{ChannelInterval, is_energy_channel};
use crate::domain::quality::Quality;
use crate::domain::source::IntervalSource;

/// An interval a reader must see: its span, flags and sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlaggedInterval {
    pub start: DateTime<Utc>,
    pub minutes: u32,
    /// The union of its channels' flags, by name.
    pub flags: Vec<&'static str>,
    /// Its channels' sources, each once.
    pub sources: Vec<IntervalSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DataQuality {
    pub actual: u32,
    pub estimated: u32,
    pub missing: u32,
    /// Time no interval covers that a running first backfill of the
    /// meter's load profile has not reached yet ([`DataStart::Pending`]),
    /// in intervals: not in `missing`.
    pub pending: u32,
    /// For a virtual meter: starts where some member lacked an energy
    /// interval the others had. Where no channel of a start is complete the
    /// start is also in `missing`; the caller sets it (always 0 for a
    /// device).
    pub incomplete: u32,
    /// Intervals flagged `clock_uncertain` (also listed in `flagged`).
    pub clock_uncertain: u32,
    pub flagged: Vec<FlaggedInterval>,
}

struct Slot {
    end: DateTime<Utc>,
    quality: Quality,
    sources: BTreeSet<&'static str>,
}

/// Where a device's own data starts, as its first load-profile backfill
/// (read newest first) tells: what no interval covers before it is not a
/// gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DataStart {
    /// No backfill: every uncovered stretch is missing.
    #[default]
    Unknown,
    /// A backfill is running and has read back to this instant (or, where
    /// its requests since found no record, the oldest interval stored from
    /// the meter): uncovered time before it is pending.
    Pending(DateTime<Utc>),
    /// The backfill is complete and the meter's oldest stored interval
    /// starts here: before it the meter never recorded anything, which is
    /// neither pending nor missing.
    Recorded(DateTime<Utc>),
}

/// Counts the intervals of `[from, to)` (those starting inside it) and the
/// time no interval covers, in intervals of `nominal_minutes`.
pub(crate) fn data_quality(
    intervals: &[ChannelInterval],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    nominal_minutes: u32,
) -> DataQuality {
    data_quality_from(intervals, (from, to), nominal_minutes, DataStart::Unknown)
}

/// [`data_quality`], with uncovered time before `start` pending or not
/// counted.
pub(crate) fn data_quality_from(
    intervals: &[ChannelInterval],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    nominal_minutes: u32,
    start: DataStart,
) -> DataQuality {
    let mut slots: BTreeMap<DateTime<Utc>, Slot> = BTreeMap::new();
    for interval in intervals {
        if !is_energy_channel(&interval.obis) || interval.end() <= from || interval.start >= to {
            continue;
        }
        let slot = slots.entry(interval.start).or_insert(Slot {
            end: interval.end(),
            quality: Quality::GOOD,
            sources: BTreeSet::new(),
        });
        slot.end = slot.end.max(interval.end());
        slot.quality = slot.quality.with(interval.quality);
        slot.sources.insert(interval.source.as_str());
    }
    let mut quality = DataQuality::default();
    let nominal = i64::from(nominal_minutes.max(1)) * 60;
    let count = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let gap = (to - from).num_seconds();
        u32::try_from((gap + nominal - 1) / nominal).unwrap_or(u32::MAX)
    };
    let data_start = start;
    // An uncovered stretch `[a, b)`: pending, not counted or missing.
    let uncovered = |a: DateTime<Utc>, b: DateTime<Utc>, quality: &mut DataQuality| {
        let cut = match data_start {
            DataStart::Unknown => a,
            DataStart::Pending(at) | DataStart::Recorded(at) => at.clamp(a, b),
        };
        if matches!(data_start, DataStart::Pending(_)) && cut > a {
            quality.pending = quality.pending.saturating_add(count(a, cut));
        }
        if b > cut {
            quality.missing = quality.missing.saturating_add(count(cut, b));
        }
    };
    let mut covered_to = from;
    for (start, slot) in &slots {
        if *start > covered_to {
            uncovered(covered_to, *start, &mut quality);
        }
        covered_to = covered_to.max(slot.end);
        if *start < from {
            // Straddles the period's start: its energy counts, its count
            // belongs to the period before.
            continue;
        }
        let estimated = slot.quality.contains(Quality::ESTIMATED) || slot.sources.contains("estimated");
        if estimated {
            quality.estimated += 1;
        } else {
            quality.actual += 1;
        }
        if slot.quality.contains(Quality::CLOCK_UNCERTAIN) {
            quality.clock_uncertain += 1;
        }
        if slot.quality != Quality::GOOD || estimated || slot.sources.contains("edited") {
            let sources = IntervalSource::ALL
                .iter()
                .copied()
                .filter(|source| slot.sources.contains(source.as_str()))
                .collect();
            quality.flagged.push(FlaggedInterval {
                start: *start,
                minutes: u32::try_from((slot.end - *start).num_minutes()).unwrap_or(0),
                flags: slot.quality.names(),
                sources,
            });
        }
    }
    if to > covered_to {
        uncovered(covered_to, to, &mut quality);
    }
    quality
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::super::energy::tests::{at, kwh};
    use super::*;

    #[test]
    fn counts_actual_estimated_and_missing_and_names_the_flagged() {
        let mut intervals: Vec<ChannelInterval> = (0..8)
            .filter(|i| *i != 3 && *i != 4)
            .flat_map(|i| {
                let start = at(2, 0, 0) + Duration::minutes(15 * i);
                [kwh("1-1:1.29.0", start, 15, 1.0), kwh("1-1:2.29.0", start, 15, 0.0)]
            })
            .collect();
        // 00:15 estimated (one channel is enough), 00:30 clock uncertain.
        intervals[2].source = IntervalSource::Estimated;
        intervals[2].quality = Quality::ESTIMATED;
        intervals[5].quality = Quality::CLOCK_UNCERTAIN;
        // A channel that is no energy quantity is not an interval of the statement.
        intervals.push(kwh("1-1:32.7.0", at(2, 0, 45), 15, 230.0));
        let quality = data_quality(&intervals, at(2, 0, 0), at(2, 2, 30), 15);
        // Present: 00:00, 00:15, 00:30, 01:15, 01:30, 01:45; missing 00:45, 01:00 and 02:00–02:30.
        assert_eq!((quality.actual, quality.estimated, quality.missing), (5, 1, 4));
        assert_eq!(quality.clock_uncertain, 1);
        let named: Vec<_> = quality.flagged.iter().map(|f| (f.start, f.flags.clone())).collect();
        assert_eq!(
            named,
            vec![
                (at(2, 0, 15), vec!["estimated"]),
                (at(2, 0, 30), vec!["clock_uncertain"])
            ]
        );
        assert_eq!(
            quality.flagged[0].sources,
            vec![IntervalSource::Meter, IntervalSource::Estimated]
        );
    }

    #[test]
    fn a_partial_gap_counts_as_a_whole_interval() {
        let intervals = vec![
            kwh("1-1:1.29.0", at(2, 0, 0), 15, 1.0),
            kwh("1-1:1.29.0", at(2, 0, 35), 15, 1.0),
        ];
        let quality = data_quality(&intervals, at(2, 0, 0), at(2, 0, 50), 15);
        assert_eq!((quality.actual, quality.missing), (2, 2));
    }

    #[test]
    fn before_a_backfills_reach_uncovered_time_is_pending_and_before_the_meters_oldest_data_not_counted() {
        // Stored 01:00–02:00; the period is 00:00–02:30.
        let intervals: Vec<_> = (0..4)
            .map(|i| kwh("1-1:1.29.0", at(2, 1, 0) + Duration::minutes(15 * i), 15, 1.0))
            .collect();
        let period = (at(2, 0, 0), at(2, 2, 30));
        // Running, read back to 00:30: 00:00–00:30 pending, 00:30–01:00 and
        // 02:00–02:30 missing.
        let running = data_quality_from(&intervals, period, 15, DataStart::Pending(at(2, 0, 30)));
        assert_eq!((running.actual, running.pending, running.missing), (4, 2, 4));
        // Complete, the meter's oldest interval at 01:00: only the end is missing.
        let done = data_quality_from(&intervals, period, 15, DataStart::Recorded(at(2, 1, 0)));
        assert_eq!((done.actual, done.pending, done.missing), (4, 0, 2));
        // Without a backfill everything uncovered is missing.
        let unknown = data_quality_from(&intervals, period, 15, DataStart::Unknown);
        assert_eq!((unknown.pending, unknown.missing), (0, 6));
    }
}
