use serde_json::json;

use super::*;
use crate::metering::tou::definition::example;

fn definition(value: serde_json::Value) -> CalendarDefinition {
    serde_json::from_value(value).unwrap()
}

/// The example, changed by `edit`, parsed; the problems as `field: reason`.
fn problems(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<String> {
    let mut value = example();
    edit(&mut value);
    match Calendar::parse(&definition(value)) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(Problem::to_string).collect(),
    }
}

#[test]
fn the_documented_example_is_valid() {
    let calendar = Calendar::parse(&definition(example())).unwrap();
    assert_eq!(calendar.bands, ["peak", "off_peak"]);
    assert_eq!(calendar.zone.name(), "Europe/Rome");
    assert_eq!(calendar.week_profiles[0], [0, 0, 0, 0, 0, 2, 2]);
    assert_eq!(calendar.seasons[0].from, MonthDay { month: 10, day: 1 });
    assert_eq!(
        calendar.day_profiles[0].switches,
        [
            Switch { minute: 0, band: 1 },
            Switch { minute: 480, band: 0 },
            Switch { minute: 1200, band: 1 },
        ]
    );
}

#[test]
fn names_every_problem_on_its_field() {
    let found = problems(|v| {
        v["time_zone"] = json!("Europe/Atlantis");
        v["day_profiles"][0]["switches"][1]["at"] = json!("25:00");
        v["day_profiles"][0]["switches"][2]["band"] = json!("F9");
        v["week_profiles"][1]["sunday"] = json!("holiday");
        v["seasons"][1]["week_profile"] = json!("spring");
        v["special_days"][0]["on"] = json!({"every_year": "02-30"});
    });
    assert_eq!(
        found,
        [
            "time_zone: \"Europe/Atlantis\" is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)",
            "day_profiles[0].switches[1].at: \"25:00\" is not a local time HH:MM (00:00 to 23:59)",
            "day_profiles[0].switches[2].band: unknown band \"F9\"",
            "week_profiles[1].sunday: unknown day profile \"holiday\"",
            "seasons[1].week_profile: unknown week profile \"spring\"",
            "special_days[0].on.every_year: \"02-30\" is not a date MM-DD",
        ]
    );
}

#[test]
fn switch_times_must_increase() {
    let found = problems(|v| {
        v["day_profiles"][0]["switches"][2]["at"] = json!("08:00");
        v["day_profiles"][1]["switches"][1]["at"] = json!("06:00");
        v["day_profiles"][1]["switches"][2]["at"] = json!("05:00");
    });
    assert_eq!(
        found,
        [
            "day_profiles[0].switches[2].at: repeats the previous switch time",
            "day_profiles[1].switches[2].at: is before the previous switch time; switches must be in increasing time",
        ]
    );
    let found = problems(|v| v["day_profiles"][2]["switches"] = json!([]));
    assert_eq!(found, ["day_profiles[2].switches: needs at least one switch"]);
}

#[test]
fn seasons_must_cover_the_year_once() {
    // Summer from 05-15 overlaps winter (10-01 to 05-31).
    let found = problems(|v| v["seasons"][1]["from"] = json!("05-15"));
    assert_eq!(found, ["seasons[1].from: overlaps seasons[0]"]);
    // Summer from 06-10 leaves 1 to 9 June uncovered.
    let found = problems(|v| v["seasons"][1]["from"] = json!("06-10"));
    assert_eq!(found, ["seasons: no season covers 06-01 to 06-09"]);
    // A year that ends on 28 February misses the leap day.
    let found = problems(|v| {
        v["seasons"] = json!([
            {"name": "a", "from": "01-01", "to": "02-28", "week_profile": "winter"},
            {"name": "b", "from": "03-01", "to": "12-31", "week_profile": "winter"}
        ])
    });
    assert_eq!(found, ["seasons: no season covers 02-29 to 02-29"]);
    // A gap over the turn of the year is one gap.
    let found = problems(|v| v["seasons"][0]["from"] = json!("12-01"));
    assert_eq!(found, ["seasons: no season covers 10-01 to 11-30"]);
    let found = problems(|v| {
        v["seasons"][0]["from"] = json!("01-02");
        v["seasons"][1]["to"] = json!("12-30");
    });
    assert_eq!(found, ["seasons: no season covers 12-31 to 01-01"]);
}

