use chrono::TimeZone;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::metering::tou::definition::{CalendarDefinition, example};
use crate::metering::tou::presets::{A1000_4_RATE, IT_ARERA_F123, preset};

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn parse(value: serde_json::Value) -> Calendar {
    Calendar::parse(&serde_json::from_value::<CalendarDefinition>(value).unwrap()).unwrap()
}

/// Every day: A from midnight, B from 02:30 (inside the hour DST skips or
/// repeats in Europe/Rome), A again from 12:00.
fn two_thirty() -> Calendar {
    parse(json!({
        "time_zone": "Europe/Rome",
        "bands": ["A", "B"],
        "day_profiles": [{"name": "d", "switches": [
            {"at": "00:00", "band": "A"}, {"at": "02:30", "band": "B"}, {"at": "12:00", "band": "A"}
        ]}],
        "week_profiles": [{"name": "w", "monday": "d", "tuesday": "d", "wednesday": "d",
            "thursday": "d", "friday": "d", "saturday": "d", "sunday": "d"}],
        "seasons": [{"name": "y", "from": "01-01", "to": "12-31", "week_profile": "w"}]
    }))
}

fn preset_calendar(name: &str) -> Calendar {
    Calendar::parse(&preset(name).unwrap()).unwrap()
}

fn piece(band: &str, from: &str, to: &str) -> Piece {
    Piece {
        band: band.to_owned(),
        from: utc(from),
        to: utc(to),
    }
}

