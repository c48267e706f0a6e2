//! Calendars that come with Ohmnibus, by name (`{"preset": "it-arera-f123"}`
//! on `POST /api/v1/tariff-calendars`).

use serde_json::json;

use super::definition::CalendarDefinition;

/// The names of the presets, in the order they are listed.
pub(crate) const PRESETS: [&str; 2] = [IT_ARERA_F123, A1000_4_RATE];

pub(crate) const IT_ARERA_F123: &str = "it-arera-f123";
pub(crate) const A1000_4_RATE: &str = "a1000-4-rate";

/// The definition of a preset, or `None` for an unknown name.
pub(crate) fn preset(name: &str) -> Option<CalendarDefinition> {
    let value = match name {
        IT_ARERA_F123 => it_arera_f123(),
        A1000_4_RATE => a1000_4_rate(),
        _ => return None,
    };
    Some(serde_json::from_value(value).expect("a preset is a valid definition shape"))
}

/// The Italian time bands of AEEG (now ARERA) deliberazione 181/06, in
/// force since 1 January 2007, in Europe/Rome local time:
///
/// - F1 (peak): Monday to Friday 08:00–19:00;
/// - F2 (mid-level): Monday to Friday 07:00–08:00 and 19:00–23:00,
///   Saturday 07:00–23:00;
/// - F3 (off-peak): Monday to Saturday 00:00–07:00 and 23:00–24:00, all of
///   Sunday and of the national holidays: 1 and 6 January, Easter Monday,
///   25 April, 1 May, 2 June, 15 August, 1 November, 8, 25 and 26 December.
///
/// A holiday on a weekday is F3 all day, as a Sunday is.
fn it_arera_f123() -> serde_json::Value {
    let holiday = |name: &str, date: &str| json!({"name": name, "on": {"every_year": date}, "day_profile": "holiday"});
    json!({
        "time_zone": "Europe/Rome",
        "bands": ["F1", "F2", "F3"],
        "day_profiles": [
            {"name": "working_day", "switches": [
                {"at": "00:00", "band": "F3"},
                {"at": "07:00", "band": "F2"},
                {"at": "08:00", "band": "F1"},
                {"at": "19:00", "band": "F2"},
                {"at": "23:00", "band": "F3"}
            ]},
            {"name": "saturday", "switches": [
                {"at": "00:00", "band": "F3"},
                {"at": "07:00", "band": "F2"},
                {"at": "23:00", "band": "F3"}
            ]},
            {"name": "holiday", "switches": [{"at": "00:00", "band": "F3"}]}
        ],
        "week_profiles": [
            {"name": "week", "monday": "working_day", "tuesday": "working_day", "wednesday": "working_day",
             "thursday": "working_day", "friday": "working_day", "saturday": "saturday", "sunday": "holiday"}
        ],
        "seasons": [{"name": "year", "from": "01-01", "to": "12-31", "week_profile": "week"}],
        "special_days": [
            holiday("Capodanno", "01-01"),
            holiday("Epifania", "01-06"),
            {"name": "Lunedì dell'Angelo", "on": {"easter_offset": 1}, "day_profile": "holiday"},
            holiday("Festa della Liberazione", "04-25"),
            holiday("Festa del Lavoro", "05-01"),
            holiday("Festa della Repubblica", "06-02"),
            holiday("Ferragosto", "08-15"),
            holiday("Ognissanti", "11-01"),
            holiday("Immacolata Concezione", "12-08"),
            holiday("Natale", "12-25"),
            holiday("Santo Stefano", "12-26")
        ]
    })
}

