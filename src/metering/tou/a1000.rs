//! A calendar as the Blue Star A1000 keeps it (A1000 manual, section 1.4
//! "Time of Use (TOU) Revenue"): 4 tariffs; 4 daily profiles of up to 10
//! time sections each, a section starting at an hour and minute with one
//! tariff; instead of a daily profile a day may take one of the 4 tariffs
//! fixed all day; up to 10 seasons a year, each from a month and day, the
//! last running on into the first; up to 2 weekend days a week; 24 public
//! holidays a year (10 years of tables). Precedence: public holiday >
//! weekend > season. The meter joins the end of a daily profile's last
//! section to the head of its first (item 8), so a compiled profile starts
//! at 00:00.
//!
//! Holidays and movable feasts are per year: a compilation is for a run of
//! 1 to 10 years (one holiday table each). The
//! meter runs on its own local clock, which is assumed to follow the
//! calendar's zone. Only the tables: writing them to a meter is elsewhere.

// Used by the TOU push to the meter, which comes later; tested here.

use std::fmt::Write;
use std::ops::RangeInclusive;

use chrono::{Datelike, NaiveDate, Weekday};

use super::calendar::{Calendar, DayProfile, MonthDay};

pub(crate) const A1000_TARIFFS: usize = 4;
pub(crate) const A1000_DAY_PROFILES: usize = 4;
pub(crate) const A1000_SECTIONS: usize = 10;
pub(crate) const A1000_SEASONS: usize = 10;
pub(crate) const A1000_WEEKEND_DAYS: usize = 2;
pub(crate) const A1000_HOLIDAYS_PER_YEAR: usize = 24;
pub(crate) const A1000_HOLIDAY_YEARS: usize = 10;

/// What a day runs on: one of the daily profiles (1–4) or one tariff (1–4)
/// all day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum A1000Day {
    Profile(u8),
    Fixed(u8),
}

/// A time section of a daily profile: from `hour:minute` on, `tariff` (1–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct A1000Section {
    pub hour: u8,
    pub minute: u8,
    pub tariff: u8,
}

/// A season: from `month`/`day` until the next season's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct A1000Season {
    pub month: u8,
    pub day: u8,
    pub runs: A1000Day,
}

/// The A1000's TOU tables for a run of years.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct A1000Tables {
    /// The years whose holidays the tables hold.
    pub years: RangeInclusive<i32>,
    /// Tariff n (1–4) is the band `tariffs[n - 1]`.
    pub tariffs: Vec<String>,
    /// Daily profile n (1–4) is `day_profiles[n - 1]`; each starts at 00:00.
    pub day_profiles: Vec<Vec<A1000Section>>,
    /// In date order.
    pub seasons: Vec<A1000Season>,
    pub weekend_days: Vec<Weekday>,
    /// What the weekend days run on; `None` when there are none.
    pub weekend: Option<A1000Day>,
    /// In date order, all in `years`.
    pub holidays: Vec<(NaiveDate, A1000Day)>,
}

/// The limit of the A1000 a calendar exceeds, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum A1000Error {
    #[error("{0} bands; the A1000 keeps {A1000_TARIFFS} tariffs")]
    Tariffs(usize),
    #[error("{0} day profiles; the A1000 keeps {A1000_DAY_PROFILES}")]
    DayProfiles(usize),
    #[error("day profile {name:?} has {count} time sections; the A1000 keeps {A1000_SECTIONS} a day")]
    Sections { name: String, count: usize },
    #[error("day profile {name:?} starts at {first}; the A1000 wraps a day onto itself, so it needs a switch at 00:00")]
    NoMidnight { name: String, first: String },
    #[error("{0} seasons; the A1000 keeps {A1000_SEASONS}")]
    Seasons(usize),
    #[error("{count} weekend days ({days}); the A1000 keeps {A1000_WEEKEND_DAYS}")]
    WeekendDays { count: usize, days: String },
    #[error("the weekend days take different day profiles ({0}); the A1000 keeps one for all weekend days")]
    WeekendProfiles(String),
    #[error("{count} holidays in {year}; the A1000 keeps {A1000_HOLIDAYS_PER_YEAR} a year")]
    Holidays { year: i32, count: usize },
    #[error("{0} is outside the years a calendar covers")]
    Year(i32),
    #[error("{0} years of holidays; the A1000 keeps {A1000_HOLIDAY_YEARS}")]
    Years(usize),
}

const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Compiles `calendar` for `year` into the A1000's tables, or names the
/// first limit it exceeds.
pub(crate) fn compile(calendar: &Calendar, year: i32) -> Result<A1000Tables, A1000Error> {
    compile_years(calendar, year..=year)
}