#[test]
fn a_switch_in_the_skipped_hour_takes_effect_when_the_gap_ends() {
    // Rome, Sunday 29 March 2026: local midnight is 23:00Z the day before,
    // 02:00 CET jumps to 03:00 CEST at 01:00Z, noon CEST is 10:00Z, the next
    // midnight 22:00Z: a 23-hour day.
    let pieces = two_thirty().pieces(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"));
    assert_eq!(
        pieces,
        [
            piece("A", "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z"),
            piece("B", "2026-03-29T01:00:00Z", "2026-03-29T10:00:00Z"),
            piece("A", "2026-03-29T10:00:00Z", "2026-03-29T22:00:00Z"),
        ]
    );
}

#[test]
fn a_switch_in_the_repeated_hour_takes_effect_at_its_first_occurrence() {
    // Rome, Sunday 25 October 2026: midnight CEST is 22:00Z the day before,
    // 02:30 CEST (first occurrence) is 00:30Z, noon CET 11:00Z, the next
    // midnight 23:00Z: a 25-hour day.
    let pieces = two_thirty().pieces(utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"));
    assert_eq!(
        pieces,
        [
            piece("A", "2026-10-24T22:00:00Z", "2026-10-25T00:30:00Z"),
            piece("B", "2026-10-25T00:30:00Z", "2026-10-25T11:00:00Z"),
            piece("A", "2026-10-25T11:00:00Z", "2026-10-25T23:00:00Z"),
        ]
    );
}

#[test]
fn dst_days_have_92_and_100_quarter_hours() {
    let versions = CalendarVersions::single(preset_calendar(IT_ARERA_F123));
    let quarter = Duration::minutes(15);
    let spring = versions.classify(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"), quarter);
    assert_eq!(spring.len(), 92);
    assert!(spring.iter().all(|(_, band)| band == "F3"), "a Sunday");
    let autumn = versions.classify(utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"), quarter);
    assert_eq!(autumn.len(), 100);
    assert_eq!(autumn[0].0, utc("2026-10-24T22:00:00Z"));
    assert_eq!(autumn[99].0, utc("2026-10-25T22:45:00Z"));
    // The Monday after the autumn change: F2 from 07:00 CET = 06:00Z.
    let monday = versions.classify(utc("2026-10-26T05:45:00Z"), utc("2026-10-26T06:15:00Z"), quarter);
    assert_eq!(
        monday,
        [
            (utc("2026-10-26T05:45:00Z"), "F3".to_owned()),
            (utc("2026-10-26T06:00:00Z"), "F2".to_owned())
        ]
    );
}

#[test]
fn an_interval_straddling_a_switch_is_split_by_seconds() {
    // Rome, Wednesday 7 January 2026, 07:50 to 08:05 CET: 10 minutes F2,
    // 5 minutes F1.
    let arera = preset_calendar(IT_ARERA_F123);
    let pieces = arera.pieces(utc("2026-01-07T06:50:00Z"), utc("2026-01-07T07:05:00Z"));
    let seconds: Vec<(&str, i64)> = pieces
        .iter()
        .map(|p| (p.band.as_str(), (p.to - p.from).num_seconds()))
        .collect();
    assert_eq!(seconds, [("F2", 600), ("F1", 300)]);
}

#[test]
fn a_day_without_a_midnight_switch_carries_the_previous_band() {
    // Weekdays switch at 08:00 and 20:00; Sunday only at 10:00. Sunday's
    // early hours continue Saturday's last band (night); Monday's early
    // hours continue Sunday's (day).
    let calendar = parse(json!({
        "time_zone": "UTC",
        "bands": ["day", "night"],
        "day_profiles": [
            {"name": "d", "switches": [{"at": "08:00", "band": "day"}, {"at": "20:00", "band": "night"}]},
            {"name": "s", "switches": [{"at": "10:00", "band": "day"}]}
        ],
        "week_profiles": [{"name": "w", "monday": "d", "tuesday": "d", "wednesday": "d",
            "thursday": "d", "friday": "d", "saturday": "d", "sunday": "s"}],
        "seasons": [{"name": "y", "from": "01-01", "to": "12-31", "week_profile": "w"}]
    }));
    // 2026-01-10 is a Saturday.
    let pieces = calendar.pieces(utc("2026-01-10T19:00:00Z"), utc("2026-01-12T09:00:00Z"));
    assert_eq!(
        pieces,
        [
            piece("day", "2026-01-10T19:00:00Z", "2026-01-10T20:00:00Z"),
            piece("night", "2026-01-10T20:00:00Z", "2026-01-11T10:00:00Z"),
            piece("day", "2026-01-11T10:00:00Z", "2026-01-12T09:00:00Z"),
        ]
    );
}

#[test]
fn february_29_follows_its_own_weekday_and_season() {
    // 2028-02-29 is a Tuesday: a winter working day of the example.
    let calendar = parse(example());
    let pieces = calendar.pieces(utc("2028-02-28T23:00:00Z"), utc("2028-02-29T23:00:00Z"));
    let bands: Vec<(&str, DateTime<Utc>)> = pieces.iter().map(|p| (p.band.as_str(), p.from)).collect();
    assert_eq!(
        bands,
        [
            ("off_peak", utc("2028-02-28T23:00:00Z")),
            ("peak", utc("2028-02-29T07:00:00Z")),
            ("off_peak", utc("2028-02-29T19:00:00Z")),
        ]
    );
}

#[test]
fn each_version_splits_its_own_time() {
    let old = parse(example());
    let mut value = example();
    value["day_profiles"][0]["switches"][1]["at"] = json!("09:00");
    let new = parse(value);
    // From 2026-01-08 00:00 Rome (2026-01-07T23:00Z), peak starts at 09:00.
    let versions = CalendarVersions::new(vec![
        (utc("2020-01-01T00:00:00Z"), old),
        (utc("2026-01-07T23:00:00Z"), new),
    ])
    .unwrap();
    let pieces = versions.pieces(utc("2026-01-07T00:00:00Z"), utc("2026-01-09T00:00:00Z"));
    let starts: Vec<(&str, DateTime<Utc>)> = pieces.iter().map(|p| (p.band.as_str(), p.from)).collect();
    assert_eq!(
        starts,
        [
            ("off_peak", utc("2026-01-07T00:00:00Z")),
            ("peak", utc("2026-01-07T07:00:00Z")), // 08:00 CET, old version
            ("off_peak", utc("2026-01-07T19:00:00Z")),
            ("peak", utc("2026-01-08T08:00:00Z")), // 09:00 CET, new version
            ("off_peak", utc("2026-01-08T19:00:00Z")),
        ]
    );
    assert_eq!(versions.at(utc("2019-06-01T00:00:00Z")), &versions.versions()[0].1);
    assert_eq!(versions.at(utc("2026-01-07T23:00:00Z")), &versions.versions()[1].1);
    assert_eq!(
        CalendarVersions::new(vec![
            (utc("2026-01-01T00:00:00Z"), parse(example())),
            (utc("2026-01-01T00:00:00Z"), parse(example()))
        ]),
        Err(VersionsError::Unordered(utc("2026-01-01T00:00:00Z")))
    );
    assert_eq!(CalendarVersions::new(Vec::new()), Err(VersionsError::Empty));
}

#[test]
fn an_empty_period_has_no_pieces() {
    let calendar = parse(example());
    let at = utc("2026-01-07T00:00:00Z");
    assert!(calendar.pieces(at, at).is_empty());
    assert!(calendar.pieces(at, at - Duration::hours(1)).is_empty());
}

fn calendars() -> Vec<CalendarVersions> {
    let arera = preset_calendar(IT_ARERA_F123);
    let a1000 = preset_calendar(A1000_4_RATE);
    vec![
        CalendarVersions::single(two_thirty()),
        CalendarVersions::single(parse(example())),
        CalendarVersions::new(vec![
            (utc("2000-01-01T00:00:00Z"), arera),
            (utc("2026-03-29T01:30:00Z"), a1000),
        ])
        .unwrap(),
    ]
}

/// An instant from 2024 to 2028 (leap days and DST changes included), to
/// the second.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0i64..5 * 366 * 86_400).prop_map(move |s| start + Duration::seconds(s))
}

proptest! {
    #[test]
    fn the_pieces_of_a_period_tile_it(which in 0usize..3, from in instant(), seconds in 0i64..12 * 86_400) {
        let to = from + Duration::seconds(seconds);
        let pieces = calendars()[which].pieces(from, to);
        if seconds == 0 {
            prop_assert!(pieces.is_empty());
        } else {
            prop_assert_eq!(pieces.first().unwrap().from, from);
            prop_assert_eq!(pieces.last().unwrap().to, to);
            for pair in pieces.windows(2) {
                prop_assert_eq!(pair[0].to, pair[1].from);
            }
            prop_assert!(pieces.iter().all(|p| p.from < p.to));
            let total = pieces.iter().fold(Duration::zero(), |sum, p| sum + (p.to - p.from));
            prop_assert_eq!(total, to - from);
        }
    }

    #[test]
    fn classification_is_stable_under_a_finer_step(which in 0usize..3, quarter in 0i64..5 * 366 * 96, quarters in 1i64..400) {
        let from = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(15 * quarter);
        let to = from + Duration::minutes(15 * quarters);
        let versions = &calendars()[which];
        let coarse = versions.classify(from, to, Duration::minutes(15));
        let fine = versions.classify(from, to, Duration::minutes(5));
        prop_assert_eq!(coarse.len() as i64, quarters);
        prop_assert_eq!(fine.len() as i64, 3 * quarters);
        let every_third: Vec<_> = fine.into_iter().step_by(3).collect();
        prop_assert_eq!(every_third, coarse);
    }
}
