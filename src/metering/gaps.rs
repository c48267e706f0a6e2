//! Missing intervals in a stored load profile.
//!
//! A gap is a span with no stored interval of a channel between two stored
//! ones, or after the last stored one up to a bound the caller gives (the
//! end of the last complete interval before both a given instant and the
//! last read of the meter's profile through to the present: a span not read
//! yet, an outage still running or a backfill catching up, is not a gap).
//!
//! The missing intervals are laid on the same grid as the stored ones: each
//! takes the length of the interval before the gap, counted from local
//! midnight in the site's zone (see `register_deltas::interval_containing`),
//! and the last one is cut where the next stored interval starts.
//!
//! Where the meter keeps a load profile of its own, a gap is first left for
//! the meter's history: after an outage the next profile read fills it. Such
//! a gap is due for estimation only once its end is older than a grace
//! period ([`is_due`]).

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::register_deltas::interval_containing;

/// One missing interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub minutes: u32,
}

/// A span of missing intervals `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub slots: Vec<Slot>,
}

impl Gap {
    pub fn minutes(&self) -> i64 {
        (self.end - self.start).num_minutes()
    }
}

/// The gaps between `stored` intervals (start and length, any order) and,
/// where `until` is after the end of the last one, the trailing span up to
/// `until`. Oldest first.
pub fn find_gaps(stored: &[(DateTime<Utc>, u32)], until: Option<DateTime<Utc>>, zone: Tz) -> Vec<Gap> {
    let mut stored: Vec<(DateTime<Utc>, u32)> = stored.to_vec();
    stored.sort_unstable();
    let mut gaps = Vec::new();
    let Some(&(first, first_minutes)) = stored.first() else {
        return gaps;
    };
    let mut end = first + Duration::minutes(i64::from(first_minutes));
    let mut minutes = first_minutes;
    for &(start, length) in &stored[1..] {
        if start > end {
            gaps.push(gap(end, start, minutes, zone));
        }
        let this_end = start + Duration::minutes(i64::from(length));
        if this_end >= end {
            end = this_end;
            minutes = length;
        }
    }
    if let Some(until) = until.filter(|until| *until > end) {
        gaps.push(gap(end, until, minutes, zone));
    }
    gaps.retain(|gap| !gap.slots.is_empty());
    gaps
}

/// The slots of `[start, end)` on the grid of `minutes`-long intervals.
fn gap(start: DateTime<Utc>, end: DateTime<Utc>, minutes: u32, zone: Tz) -> Gap {
    let minutes = minutes.clamp(1, 120);
    let mut slots = Vec::new();
    let mut cursor = start;
    while cursor < end {
        let (_, grid_end) = interval_containing(cursor, minutes, zone);
        let next = if grid_end > cursor {
            grid_end
        } else {
            cursor + Duration::minutes(i64::from(minutes))
        }
        .min(end);
        // A stored interval off the grid by less than a minute leaves a
        // sliver no interval can hold: it is skipped, not stored.
        if let Ok(length @ 1..) = u32::try_from((next - cursor).num_minutes()) {
            slots.push(Slot {
                start: cursor,
                minutes: length,
            });
        }
        cursor = next;
    }
    Gap { start, end, slots }
}

/// The end of the last complete interval before both `until` (now, or the
/// start of a grace period) and `last_read`, when the profile was last read
/// through to the present: how far a trailing gap can reach.
pub fn last_complete_end(until: DateTime<Utc>, last_read: DateTime<Utc>, minutes: u32, zone: Tz) -> DateTime<Utc> {
    interval_containing(until.min(last_read), minutes.clamp(1, 120), zone).0
}

/// Whether a gap ending at `end` has waited `grace` for the meter's own
/// history to fill it.
pub fn is_due(end: DateTime<Utc>, now: DateTime<Utc>, grace: Duration) -> bool {
    end + grace <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 18, h, m, 0).unwrap()
    }

    fn slots(gap: &Gap) -> Vec<(DateTime<Utc>, u32)> {
        gap.slots.iter().map(|s| (s.start, s.minutes)).collect()
    }

    #[test]
    fn contiguous_intervals_have_no_gap() {
        let stored = [(at(10, 15), 15), (at(10, 0), 15), (at(10, 30), 15)];
        assert!(find_gaps(&stored, None, Tz::UTC).is_empty());
        // A trailing bound at the end of the last interval is no gap either.
        assert!(find_gaps(&stored, Some(at(10, 45)), Tz::UTC).is_empty());
    }

    #[test]
    fn a_missing_hour_is_four_quarters() {
        let stored = [(at(10, 0), 15), (at(11, 15), 15)];
        let gaps = find_gaps(&stored, None, Tz::UTC);
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            (gaps[0].start, gaps[0].end, gaps[0].minutes()),
            (at(10, 15), at(11, 15), 60)
        );
        assert_eq!(
            slots(&gaps[0]),
            vec![(at(10, 15), 15), (at(10, 30), 15), (at(10, 45), 15), (at(11, 0), 15)]
        );
    }

    #[test]
    fn two_gaps_and_a_trailing_one() {
        let stored = [(at(8, 0), 30), (at(9, 0), 30), (at(9, 30), 30), (at(11, 0), 30)];
        let gaps = find_gaps(&stored, Some(at(12, 30)), Tz::UTC);
        let spans: Vec<_> = gaps.iter().map(|g| (g.start, g.end, g.slots.len())).collect();
        assert_eq!(
            spans,
            vec![
                (at(8, 30), at(9, 0), 1),
                (at(10, 0), at(11, 0), 2),
                (at(11, 30), at(12, 30), 2)
            ]
        );
    }

    #[test]
    fn slots_follow_the_sites_grid_and_end_where_the_next_interval_starts() {
        // Kolkata (UTC+5:30): hourly intervals run hh:30–hh+1:30 UTC. After
        // 08:30–09:30 UTC the next stored one starts off the grid at 11:45.
        let zone: Tz = "Asia/Kolkata".parse().unwrap();
        let stored = [(at(8, 30), 60), (at(11, 45), 60)];
        let gaps = find_gaps(&stored, None, zone);
        assert_eq!(
            slots(&gaps[0]),
            vec![(at(9, 30), 60), (at(10, 30), 60), (at(11, 30), 15)]
        );
    }

    #[test]
    fn the_trailing_bound_is_the_last_complete_interval_before_now_and_the_last_read() {
        // Read last at 10:52, now 11:20: the last complete quarter ended 10:45.
        assert_eq!(last_complete_end(at(11, 20), at(10, 52), 15, Tz::UTC), at(10, 45));
        // Read at 11:07, now 11:05 (a clock step): bounded by now.
        assert_eq!(last_complete_end(at(11, 5), at(11, 7), 15, Tz::UTC), at(11, 0));
    }

    #[test]
    fn a_gap_is_due_after_the_grace_period() {
        let grace = Duration::hours(6);
        assert!(!is_due(at(10, 0), at(15, 59), grace));
        assert!(is_due(at(10, 0), at(16, 0), grace));
    }
}