#[test]
fn names_must_be_unique_and_within_limits() {
    let found = problems(|v| {
        v["bands"] = json!(["peak", "off_peak", "peak"]);
        let copy = v["day_profiles"][0].clone();
        v["day_profiles"].as_array_mut().unwrap().push(copy);
        v["seasons"][0]["from"] = json!("10/01");
    });
    assert_eq!(
        found,
        [
            "bands[2]: \"peak\" repeats bands[0]",
            "day_profiles[3].name: \"working\" repeats day_profiles[0]",
            "seasons[0].from: \"10/01\" is not a date MM-DD",
        ]
    );
    let found = problems(|v| {
        let switches: Vec<_> = (0..97)
            .map(|i| json!({"at": format!("{:02}:{:02}", i * 14 / 60, (i * 14) % 60), "band": "peak"}))
            .collect();
        v["day_profiles"][2]["switches"] = json!(switches);
    });
    assert_eq!(found, ["day_profiles[2].switches: has 97 switches; at most 96"]);
}

#[test]
fn special_days_are_checked() {
    let found = problems(|v| {
        v["special_days"][1]["on"] = json!({"easter_offset": 365});
        v["special_days"][2]["on"] = json!({"once": "2026-02-29"});
        v["special_days"][0]["day_profile"] = json!("nap");
    });
    assert_eq!(
        found,
        [
            "special_days[0].day_profile: unknown day profile \"nap\"",
            "special_days[1].on.easter_offset: 365 days from Easter; at most 200 either way",
            "special_days[2].on.once: \"2026-02-29\" is not a date YYYY-MM-DD",
        ]
    );
    let found = problems(|v| v["special_days"][2]["on"] = json!({"every_year": "12-25"}));
    assert_eq!(found, ["special_days[2].on: repeats the date of special_days[0]"]);
}

#[test]
fn precedence_is_special_day_then_weekday_then_season() {
    let calendar = Calendar::parse(&definition(example())).unwrap();
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let profile = |d| calendar.day_profile_on(d).name.as_str();
    assert_eq!(profile(date(2026, 1, 14)), "working"); // a Wednesday in winter
    assert_eq!(profile(date(2026, 7, 15)), "summer_working"); // a Wednesday in summer
    assert_eq!(profile(date(2026, 7, 18)), "rest"); // a Saturday
    assert_eq!(profile(date(2026, 12, 25)), "rest"); // Christmas, a Friday
    assert_eq!(profile(date(2026, 4, 6)), "rest"); // Easter Monday 2026
    assert_eq!(profile(date(2027, 3, 29)), "rest"); // Easter Monday 2027
    assert_eq!(profile(date(2026, 4, 7)), "working");
    assert_eq!(profile(date(2026, 8, 14)), "rest"); // once, a Friday
    assert_eq!(profile(date(2027, 8, 13)), "summer_working"); // not in 2027 (a Friday)
}

#[test]
fn a_leap_day_belongs_to_its_season_and_may_be_special() {
    let calendar = Calendar::parse(&definition(json!({
        "time_zone": "UTC",
        "bands": ["a", "b"],
        "day_profiles": [
            {"name": "a", "switches": [{"at": "00:00", "band": "a"}]},
            {"name": "b", "switches": [{"at": "00:00", "band": "b"}]}
        ],
        "week_profiles": [
            {"name": "a", "monday": "a", "tuesday": "a", "wednesday": "a", "thursday": "a",
             "friday": "a", "saturday": "a", "sunday": "a"},
            {"name": "b", "monday": "b", "tuesday": "b", "wednesday": "b", "thursday": "b",
             "friday": "b", "saturday": "b", "sunday": "b"}
        ],
        "seasons": [
            {"name": "early", "from": "01-01", "to": "02-29", "week_profile": "a"},
            {"name": "late", "from": "03-01", "to": "12-31", "week_profile": "b"}
        ],
        "special_days": [{"name": "leap", "on": {"every_year": "02-29"}, "day_profile": "b"}]
    })))
    .unwrap();
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    assert_eq!(calendar.day_profile_on(date(2027, 2, 28)).name, "a");
    assert_eq!(calendar.day_profile_on(date(2027, 3, 1)).name, "b");
    assert_eq!(calendar.day_profile_on(date(2028, 2, 28)).name, "a");
    assert_eq!(calendar.day_profile_on(date(2028, 2, 29)).name, "b"); // special
    assert_eq!(calendar.day_profile_on(date(2028, 3, 1)).name, "b");
}

#[test]
fn unknown_fields_are_refused() {
    let mut value = example();
    value["holidays"] = json!([]);
    assert!(serde_json::from_value::<CalendarDefinition>(value).is_err());
}
