use chrono::{NaiveDate, Weekday};
use serde_json::json;

use super::*;
use crate::metering::tou::definition::{CalendarDefinition, example};
use crate::metering::tou::presets::{A1000_4_RATE, IT_ARERA_F123, preset};

fn parse(value: serde_json::Value) -> Calendar {
    Calendar::parse(&serde_json::from_value::<CalendarDefinition>(value).unwrap()).unwrap()
}

fn section(hour: u8, minute: u8, tariff: u8) -> A1000Section {
    A1000Section { hour, minute, tariff }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn the_four_rate_preset_compiles() {
    let calendar = Calendar::parse(&preset(A1000_4_RATE).unwrap()).unwrap();
    let tables = compile(&calendar, 2026).unwrap();
    assert_eq!(tables.tariffs, ["T1", "T2", "T3", "T4"]);
    assert_eq!(
        tables.day_profiles,
        [
            // Summer working day (its season starts first in the year).
            vec![
                section(0, 0, 4),
                section(6, 0, 3),
                section(8, 0, 2),
                section(11, 0, 1),
                section(16, 0, 2),
                section(21, 0, 3),
                section(23, 0, 4),
            ],
            vec![section(0, 0, 4), section(8, 0, 3), section(22, 0, 4)],
            vec![
                section(0, 0, 4),
                section(6, 0, 3),
                section(8, 0, 1),
                section(12, 0, 2),
                section(17, 0, 1),
                section(20, 0, 2),
                section(22, 0, 3),
                section(23, 0, 4),
            ],
        ]
    );
    assert_eq!(
        tables.seasons,
        [
            A1000Season {
                month: 4,
                day: 1,
                runs: A1000Day::Profile(1)
            },
            A1000Season {
                month: 10,
                day: 1,
                runs: A1000Day::Profile(3)
            },
        ]
    );
    assert_eq!(tables.weekend_days, [Weekday::Sat, Weekday::Sun]);
    assert_eq!(tables.weekend, Some(A1000Day::Profile(2)));
    // Easter Monday 2026 is 6 April; holidays run on tariff 4 all day.
    let fixed = A1000Day::Fixed(4);
    assert_eq!(
        tables.holidays,
        [
            (date(2026, 1, 1), fixed),
            (date(2026, 4, 6), fixed),
            (date(2026, 5, 1), fixed),
            (date(2026, 12, 25), fixed),
            (date(2026, 12, 26), fixed),
        ]
    );
}

#[test]
fn the_italian_bands_do_not_fit_one_weekend_profile() {
    // Saturday (F2 by day) and Sunday (F3 all day) differ; the A1000 keeps
    // one profile for its weekend.
    let calendar = Calendar::parse(&preset(IT_ARERA_F123).unwrap()).unwrap();
    assert_eq!(
        compile(&calendar, 2026).unwrap_err().to_string(),
        "the weekend days take different day profiles (saturday in \"week\" and sunday in \"week\"); \
         the A1000 keeps one for all weekend days"
    );
}

/// One season per month, each with its own working day profile.
fn monthly(profiles: usize, switches: usize) -> serde_json::Value {
    let bands = json!(["a", "b", "c", "d"]);
    let day_profiles: Vec<_> = (0..profiles)
        .map(|p| {
            let switches: Vec<_> = (0..switches)
                .map(|s| {
                    let band = ["a", "b"][s % 2];
                    json!({"at": format!("{:02}:{:02}", s, p), "band": band})
                })
                .collect();
            let mut switches = switches;
            switches[0] = json!({"at": "00:00", "band": "a"});
            json!({"name": format!("p{p}"), "switches": switches})
        })
        .collect();
    let week_profiles: Vec<_> = (0..profiles)
        .map(|p| {
            let d = format!("p{p}");
            json!({"name": format!("w{p}"), "monday": d, "tuesday": d, "wednesday": d, "thursday": d,
                   "friday": d, "saturday": d, "sunday": d})
        })
        .collect();
    let seasons: Vec<_> = (0..12)
        .map(|m| {
            let last = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m];
            json!({"name": format!("m{m}"), "from": format!("{:02}-01", m + 1),
                   "to": format!("{:02}-{last}", m + 1), "week_profile": format!("w{}", m % profiles)})
        })
        .collect();
    json!({"time_zone": "Europe/Rome", "bands": bands, "day_profiles": day_profiles,
           "week_profiles": week_profiles, "seasons": seasons})
}