/// Four rates (T1 highest to T4 lowest) that fit the Blue Star A1000's TOU
/// tables (A1000 manual, section 1.4: 4 tariffs, 4 daily profiles of up to
/// 10 time sections, up to 10 seasons, up to 2 weekend days, 24 public
/// holidays a year; precedence public holiday > weekend > season): a winter
/// and a summer working day, one weekend profile for Saturday and Sunday,
/// and holidays at the lowest rate all day (a fixed tariff, which uses no
/// daily profile). Local time of Europe/Rome; change `time_zone` to suit.
fn a1000_4_rate() -> serde_json::Value {
    json!({
        "time_zone": "Europe/Rome",
        "bands": ["T1", "T2", "T3", "T4"],
        "day_profiles": [
            {"name": "winter_working", "switches": [
                {"at": "00:00", "band": "T4"},
                {"at": "06:00", "band": "T3"},
                {"at": "08:00", "band": "T1"},
                {"at": "12:00", "band": "T2"},
                {"at": "17:00", "band": "T1"},
                {"at": "20:00", "band": "T2"},
                {"at": "22:00", "band": "T3"},
                {"at": "23:00", "band": "T4"}
            ]},
            {"name": "summer_working", "switches": [
                {"at": "00:00", "band": "T4"},
                {"at": "06:00", "band": "T3"},
                {"at": "08:00", "band": "T2"},
                {"at": "11:00", "band": "T1"},
                {"at": "16:00", "band": "T2"},
                {"at": "21:00", "band": "T3"},
                {"at": "23:00", "band": "T4"}
            ]},
            {"name": "weekend", "switches": [
                {"at": "00:00", "band": "T4"},
                {"at": "08:00", "band": "T3"},
                {"at": "22:00", "band": "T4"}
            ]},
            {"name": "holiday", "switches": [{"at": "00:00", "band": "T4"}]}
        ],
        "week_profiles": [
            {"name": "winter", "monday": "winter_working", "tuesday": "winter_working",
             "wednesday": "winter_working", "thursday": "winter_working", "friday": "winter_working",
             "saturday": "weekend", "sunday": "weekend"},
            {"name": "summer", "monday": "summer_working", "tuesday": "summer_working",
             "wednesday": "summer_working", "thursday": "summer_working", "friday": "summer_working",
             "saturday": "weekend", "sunday": "weekend"}
        ],
        "seasons": [
            {"name": "winter", "from": "10-01", "to": "03-31", "week_profile": "winter"},
            {"name": "summer", "from": "04-01", "to": "09-30", "week_profile": "summer"}
        ],
        "special_days": [
            {"name": "New Year", "on": {"every_year": "01-01"}, "day_profile": "holiday"},
            {"name": "Easter Monday", "on": {"easter_offset": 1}, "day_profile": "holiday"},
            {"name": "Labour Day", "on": {"every_year": "05-01"}, "day_profile": "holiday"},
            {"name": "Christmas", "on": {"every_year": "12-25"}, "day_profile": "holiday"},
            {"name": "Boxing Day", "on": {"every_year": "12-26"}, "day_profile": "holiday"}
        ]
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::*;
    use crate::metering::tou::calendar::Calendar;
    use crate::metering::tou::{BandSplit, CalendarVersions};

    fn calendar(name: &str) -> Calendar {
        Calendar::parse(&preset(name).unwrap()).unwrap()
    }

    fn band_at(calendar: &Calendar, at: &str) -> String {
        let at: DateTime<Utc> = at.parse().unwrap();
        calendar.pieces(at, at + Duration::seconds(1)).remove(0).band
    }

    #[test]
    fn every_preset_is_a_valid_calendar() {
        for name in PRESETS {
            let definition = preset(name).unwrap();
            assert!(Calendar::parse(&definition).is_ok(), "{name}");
        }
        assert_eq!(preset("it-arera-f4"), None);
    }

    #[test]
    fn arera_bands_at_hand_picked_instants() {
        let arera = calendar(IT_ARERA_F123);
        // Times are Rome local; CET = UTC+1 in winter, CEST = UTC+2 in summer.
        for (at, band) in [
            ("2026-01-07T06:59:00Z", "F2"), // Wed 07:59 CET
            ("2026-01-07T07:00:00Z", "F1"), // Wed 08:00 CET
            ("2026-01-07T17:59:00Z", "F1"), // Wed 18:59 CET
            ("2026-01-07T18:00:00Z", "F2"), // Wed 19:00 CET
            ("2026-01-07T22:00:00Z", "F3"), // Wed 23:00 CET
            ("2026-01-10T06:00:00Z", "F2"), // Sat 07:00 CET
            ("2026-01-10T12:00:00Z", "F2"), // Sat 13:00 CET
            ("2026-01-11T12:00:00Z", "F3"), // Sun
            ("2026-01-06T12:00:00Z", "F3"), // Tue, Epiphany
            ("2026-04-06T10:00:00Z", "F3"), // Easter Monday 2026, 12:00 CEST
            ("2026-04-07T10:00:00Z", "F1"), // the Tuesday after
            ("2026-06-02T10:00:00Z", "F3"), // Tue, Festa della Repubblica
            ("2026-06-03T05:30:00Z", "F2"), // Wed 07:30 CEST
        ] {
            assert_eq!(band_at(&arera, at), band, "{at}");
        }
    }

    #[test]
    fn the_a1000_preset_lists_its_four_rates() {
        let versions = CalendarVersions::single(calendar(A1000_4_RATE));
        assert_eq!(versions.bands(), ["T1", "T2", "T3", "T4"]);
    }
}
