//! A checked tariff calendar: what a [`CalendarDefinition`] means once
//! every name is resolved, every time and date parsed, and the seasons
//! shown to cover the year once. Parsing returns every problem at once,
//! each on its field path (`seasons[1].from`).

use std::collections::HashMap;
use std::fmt;

use chrono::{Datelike, NaiveDate};

use super::definition::{CalendarDefinition, SpecialDateDefinition};
use super::easter::easter_sunday;
use crate::domain::zone::IanaZone;

/// Sane limits of the engine (not of any meter: see `a1000.rs` for those).
/// A DLMS activity calendar with a switch every quarter hour fits.
pub(crate) const MAX_BANDS: usize = 16;
pub(crate) const MAX_DAY_PROFILES: usize = 64;
pub(crate) const MAX_SWITCHES: usize = 96;
pub(crate) const MAX_WEEK_PROFILES: usize = 32;
pub(crate) const MAX_SEASONS: usize = 32;
pub(crate) const MAX_SPECIAL_DAYS: usize = 512;
pub(crate) const MAX_NAME_CHARS: usize = 64;
/// Farther than this from Easter, a "movable feast" is not one.
pub(crate) const MAX_EASTER_OFFSET: i32 = 200;

/// One thing wrong with a definition, on its field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A month and day of any year (`02-29` included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MonthDay {
    pub month: u32,
    pub day: u32,
}

impl MonthDay {
    pub(crate) fn of(date: NaiveDate) -> MonthDay {
        MonthDay {
            month: date.month(),
            day: date.day(),
        }
    }

