//! Time as an IEC 62056-21 meter writes it in its load profile and
//! logbook: local time with a season character (0 normal, 1 summer, 2 UTC;
//! `docs/PROTOCOLS.md`, "Load profile, EMH style"), to and from instants.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::{OffsetComponents, Tz};

use crate::protocol::iec62056::ProfileTime;

/// An instant as the meter writes it: local time and its season.
pub fn meter_time(at: DateTime<Utc>, zone: Tz) -> ProfileTime {
    let local = at.with_timezone(&zone);
    let summer = !local.offset().dst_offset().is_zero();
    ProfileTime {
        season: u8::from(summer),
        time: local.naive_local(),
    }
}

/// The instant a meter's stamp names. In the autumn's repeated hour the
/// season tells the two apart; where the season contradicts the zone (a
/// meter that always writes 0) the local time decides. A stamp in the
/// spring's missing hour is no instant.
pub fn instant_of(stamp: NaiveDateTime, season: u8, zone: Tz) -> Option<DateTime<Utc>> {
    if season == 2 {
        return Some(Utc.from_utc_datetime(&stamp));
    }
    let local = zone.from_local_datetime(&stamp);
    let candidates = [local.earliest(), local.latest()];
    let summer = season == 1;
    candidates
        .iter()
        .flatten()
        .find(|at| at.offset().dst_offset().is_zero() != summer)
        .or(candidates[0].as_ref())
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn local(day: u32, month: u32, hour: u32, minute: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, month, day)
            .unwrap()
            .and_hms_opt(hour, minute, 0)
            .unwrap()
    }

    #[test]
    fn the_season_tells_the_repeated_autumn_hour_apart() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        // 25 October 2026: clocks go back at 03:00 CEST to 02:00 CET, so
        // 02:30 happens twice: 00:30 UTC in summer time, 01:30 UTC after.
        let summer = instant_of(local(25, 10, 2, 30), 1, rome).unwrap();
        let winter = instant_of(local(25, 10, 2, 30), 0, rome).unwrap();
        assert_eq!(summer, Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
        assert_eq!(winter, Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap());
        // 29 March 2026: 02:30 does not exist in Rome.
        assert_eq!(instant_of(local(29, 3, 2, 30), 0, rome), None);
        // Season 2 is UTC whatever the zone.
        assert_eq!(
            instant_of(local(1, 7, 12, 0), 2, rome),
            Some(Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap())
        );
        // A meter that writes 0 all year: local time decides.
        assert_eq!(
            instant_of(local(1, 7, 12, 0), 0, rome),
            Some(Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 0).unwrap())
        );
    }
}
