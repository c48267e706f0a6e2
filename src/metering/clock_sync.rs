//! When a site's daily clock synchronisation is due, and a meter's clock as
//! its date and time registers show it (docs/OPERATIONS.md, "Automatic
//! commands").

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use super::tou::local::instant;

/// The local day whose synchronisation at `at` is due by `now`: today's,
/// once `at` has come in `zone` (a time the spring change skips comes when
/// the gap ends; one the autumn change repeats, at its first occurrence);
/// `None` before it.
pub(crate) fn due_day(zone: Tz, at: NaiveTime, now: DateTime<Utc>) -> Option<NaiveDate> {
    let today = now.with_timezone(&zone).date_naive();
    (now >= instant(zone, today.and_time(at))).then_some(today)
}

/// The wall time a meter's date (YYMMDD) and time (hhmmss) registers show;
/// two-digit years are taken in 2000-2099.
pub(crate) fn wall_time(date: f64, time: f64) -> Option<NaiveDateTime> {
    let (date, time) = (date as u32, time as u32);
    let day = NaiveDate::from_ymd_opt(2000 + (date / 10_000) as i32, date / 100 % 100, date % 100)?;
    Some(day.and_time(NaiveTime::from_hms_opt(time / 10_000, time / 100 % 100, time % 100)?))
}

#[cfg(test)]
mod tests {
    use chrono_tz::Europe::Rome;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn the_sync_is_due_from_its_local_time_to_the_end_of_the_local_day() {
        // 15 January, CET: 03:10 is 02:10Z; the local day ends at 23:00Z.
        let day = NaiveDate::from_ymd_opt(2026, 1, 15);
        assert_eq!(due_day(Rome, hm(3, 10), utc("2026-01-15T02:09:59Z")), None);
        assert_eq!(due_day(Rome, hm(3, 10), utc("2026-01-15T02:10:00Z")), day);
        assert_eq!(due_day(Rome, hm(3, 10), utc("2026-01-15T22:59:59Z")), day);
        assert_eq!(due_day(Rome, hm(3, 10), utc("2026-01-15T23:00:00Z")), None);
    }

    #[test]
    fn a_skipped_sync_time_is_due_when_the_gap_ends() {
        // Rome, 29 March 2026: 02:30 does not exist; 03:00 CEST is 01:00Z.
        let day = NaiveDate::from_ymd_opt(2026, 3, 29);
        assert_eq!(due_day(Rome, hm(2, 30), utc("2026-03-29T00:59:59Z")), None);
        assert_eq!(due_day(Rome, hm(2, 30), utc("2026-03-29T01:00:00Z")), day);
        // 25 October: 02:30 comes twice; the first is 00:30Z (CEST).
        let day = NaiveDate::from_ymd_opt(2026, 10, 25);
        assert_eq!(due_day(Rome, hm(2, 30), utc("2026-10-25T00:29:59Z")), None);
        assert_eq!(due_day(Rome, hm(2, 30), utc("2026-10-25T00:30:00Z")), day);
    }

    #[test]
    fn registers_show_a_wall_time() {
        let shown = wall_time(261205.0, 31007.0).unwrap();
        assert_eq!(shown.to_string(), "2026-12-05 03:10:07");
        assert_eq!(wall_time(261305.0, 0.0), None);
    }
}