    /// `MM-DD`, a day that exists in a leap year.
    fn parse(text: &str) -> Option<MonthDay> {
        let (month, day) = text.split_once('-')?;
        if month.len() != 2 || day.len() != 2 {
            return None;
        }
        let at = MonthDay {
            month: month.parse().ok()?,
            day: day.parse().ok()?,
        };
        NaiveDate::from_ymd_opt(2000, at.month, at.day).map(|_| at)
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

/// From `minute` of the local day (0–1439) on, `band` (an index into the
/// calendar's bands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Switch {
    pub minute: u32,
    pub band: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayProfile {
    pub name: String,
    /// At least one, strictly increasing minutes.
    pub switches: Vec<Switch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Season {
    pub from: MonthDay,
    pub to: MonthDay,
    /// Index into the week profiles.
    pub week_profile: usize,
}

impl Season {
    pub(crate) fn contains(&self, day: MonthDay) -> bool {
        if self.from <= self.to {
            self.from <= day && day <= self.to
        } else {
            day >= self.from || day <= self.to
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecialDate {
    EveryYear(MonthDay),
    Once(NaiveDate),
    EasterOffset(i32),
}

impl SpecialDate {
    pub(crate) fn falls_on(self, date: NaiveDate) -> bool {
        match self {
            SpecialDate::EveryYear(at) => MonthDay::of(date) == at,
            SpecialDate::Once(at) => date == at,
            // A large offset may reach into the year before or after.
            SpecialDate::EasterOffset(offset) => (date.year() - 1..=date.year() + 1)
                .filter_map(easter_sunday)
                .any(|easter| easter + chrono::Duration::days(i64::from(offset)) == date),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpecialDay {
    pub name: String,
    pub on: SpecialDate,
    /// Index into the day profiles.
    pub day_profile: usize,
}

/// A calendar whose every reference resolves and whose seasons cover the
/// year once; build it with [`Calendar::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Calendar {
    pub zone: IanaZone,
    pub bands: Vec<String>,
    pub day_profiles: Vec<DayProfile>,
    /// Each week profile's day profile, Monday first.
    pub week_profiles: Vec<[usize; 7]>,
    pub week_profile_names: Vec<String>,
    pub seasons: Vec<Season>,
    /// In the definition's order: the first that falls on a date wins.
    pub special_days: Vec<SpecialDay>,
}

impl Calendar {
    /// Checks a definition; on failure, every problem found.
    pub(crate) fn parse(definition: &CalendarDefinition) -> Result<Calendar, Vec<Problem>> {
        let mut problems = Problems::default();
        let zone = match definition.time_zone.parse::<IanaZone>() {
            Ok(zone) => Some(zone),
            Err(error) => {
                problems.add("time_zone", error);
                None
            }
        };
        let bands = names(
            &mut problems,
            "bands",
            definition.bands.iter().map(String::as_str),
            MAX_BANDS,
        );
        let day_names = names(
            &mut problems,
            "day_profiles",
            definition.day_profiles.iter().map(|p| p.name.as_str()),
            MAX_DAY_PROFILES,
        );
        let day_profiles = definition
            .day_profiles
            .iter()
            .enumerate()
            .map(|(i, profile)| {
                let field = format!("day_profiles[{i}].switches");
                let mut switches: Vec<Switch> = Vec::new();
                if profile.switches.is_empty() {
                    problems.add(&field, "needs at least one switch");
                }
                if profile.switches.len() > MAX_SWITCHES {
                    problems.add(
                        &field,
                        format!("has {} switches; at most {MAX_SWITCHES}", profile.switches.len()),
                    );
                }
                for (k, switch) in profile.switches.iter().enumerate() {
                    let at_field = format!("{field}[{k}].at");
                    let band = lookup(
                        &mut problems,
                        &format!("{field}[{k}].band"),
                        "band",
                        &bands,
                        &switch.band,
                    );
                    let Some(minute) = parse_minute(&switch.at) else {
                        problems.add(
                            &at_field,
                            format!("{:?} is not a local time HH:MM (00:00 to 23:59)", switch.at),
                        );
                        continue;
                    };
                    if let Some(previous) = switches.last().filter(|p| p.minute >= minute) {
                        let reason = if previous.minute == minute {
                            "repeats the previous switch time"
                        } else {
                            "is before the previous switch time; switches must be in increasing time"
                        };
                        problems.add(&at_field, reason);
                        continue;
                    }
                    switches.push(Switch {
                        minute,
                        band: band.unwrap_or(0),
                    });
                }
                DayProfile {
                    name: profile.name.clone(),
                    switches,
                }
            })
            .collect();
        let week_names = names(
            &mut problems,
            "week_profiles",
            definition.week_profiles.iter().map(|p| p.name.as_str()),
            MAX_WEEK_PROFILES,
        );
        let week_profiles = definition
            .week_profiles
            .iter()
            .enumerate()
            .map(|(i, week)| {
                week.days().map(|(day, profile)| {
                    let field = format!("week_profiles[{i}].{day}");
                    lookup(&mut problems, &field, "day profile", &day_names, profile).unwrap_or(0)
                })
            })
            .collect();
        let seasons = seasons(&mut problems, definition, &week_names);
        if definition.special_days.len() > MAX_SPECIAL_DAYS {
            let count = definition.special_days.len();
            problems.add("special_days", format!("has {count} days; at most {MAX_SPECIAL_DAYS}"));
        }
        let mut special_days: Vec<SpecialDay> = Vec::new();
        for (i, special) in definition.special_days.iter().enumerate() {
            let field = format!("special_days[{i}]");
            check_name(&mut problems, &format!("{field}.name"), &special.name);
            let profile = lookup(
                &mut problems,
                &format!("{field}.day_profile"),
                "day profile",
                &day_names,
                &special.day_profile,
            );
            let on = special_date(&mut problems, &format!("{field}.on"), &special.on);
            if let Some(on) = on {
                if let Some(first) = special_days.iter().position(|s| s.on == on) {
                    problems.add(
                        format!("{field}.on"),
                        format!("repeats the date of special_days[{first}]"),
                    );
                }
                special_days.push(SpecialDay {
                    name: special.name.clone(),
                    on,
                    day_profile: profile.unwrap_or(0),
                });
            }
        }
        problems.finish()?;
        Ok(Calendar {
            zone: zone.expect("a zone when there is no problem"),
            bands: bands.into_iter().map(str::to_owned).collect(),
            day_profiles,
            week_profiles,
            week_profile_names: week_names.into_iter().map(str::to_owned).collect(),
            seasons,
            special_days,
        })
    }

    /// The day profile in force on a local date: a special day's, else the
    /// week profile's for that weekday in that date's season.
    pub(crate) fn day_profile_on(&self, date: NaiveDate) -> &DayProfile {
        if let Some(special) = self.special_days.iter().find(|s| s.on.falls_on(date)) {
            return &self.day_profiles[special.day_profile];
        }
        let day = MonthDay::of(date);
        let season = self
            .seasons
            .iter()
            .find(|s| s.contains(day))
            .expect("seasons cover the year (checked by parse)");
        let weekday = date.weekday().num_days_from_monday() as usize;
        &self.day_profiles[self.week_profiles[season.week_profile][weekday]]
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, reason: impl fmt::Display) {
        self.0.push(Problem {
            field: field.into(),
            reason: reason.to_string(),
        });
    }

    fn finish(self) -> Result<(), Vec<Problem>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }
}

fn check_name(problems: &mut Problems, field: &str, name: &str) {
    if name.trim().is_empty() {
        problems.add(field, "must not be empty");
    } else if name.chars().count() > MAX_NAME_CHARS {
        problems.add(field, format!("is longer than {MAX_NAME_CHARS} characters"));
    }
}

/// Checks a list of names (non-empty, unique, within `max`), reporting on
/// `list[i].name` (or `list[i]` for a list of bare names).
fn names<'a>(problems: &mut Problems, list: &str, items: impl Iterator<Item = &'a str>, max: usize) -> Vec<&'a str> {
    let items: Vec<&str> = items.collect();
    if items.is_empty() {
        problems.add(list, "needs at least one entry");
    }
    if items.len() > max {
        problems.add(list, format!("has {} entries; at most {max}", items.len()));
    }
    let suffix = if list == "bands" { "" } else { ".name" };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in items.iter().enumerate() {
        let field = format!("{list}[{i}]{suffix}");
        check_name(problems, &field, name);
        if let Some(first) = seen.insert(name, i) {
            problems.add(field, format!("{name:?} repeats {list}[{first}]"));
            seen.insert(name, first);
        }
    }
    items
}

fn lookup(problems: &mut Problems, field: &str, what: &str, names: &[&str], name: &str) -> Option<usize> {
    let found = names.iter().position(|n| *n == name);
    if found.is_none() {
        problems.add(field, format!("unknown {what} {name:?}"));
    }
    found
}

/// `HH:MM` to minutes of the day.
fn parse_minute(text: &str) -> Option<u32> {
    let (hour, minute) = text.split_once(':')?;
    if hour.len() != 2 || minute.len() != 2 {
        return None;
    }
    let (hour, minute): (u32, u32) = (hour.parse().ok()?, minute.parse().ok()?);
    (hour < 24 && minute < 60).then_some(hour * 60 + minute)
}

fn special_date(problems: &mut Problems, field: &str, on: &SpecialDateDefinition) -> Option<SpecialDate> {
    match on {
        SpecialDateDefinition::EveryYear(text) => {
            let day = MonthDay::parse(text);
            if day.is_none() {
                problems.add(format!("{field}.every_year"), format!("{text:?} is not a date MM-DD"));
            }
            day.map(SpecialDate::EveryYear)
        }
        SpecialDateDefinition::Once(text) => {
            let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .filter(|_| text.len() == 10);
            if date.is_none() {
                problems.add(format!("{field}.once"), format!("{text:?} is not a date YYYY-MM-DD"));
            }
            date.map(SpecialDate::Once)
        }
        SpecialDateDefinition::EasterOffset(offset) => {
            // `unsigned_abs`: the absolute value of i32::MIN does not fit an i32.
            if offset.unsigned_abs() > MAX_EASTER_OFFSET.unsigned_abs() {
                problems.add(
                    format!("{field}.easter_offset"),
                    format!("{offset} days from Easter; at most {MAX_EASTER_OFFSET} either way"),
                );
                return None;
            }
            Some(SpecialDate::EasterOffset(*offset))
        }
    }
}

/// Parses the seasons and checks that they cover every day of a leap year
/// exactly once (so every day of any year), naming overlaps and gaps.
fn seasons(problems: &mut Problems, definition: &CalendarDefinition, week_names: &[&str]) -> Vec<Season> {
    if definition.seasons.is_empty() {
        problems.add("seasons", "needs at least one season");
    }
    if definition.seasons.len() > MAX_SEASONS {
        problems.add(
            "seasons",
            format!("has {} seasons; at most {MAX_SEASONS}", definition.seasons.len()),
        );
    }
    let mut parsed: Vec<Season> = Vec::new();
    let mut complete = true;
    for (i, season) in definition.seasons.iter().enumerate() {
        check_name(problems, &format!("seasons[{i}].name"), &season.name);
        let week = lookup(
            problems,
            &format!("seasons[{i}].week_profile"),
            "week profile",
            week_names,
            &season.week_profile,
        );
        let mut day = |which: &str, text: &str| {
            let day = MonthDay::parse(text);
            if day.is_none() {
                problems.add(format!("seasons[{i}].{which}"), format!("{text:?} is not a date MM-DD"));
            }
            day
        };
        let (from, to) = (day("from", &season.from), day("to", &season.to));
        if let (Some(from), Some(to)) = (from, to) {
            parsed.push(Season {
                from,
                to,
                week_profile: week.unwrap_or(0),
            });
        } else {
            complete = false;
        }
    }
    if !complete || parsed.is_empty() {
        return parsed;
    }
    // Which season covers each day of a leap year.
    let leap_year = NaiveDate::from_ymd_opt(2000, 1, 1)
        .expect("a date")
        .iter_days()
        .take(366)
        .map(MonthDay::of);
    let mut gap: Option<(MonthDay, MonthDay)> = None;
    let mut gaps = Vec::new();
    let mut overlaps: Vec<(usize, usize)> = Vec::new();
    for day in leap_year {
        let covering: Vec<usize> = (0..parsed.len()).filter(|&i| parsed[i].contains(day)).collect();
        if covering.is_empty() {
            gap = Some(gap.map_or((day, day), |(start, _)| (start, day)));
        } else if let Some(found) = gap.take() {
            gaps.push(found);
        }
        for pair in covering.windows(2) {
            let pair = (pair[0], pair[1]);
            if !overlaps.contains(&pair) {
                overlaps.push(pair);
            }
        }
    }
    gaps.extend(gap);
    // A gap that ends the year and one that starts it are one gap.
    let (january, december) = (MonthDay { month: 1, day: 1 }, MonthDay { month: 12, day: 31 });
    if gaps.len() > 1 && gaps[0].0 == january && gaps[gaps.len() - 1].1 == december {
        let (_, end) = gaps.remove(0);
        gaps.last_mut().expect("a gap").1 = end;
    }
    for (first, second) in overlaps {
        problems.add(format!("seasons[{second}].from"), format!("overlaps seasons[{first}]"));
    }
    for (start, end) in gaps {
        problems.add("seasons", format!("no season covers {start} to {end}"));
    }
    parsed
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
