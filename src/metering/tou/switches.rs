//! When a meter whose tariff source is the bus must be told to switch: the
//! last change of band at or before an instant, and the tariff number the
//! band is (E33/E43/E44 keep tariffs 1-4: the calendar's bands in their
//! order, as `a1000.rs` numbers them too). docs/TARIFFS.md, "Switching a
//! meter's tariff over the bus".

use chrono::{DateTime, Duration, Utc};

use super::{BandSplit, CalendarVersions};

/// How far back a switch is looked for: a local day and its DST hour, so
/// a day's switches are found however long the server was stopped that day.
pub(crate) const LOOKBACK_HOURS: i64 = 26;

/// Most tariffs a meter switched over the bus keeps (E43/E44 manual §8.3:
/// register 0x9E21 takes 1-4).
pub(crate) const MAX_TARIFFS: usize = 4;

/// A change of band: when it takes effect and the tariff it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TariffSwitch {
    pub at: DateTime<Utc>,
    pub band: String,
    /// 1 for the calendar's first band, 2 for the second, …
    pub tariff: i64,
}

/// The last change of band at or before `now` within the lookback, with
/// the tariff its band is in the version in force then; `None` when the
/// band has not changed in that time, or the band's number is past
/// [`MAX_TARIFFS`]. Neighbouring switches to the same band are one.
pub(crate) fn last_switch(versions: &CalendarVersions, now: DateTime<Utc>) -> Option<TariffSwitch> {
    let from = now - Duration::hours(LOOKBACK_HOURS);
    let pieces = versions.pieces(from, now + Duration::seconds(1));
    let current = pieces.last()?;
    if current.from <= from {
        return None;
    }
    let position = versions
        .at(current.from)
        .bands
        .iter()
        .position(|band| *band == current.band)?;
    (position < MAX_TARIFFS).then(|| TariffSwitch {
        at: current.from,
        band: current.band.clone(),
        tariff: position as i64 + 1,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::metering::tou::{Calendar, CalendarDefinition};

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Every day, Rome: off-peak from midnight, peak from 02:30 (inside the
    /// hour DST skips or repeats), off-peak again from 20:00.
    fn calendar() -> CalendarVersions {
        let definition: CalendarDefinition = serde_json::from_value(json!({
            "time_zone": "Europe/Rome",
            "bands": ["peak", "off_peak"],
            "day_profiles": [{"name": "d", "switches": [
                {"at": "00:00", "band": "off_peak"}, {"at": "02:30", "band": "peak"},
                {"at": "20:00", "band": "off_peak"}
            ]}],
            "week_profiles": [{"name": "w", "monday": "d", "tuesday": "d", "wednesday": "d",
                "thursday": "d", "friday": "d", "saturday": "d", "sunday": "d"}],
            "seasons": [{"name": "y", "from": "01-01", "to": "12-31", "week_profile": "w"}]
        }))
        .unwrap();
        CalendarVersions::single(Calendar::parse(&definition).unwrap())
    }

    #[test]
    fn the_switch_in_force_is_the_last_change_of_band() {
        // 15 January: CET, UTC+1. 02:30 is 01:30Z, 20:00 is 19:00Z; the
        // midnight switch to off-peak continues the evening's off-peak.
        let peak = TariffSwitch {
            at: utc("2026-01-15T01:30:00Z"),
            band: "peak".to_owned(),
            tariff: 1,
        };
        assert_eq!(
            last_switch(&calendar(), utc("2026-01-15T01:30:00Z")),
            Some(peak.clone())
        );
        assert_eq!(last_switch(&calendar(), utc("2026-01-15T18:59:59Z")), Some(peak));
        let evening = last_switch(&calendar(), utc("2026-01-15T23:30:00Z")).unwrap();
        assert_eq!((evening.at, evening.tariff), (utc("2026-01-15T19:00:00Z"), 2));
        let before = last_switch(&calendar(), utc("2026-01-15T01:29:59Z")).unwrap();
        assert_eq!((before.at, before.tariff), (utc("2026-01-14T19:00:00Z"), 2));
    }

    #[test]
    fn on_the_spring_day_a_skipped_switch_is_due_when_the_gap_ends() {
        // Rome, 29 March 2026: 02:00 CET jumps to 03:00 CEST at 01:00Z, so
        // 02:30 does not exist and peak starts at 01:00Z.
        let before = last_switch(&calendar(), utc("2026-03-29T00:59:59Z")).unwrap();
        assert_eq!(before.tariff, 2);
        let peak = last_switch(&calendar(), utc("2026-03-29T01:00:00Z")).unwrap();
        assert_eq!((peak.at, peak.tariff), (utc("2026-03-29T01:00:00Z"), 1));
        // 20:00 CEST is 18:00Z.
        let evening = last_switch(&calendar(), utc("2026-03-29T18:00:00Z")).unwrap();
        assert_eq!((evening.at, evening.tariff), (utc("2026-03-29T18:00:00Z"), 2));
    }

    #[test]
    fn on_the_autumn_day_a_repeated_switch_is_due_at_its_first_occurrence() {
        // Rome, 25 October 2026: 03:00 CEST falls back to 02:00 CET at
        // 01:00Z; 02:30 is first 00:30Z (CEST), and once only.
        let peak = last_switch(&calendar(), utc("2026-10-25T01:45:00Z")).unwrap();
        assert_eq!((peak.at, peak.tariff), (utc("2026-10-25T00:30:00Z"), 1));
        // 20:00 CET is 19:00Z.
        let evening = last_switch(&calendar(), utc("2026-10-25T19:00:00Z")).unwrap();
        assert_eq!(evening.at, utc("2026-10-25T19:00:00Z"));
    }

    #[test]
    fn a_band_past_the_fourth_has_no_tariff() {
        let definition: CalendarDefinition = serde_json::from_value(json!({
            "time_zone": "UTC",
            "bands": ["a", "b", "c", "d", "e"],
            "day_profiles": [{"name": "d", "switches": [{"at": "00:00", "band": "a"}, {"at": "12:00", "band": "e"}]}],
            "week_profiles": [{"name": "w", "monday": "d", "tuesday": "d", "wednesday": "d",
                "thursday": "d", "friday": "d", "saturday": "d", "sunday": "d"}],
            "seasons": [{"name": "y", "from": "01-01", "to": "12-31", "week_profile": "w"}]
        }))
        .unwrap();
        let versions = CalendarVersions::single(Calendar::parse(&definition).unwrap());
        assert_eq!(last_switch(&versions, utc("2026-01-15T12:00:00Z")), None);
        assert_eq!(last_switch(&versions, utc("2026-01-15T00:00:00Z")).unwrap().tariff, 1);
    }
}
