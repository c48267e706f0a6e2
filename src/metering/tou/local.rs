//! From a calendar's local date and time to the instant it names, in the
//! presence of DST: a local time that does not exist (skipped by a
//! spring-forward change) names the first instant after the gap; one that
//! occurs twice (repeated by a fall-back change) names its first
//! occurrence. docs/TARIFFS.md states the same rule.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant of `local` in `zone`, by the rule above.
pub(crate) fn instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        LocalResult::None => end_of_gap(zone, local),
    }
}

/// The first instant after the gap that swallows `local`: the change of
/// offset itself. Under the offset in force before the gap, `local` lies
/// after the change; the change is found by halving the day before it
/// (a gap of a whole day, as Samoa had in 2011, is within reach too).
fn end_of_gap(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let before = local - Duration::days(2);
    let offset_before = offset_seconds(zone, before.and_utc().timestamp());
    let mut late = (local - Duration::seconds(offset_before)).and_utc().timestamp();
    let mut early = late - 2 * 86_400;
    // Invariant: `early` has the old offset, `late` does not (Unix seconds:
    // offsets change on whole seconds).
    while late - early > 1 {
        let middle = early + (late - early) / 2;
        if offset_seconds(zone, middle) == offset_before {
            early = middle;
        } else {
            late = middle;
        }
    }
    DateTime::from_timestamp(late, 0).expect("an instant near a representable local time")
}

/// The zone's offset from UTC at Unix second `at`.
fn offset_seconds(zone: Tz, at: i64) -> i64 {
    let at = DateTime::from_timestamp(at, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    i64::from(zone.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use chrono_tz::Europe::Rome;
    use proptest::prelude::*;

    use super::*;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn ordinary_times_are_plain_offsets() {
        assert_eq!(instant(Rome, local(2026, 1, 15, 8, 0)), utc("2026-01-15T07:00:00Z"));
        assert_eq!(instant(Rome, local(2026, 7, 15, 8, 0)), utc("2026-07-15T06:00:00Z"));
    }

    #[test]
    fn a_skipped_time_takes_effect_when_the_gap_ends() {
        // Europe/Rome, 29 March 2026: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
        for minute in [0, 1, 30, 59] {
            assert_eq!(
                instant(Rome, local(2026, 3, 29, 2, minute)),
                utc("2026-03-29T01:00:00Z")
            );
        }
        assert_eq!(instant(Rome, local(2026, 3, 29, 1, 59)), utc("2026-03-29T00:59:00Z"));
        assert_eq!(instant(Rome, local(2026, 3, 29, 3, 0)), utc("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn a_repeated_time_takes_effect_at_its_first_occurrence() {
        // Europe/Rome, 25 October 2026: 03:00 CEST falls back to 02:00 CET at 01:00 UTC.
        assert_eq!(instant(Rome, local(2026, 10, 25, 2, 30)), utc("2026-10-25T00:30:00Z"));
        assert_eq!(instant(Rome, local(2026, 10, 25, 2, 0)), utc("2026-10-25T00:00:00Z"));
        assert_eq!(instant(Rome, local(2026, 10, 25, 3, 0)), utc("2026-10-25T02:00:00Z"));
    }

    proptest! {
        /// What `split.rs` relies on: a later local time never names an
        /// earlier instant, in any zone; and a local time that exists
        /// names an instant showing that local time.
        #[test]
        fn later_local_times_name_no_earlier_instants(
            zone in 0..chrono_tz::TZ_VARIANTS.len(),
            minute in 0i64..40 * 366 * 1440,
            later in 0i64..3 * 1440,
        ) {
            let zone = chrono_tz::TZ_VARIANTS[zone];
            let start = local(1990, 1, 1, 0, 0) + Duration::minutes(minute);
            let end = start + Duration::minutes(later);
            prop_assert!(instant(zone, start) <= instant(zone, end));
            let at = instant(zone, start);
            if zone.from_local_datetime(&start).earliest().is_some() {
                prop_assert_eq!(at.with_timezone(&zone).naive_local(), start);
            } else {
                prop_assert!(at.with_timezone(&zone).naive_local() > start);
            }
        }
    }

    #[test]
    fn a_whole_skipped_day_ends_where_the_new_offset_starts() {
        // Pacific/Apia skipped 30 December 2011: 29 Dec 23:59:59 −10:00 was
        // followed by 31 Dec 00:00 +14:00, i.e. 2011-12-30T10:00:00Z.
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(instant(apia, local(2011, 12, 30, 12, 0)), utc("2011-12-30T10:00:00Z"));
    }
}
