//! A virtual meter's intervals: the signed sum of its members' intervals,
//! channel by channel and start by start (docs/SITES.md, Virtual meters).
//!
//! An interval is summed only where every member has it, with the same
//! length and unit; where one member lacks it, the sum would be a smaller
//! number that looks like a real one, so the interval is left out and
//! reported as incomplete, naming the members that lack it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::IntervalSource;
use crate::domain::unit::Unit;

/// One interval of one channel: the newest version of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MemberInterval {
    pub obis: ObisCode,
    pub start: DateTime<Utc>,
    pub minutes: i32,
    pub value: f64,
    pub unit: Unit,
    pub quality: Quality,
    pub source: IntervalSource,
    pub version: i32,
}

/// A member: a device, added (+1) or subtracted (−1).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub device: DeviceId,
    pub sign: i8,
    pub intervals: Vec<MemberInterval>,
}

/// An interval some members have and others lack (or have with another
/// length or unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incomplete {
    pub obis: ObisCode,
    pub start: DateTime<Utc>,
    /// The members without a matching interval, in the terms' order.
    pub missing: Vec<DeviceId>,
    /// Of those, the members whose running first backfill of their load
    /// profile has not reached the start yet, or found no record there
    /// (moved out of `missing` by
    /// the caller, who knows the backfills).
    pub pending: Vec<DeviceId>,
}

/// The sum: complete intervals by start then channel, and the incomplete ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct VirtualSum {
    pub intervals: Vec<MemberInterval>,
    pub incomplete: Vec<Incomplete>,
}

/// Where the members' sources differ, the sum takes the first of these any
/// member has: an estimate anywhere makes the sum an estimate.
const SOURCE_RANK: [IntervalSource; 4] = [
    IntervalSource::Estimated,
    IntervalSource::Edited,
    IntervalSource::Derived,
    IntervalSource::Meter,
];

/// The signed sum of `members`' intervals. The value is `Σ sign × value`
/// in the members' order; the flags are the union of the members' flags;
/// the version is the highest of theirs (a correction of any member makes
/// a newer sum); the length and unit are the members' common ones.
pub(crate) fn virtual_sum(members: &[Member]) -> VirtualSum {
    let mut cells: BTreeMap<(DateTime<Utc>, ObisCode), Vec<Option<&MemberInterval>>> = BTreeMap::new();
    for (index, member) in members.iter().enumerate() {
        for interval in &member.intervals {
            let cell = cells
                .entry((interval.start, interval.obis.clone()))
                .or_insert_with(|| vec![None; members.len()]);
            cell[index] = Some(interval);
        }
    }
    let mut sum = VirtualSum::default();
    for ((start, obis), cell) in cells {
        let first = cell.iter().flatten().next().copied();
        let Some(first) = first else { continue };
        let missing: Vec<DeviceId> = members
            .iter()
            .zip(&cell)
            .filter(|(_, interval)| {
                !interval.is_some_and(|interval| interval.minutes == first.minutes && interval.unit == first.unit)
            })
            .map(|(member, _)| member.device)
            .collect();
        if !missing.is_empty() {
            sum.incomplete.push(Incomplete {
                obis,
                start,
                missing,
                pending: Vec::new(),
            });
            continue;
        }
        let present: Vec<(&Member, &MemberInterval)> = members.iter().zip(cell.iter().flatten().copied()).collect();
        let value = present
            .iter()
            .map(|(member, interval)| f64::from(member.sign) * interval.value)
            .sum();
        let quality = present
            .iter()
            .fold(Quality::GOOD, |quality, (_, interval)| quality.with(interval.quality));
        let source = SOURCE_RANK
            .into_iter()
            .find(|source| present.iter().any(|(_, interval)| interval.source == *source))
            .unwrap_or(first.source);
        let version = present.iter().map(|(_, interval)| interval.version).max().unwrap_or(1);
        sum.intervals.push(MemberInterval {
            obis,
            start,
            minutes: first.minutes,
            value,
            unit: first.unit,
            quality,
            source,
            version,
        });
    }
    sum
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, minute, 0).unwrap()
    }

    fn interval(minute: u32, value: f64) -> MemberInterval {
        MemberInterval {
            obis: "1-1:1.29.0".parse().unwrap(),
            start: at(minute),
            minutes: 15,
            value,
            unit: Unit::KWh,
            quality: Quality::GOOD,
            source: IntervalSource::Meter,
            version: 1,
        }
    }

    #[test]
    fn complete_intervals_are_summed_with_their_signs_and_partial_ones_reported() {
        let estimated = MemberInterval {
            quality: Quality::ESTIMATED,
            source: IntervalSource::Estimated,
            version: 2,
            ..interval(15, 0.5)
        };
        let members = [
            Member {
                device: DeviceId(3),
                sign: 1,
                intervals: vec![interval(0, 10.0), interval(15, 8.0), interval(30, 7.0)],
            },
            Member {
                device: DeviceId(4),
                sign: -1,
                intervals: vec![interval(0, 2.5), estimated, interval(45, 1.0)],
            },
        ];
        let sum = virtual_sum(&members);
        // 10 − 2.5 and 8 − 0.5, by hand.
        assert_eq!(
            sum.intervals.iter().map(|i| (i.start, i.value)).collect::<Vec<_>>(),
            vec![(at(0), 7.5), (at(15), 7.5)]
        );
        assert_eq!(sum.intervals[1].quality, Quality::ESTIMATED);
        assert_eq!(sum.intervals[1].source, IntervalSource::Estimated);
        assert_eq!(sum.intervals[1].version, 2);
        assert_eq!(sum.intervals[0].source, IntervalSource::Meter);
        assert_eq!(
            sum.incomplete
                .iter()
                .map(|i| (i.start, i.missing.clone()))
                .collect::<Vec<_>>(),
            vec![(at(30), vec![DeviceId(4)]), (at(45), vec![DeviceId(3)])]
        );
    }

    #[test]
    fn an_interval_of_another_length_is_no_match() {
        let long = MemberInterval {
            minutes: 30,
            ..interval(0, 1.0)
        };
        let members = [
            Member {
                device: DeviceId(1),
                sign: 1,
                intervals: vec![interval(0, 1.0)],
            },
            Member {
                device: DeviceId(2),
                sign: 1,
                intervals: vec![long],
            },
        ];
        let sum = virtual_sum(&members);
        assert!(sum.intervals.is_empty());
        assert_eq!(sum.incomplete[0].missing, vec![DeviceId(2)]);
    }
}
