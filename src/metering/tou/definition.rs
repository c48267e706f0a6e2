//! The JSON shape of a tariff calendar, as it is saved and sent: names and
//! text (`"08:00"`, `"12-25"`), so that every problem can be reported on
//! its field path by [`super::calendar::Calendar::parse`] rather than as a
//! bare deserialization error. Shaped like the DLMS/COSEM activity
//! calendar: seasons → week profiles → day profiles, and a special days
//! table. docs/TARIFFS.md shows an example.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A tariff calendar: bands, the profiles that pick them, the seasons that
/// pick the profiles, and the special days that override them, in one
/// time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!(example()))]
pub(crate) struct CalendarDefinition {
    /// IANA zone whose local time the switch times, seasons and special
    /// days follow, e.g. `Europe/Rome`.
    pub time_zone: String,
    /// The band names, in the order statements list them (`"F1"`, `"T2"`).
    pub bands: Vec<String>,
    pub day_profiles: Vec<DayProfileDefinition>,
    pub week_profiles: Vec<WeekProfileDefinition>,
    /// Date ranges of the year, which together cover every day once.
    pub seasons: Vec<SeasonDefinition>,
    /// Dates whose own day profile overrides the week profile's.
    #[serde(default)]
    pub special_days: Vec<SpecialDayDefinition>,
}

/// A day's switch times: from each `at` (local `HH:MM`) on, `band` applies.
/// Before the first switch of the day the previous day's last band carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DayProfileDefinition {
    pub name: String,
    /// Strictly increasing times.
    pub switches: Vec<SwitchDefinition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwitchDefinition {
    /// Local time `HH:MM`, `00:00` to `23:59`.
    #[schema(example = "08:00")]
    pub at: String,
    /// One of the calendar's `bands`.
    #[schema(example = "F1")]
    pub band: String,
}

/// The day profile of each day of the week, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WeekProfileDefinition {
    pub name: String,
    pub monday: String,
    pub tuesday: String,
    pub wednesday: String,
    pub thursday: String,
    pub friday: String,
    pub saturday: String,
    pub sunday: String,
}

impl WeekProfileDefinition {
    /// The seven day profile names, Monday first, with their field names.
    pub(crate) fn days(&self) -> [(&'static str, &str); 7] {
        [
            ("monday", &self.monday),
            ("tuesday", &self.tuesday),
            ("wednesday", &self.wednesday),
            ("thursday", &self.thursday),
            ("friday", &self.friday),
            ("saturday", &self.saturday),
            ("sunday", &self.sunday),
        ]
    }
}

/// The days `from` to `to` (both `MM-DD`, both included) of every year.
/// `from` after `to` wraps over the new year (`11-01` to `03-31`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeasonDefinition {
    pub name: String,
    #[schema(example = "01-01")]
    pub from: String,
    #[schema(example = "12-31")]
    pub to: String,
    /// One of the calendar's `week_profiles`, by name.
    pub week_profile: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpecialDayDefinition {
    pub name: String,
    pub on: SpecialDateDefinition,
    /// One of the calendar's `day_profiles`, by name.
    pub day_profile: String,
}

/// When a special day falls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum SpecialDateDefinition {
    /// The same date every year, `MM-DD` (`02-29` only in leap years).
    EveryYear(String),
    /// One date, `YYYY-MM-DD`.
    Once(String),
    /// Days after Easter Sunday (Gregorian): 1 is Easter Monday, −2 Good
    /// Friday, 49 Pentecost.
    EasterOffset(i32),
}

/// The example of docs/TARIFFS.md and the OpenAPI document: two bands, a
/// day profile for working days and one for the rest, a summer season.
pub(crate) fn example() -> serde_json::Value {
    serde_json::json!({
        "time_zone": "Europe/Rome",
        "bands": ["peak", "off_peak"],
        "day_profiles": [
            {"name": "working", "switches": [
                {"at": "00:00", "band": "off_peak"},
                {"at": "08:00", "band": "peak"},
                {"at": "20:00", "band": "off_peak"}
            ]},
            {"name": "summer_working", "switches": [
                {"at": "00:00", "band": "off_peak"},
                {"at": "07:00", "band": "peak"},
                {"at": "21:00", "band": "off_peak"}
            ]},
            {"name": "rest", "switches": [{"at": "00:00", "band": "off_peak"}]}
        ],
        "week_profiles": [
            {"name": "winter", "monday": "working", "tuesday": "working", "wednesday": "working",
             "thursday": "working", "friday": "working", "saturday": "rest", "sunday": "rest"},
            {"name": "summer", "monday": "summer_working", "tuesday": "summer_working",
             "wednesday": "summer_working", "thursday": "summer_working", "friday": "summer_working",
             "saturday": "rest", "sunday": "rest"}
        ],
        "seasons": [
            {"name": "winter", "from": "10-01", "to": "05-31", "week_profile": "winter"},
            {"name": "summer", "from": "06-01", "to": "09-30", "week_profile": "summer"}
        ],
        "special_days": [
            {"name": "Christmas", "on": {"every_year": "12-25"}, "day_profile": "rest"},
            {"name": "Easter Monday", "on": {"easter_offset": 1}, "day_profile": "rest"},
            {"name": "Plant closure", "on": {"once": "2026-08-14"}, "day_profile": "rest"}
        ]
    })
}