#[test]
fn names_the_limit_it_exceeds() {
    let fails = |value: serde_json::Value| compile(&parse(value), 2026).unwrap_err().to_string();
    assert_eq!(fails(monthly(5, 3)), "5 day profiles; the A1000 keeps 4");
    assert_eq!(
        fails(monthly(1, 11)),
        "day profile \"p0\" has 11 time sections; the A1000 keeps 10 a day"
    );
    // Two alternating profiles make 12 seasons.
    assert_eq!(fails(monthly(2, 3)), "12 seasons; the A1000 keeps 10");
    let mut five_bands = monthly(1, 3);
    five_bands["bands"] = json!(["a", "b", "c", "d", "e"]);
    assert_eq!(fails(five_bands), "5 bands; the A1000 keeps 4 tariffs");
    let mut three_weekend_days = example();
    three_weekend_days["week_profiles"][0]["friday"] = json!("rest");
    three_weekend_days["week_profiles"][1]["friday"] = json!("rest");
    assert_eq!(
        fails(three_weekend_days),
        "3 weekend days (friday, saturday, sunday); the A1000 keeps 2"
    );
    let mut holidays = example();
    let many: Vec<_> = (1..=25)
        .map(|d| json!({"name": format!("h{d}"), "on": {"every_year": format!("07-{d:02}")}, "day_profile": "rest"}))
        .collect();
    holidays["special_days"] = json!(many);
    assert_eq!(fails(holidays), "25 holidays in 2026; the A1000 keeps 24 a year");
    let mut late_start = example();
    late_start["day_profiles"][0]["switches"][0]["at"] = json!("00:30");
    assert_eq!(
        fails(late_start),
        "day profile \"working\" starts at 00:30; the A1000 wraps a day onto itself, so it needs a switch at 00:00"
    );
}

#[test]
fn holidays_of_up_to_ten_years() {
    let calendar = Calendar::parse(&preset(A1000_4_RATE).unwrap()).unwrap();
    let tables = compile_years(&calendar, 2026..=2035).unwrap();
    assert_eq!(tables.holidays.len(), 10 * 5);
    // Easter Mondays from printed calendars.
    for easter_monday in [date(2027, 3, 29), date(2030, 4, 22), date(2035, 3, 26)] {
        assert!(
            tables.holidays.contains(&(easter_monday, A1000Day::Fixed(4))),
            "{easter_monday}"
        );
    }
    assert!(tables.holidays.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert_eq!(
        compile_years(&calendar, 2026..=2036).unwrap_err().to_string(),
        "11 years of holidays; the A1000 keeps 10"
    );
}

#[test]
fn equal_neighbouring_seasons_and_tables_merge() {
    // Four profiles over twelve monthly seasons, each used for three
    // months in turn: 12 seasons, too many; with one profile: a single
    // season, and one shared table.
    let tables = compile(&parse(monthly(1, 10)), 2026).unwrap();
    assert_eq!(tables.seasons.len(), 1);
    assert_eq!(tables.day_profiles.len(), 1);
    assert_eq!(tables.day_profiles[0].len(), 10);
    assert!(tables.weekend_days.is_empty());
    assert_eq!(tables.weekend, None);
    // The example: winter from 1 October wraps over the new year.
    let tables = compile(&parse(example()), 2026).unwrap();
    assert_eq!(
        tables.seasons,
        [
            A1000Season {
                month: 6,
                day: 1,
                runs: A1000Day::Profile(1)
            },
            A1000Season {
                month: 10,
                day: 1,
                runs: A1000Day::Profile(2)
            },
        ]
    );
    assert_eq!(tables.weekend, Some(A1000Day::Fixed(2)));
}