/// Compiles `calendar` with the holidays of `years` (1 to 10 of them, as
/// many as the meter keeps tables for).
pub(crate) fn compile_years(calendar: &Calendar, years: RangeInclusive<i32>) -> Result<A1000Tables, A1000Error> {
    let count = years.clone().count();
    if !(1..=A1000_HOLIDAY_YEARS).contains(&count) {
        return Err(A1000Error::Years(count));
    }
    if calendar.bands.len() > A1000_TARIFFS {
        return Err(A1000Error::Tariffs(calendar.bands.len()));
    }
    let mut profiles = Profiles::default();
    let mut weekend_days: Vec<Weekday> = Vec::new();
    let mut weekend: Option<(A1000Day, Weekday, String)> = None;
    let mut seasons: Vec<(MonthDay, A1000Day)> = Vec::new();
    let mut ordered: Vec<_> = calendar.seasons.iter().collect();
    ordered.sort_by_key(|season| season.from);
    for season in ordered {
        let week = &calendar.week_profiles[season.week_profile];
        let days = week
            .iter()
            .map(|&p| profiles.day(&calendar.day_profiles[p]))
            .collect::<Result<Vec<_>, _>>()?;
        // The working day is what most days of the week run on; the rest
        // are weekend days.
        let working = *days
            .iter()
            .max_by_key(|day| days.iter().filter(|d| d == day).count())
            .expect("seven days");
        for (day, weekday) in days.iter().zip(WEEKDAYS) {
            if *day == working {
                continue;
            }
            if !weekend_days.contains(&weekday) {
                weekend_days.push(weekday);
            }
            let name = &calendar.week_profile_names[season.week_profile];
            match &weekend {
                None => weekend = Some((*day, weekday, name.clone())),
                Some((first, first_day, first_week)) if first != day => {
                    return Err(A1000Error::WeekendProfiles(format!(
                        "{} in {first_week:?} and {} in {name:?}",
                        day_name(*first_day),
                        day_name(weekday)
                    )));
                }
                Some(_) => {}
            }
        }
        seasons.push((season.from, working));
    }
    weekend_days.sort_by_key(|d| d.num_days_from_monday());
    if weekend_days.len() > A1000_WEEKEND_DAYS {
        let days: Vec<&str> = weekend_days.iter().map(|d| day_name(*d)).collect();
        return Err(A1000Error::WeekendDays {
            count: weekend_days.len(),
            days: days.join(", "),
        });
    }
    // A weekend day must run on the weekend's day in every season, also
    // where the week profile gives it the working day's profile.
    for season in &calendar.seasons {
        let week = &calendar.week_profiles[season.week_profile];
        for weekday in &weekend_days {
            let day = profiles.day(&calendar.day_profiles[week[weekday.num_days_from_monday() as usize]])?;
            let (expected, first_day, first_week) = weekend.as_ref().expect("weekend days have a day");
            if day != *expected {
                let name = &calendar.week_profile_names[season.week_profile];
                return Err(A1000Error::WeekendProfiles(format!(
                    "{} in {first_week:?} and {} in {name:?}",
                    day_name(*first_day),
                    day_name(*weekday)
                )));
            }
        }
    }
    // Neighbouring seasons on the same day are one season to the meter,
    // also across the new year (the last runs on into the first).
    seasons.dedup_by(|later, earlier| later.1 == earlier.1);
    if seasons.len() > 1 && seasons.first().map(|s| s.1) == seasons.last().map(|s| s.1) {
        seasons.remove(0);
    }
    if seasons.len() > A1000_SEASONS {
        return Err(A1000Error::Seasons(seasons.len()));
    }
    let mut holidays = Vec::new();
    for year in years.clone() {
        let first = NaiveDate::from_ymd_opt(year, 1, 1).ok_or(A1000Error::Year(year))?;
        let before = holidays.len();
        for date in first.iter_days().take_while(|d| d.year() == year) {
            if let Some(special) = calendar.special_days.iter().find(|s| s.on.falls_on(date)) {
                holidays.push((date, profiles.day(&calendar.day_profiles[special.day_profile])?));
            }
        }
        let count = holidays.len() - before;
        if count > A1000_HOLIDAYS_PER_YEAR {
            return Err(A1000Error::Holidays { year, count });
        }
    }
    Ok(A1000Tables {
        years,
        tariffs: calendar.bands.clone(),
        day_profiles: profiles.tables,
        seasons: seasons
            .into_iter()
            .map(|(from, runs)| A1000Season {
                month: from.month as u8,
                day: from.day as u8,
                runs,
            })
            .collect(),
        weekend_days,
        weekend: weekend.map(|(day, _, _)| day),
        holidays,
    })
}

fn day_name(day: Weekday) -> &'static str {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ][day.num_days_from_monday() as usize]
}

/// The daily profiles used so far; equal ones share a table.
#[derive(Default)]
struct Profiles {
    tables: Vec<Vec<A1000Section>>,
}

impl Profiles {
    /// What a day profile runs on, adding its table if it is new.
    fn day(&mut self, profile: &DayProfile) -> Result<A1000Day, A1000Error> {
        let first = profile.switches.first().expect("a day profile has a switch");
        if first.minute != 0 {
            let mut text = String::new();
            let _ = write!(text, "{:02}:{:02}", first.minute / 60, first.minute % 60);
            return Err(A1000Error::NoMidnight {
                name: profile.name.clone(),
                first: text,
            });
        }
        let mut sections: Vec<A1000Section> = Vec::new();
        for switch in &profile.switches {
            let tariff = tariff(switch.band);
            if sections.last().is_some_and(|s| s.tariff == tariff) {
                continue;
            }
            sections.push(A1000Section {
                hour: (switch.minute / 60) as u8,
                minute: (switch.minute % 60) as u8,
                tariff,
            });
        }
        if sections.len() == 1 {
            return Ok(A1000Day::Fixed(sections[0].tariff));
        }
        if sections.len() > A1000_SECTIONS {
            return Err(A1000Error::Sections {
                name: profile.name.clone(),
                count: sections.len(),
            });
        }
        let index = match self.tables.iter().position(|t| *t == sections) {
            Some(index) => index,
            None => {
                self.tables.push(sections);
                if self.tables.len() > A1000_DAY_PROFILES {
                    return Err(A1000Error::DayProfiles(self.tables.len()));
                }
                self.tables.len() - 1
            }
        };
        Ok(A1000Day::Profile(index as u8 + 1))
    }
}

/// Band index to tariff 1–4 (checked against the limit before).
fn tariff(band: usize) -> u8 {
    band as u8 + 1
}

#[cfg(test)]
#[path = "a1000_tests.rs"]
mod tests;
