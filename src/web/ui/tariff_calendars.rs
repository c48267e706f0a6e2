//! The tariff calendar pages: the list of calendars, and one calendar's
//! week as a grid of bands (what the engine's classification gives, step
//! by step of real time), its special days of a year with movable feasts
//! resolved, and its versions. docs/OPERATIONS.md shows how to read them.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

use super::fleet::when;
use super::signed_in_page;
use crate::domain::ids::CalendarId;
use crate::metering::tou::calendar::SpecialDate;
use crate::metering::tou::local::instant;
use crate::metering::tou::{BandSplit, classify};
use crate::service::tariff_calendars::{LoadedCalendar, StoredCalendar, get_calendar, list_calendars, load_calendar};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// Years the page accepts, for `week` and `year` alike.
const FIRST_YEAR: i32 = 1900;
const LAST_YEAR: i32 = 2999;

/// Rows of the grid are local quarter hours (plus any switch time in
/// between).
const ROW_MINUTES: u32 = 15;

/// The colour classes of the stylesheet: `b0` to `b15`, one per band (the
/// engine's limit is 16 bands).
const COLOURS: usize = 16;

#[derive(askama::Template)]
#[template(path = "tariff_calendars.html")]
pub(crate) struct CalendarsPage {
    pub user: String,
    pub calendars: Vec<CalendarLine>,
}

pub(crate) struct CalendarLine {
    pub id: i64,
    pub name: String,
    pub versions: i64,
    pub zone: String,
    pub latest_effective_from: String,
}

#[derive(askama::Template)]
#[template(path = "tariff_calendar.html")]
pub(crate) struct CalendarPage {
    pub user: String,
    pub id: i64,
    pub name: String,
    pub zone: String,
    /// The week's Monday and Sunday, `YYYY-MM-DD`.
    pub monday: String,
    pub sunday: String,
    pub previous_week: String,
    pub next_week: String,
    /// Which version splits the week, as a sentence.
    pub in_force: String,
    pub bands: Vec<BandView>,
    pub days: Vec<DayView>,
    pub rows: Vec<RowView>,
    /// The days of the week that are not 24 hours long, as sentences.
    pub dst_notes: Vec<String>,
    pub year: i32,
    pub previous_year: String,
    pub next_year: String,
    pub special_days: Vec<SpecialView>,
    pub versions: Vec<VersionView>,
}

pub(crate) struct BandView {
    pub name: String,
    pub colour: usize,
}

pub(crate) struct DayView {
    /// `Mon 2026-03-23`.
    pub label: String,
    /// The day profile at the day's start (and the special day's name).
    pub profile: String,
    /// `23 h`, `25 h`; empty for a 24-hour day.
    pub length: String,
}

pub(crate) struct RowView {
    /// Local `HH:MM`.
    pub time: String,
    /// One per day, Monday first.
    pub cells: Vec<CellView>,
}

/// The local time of a row on one day: what the engine gives at each real
/// occurrence of it. None when the time does not exist that day (skipped
/// by a spring-forward change), two when it occurs twice (repeated by a
/// fall-back change), first occurrence first.
pub(crate) struct CellView {
    /// `YYYY-MM-DD HH:MM`, local.
    pub at: String,
    pub occurrences: Vec<BandView>,
}

pub(crate) struct SpecialView {
    pub date: String,
    pub weekday: String,
    pub name: String,
    /// How the definition gives the date (`every year 12-08`, `Easter + 1`).
    pub rule: String,
    pub profile: String,
}

pub(crate) struct VersionView {
    pub version: i32,
    pub effective_from: String,
    pub zone: String,
    pub created_by: String,
    pub in_force: bool,
}

/// `week`: any date of the week (`YYYY-MM-DD`), today's by default;
/// `year`: the year of the special days, this one by default. Text, so
/// that a bad value is reported on its name.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct CalendarQuery {
    week: Option<String>,
    year: Option<String>,
}

pub(crate) async fn get_calendars_page(State(state): State<AppState>, caller: Result<Caller, ApiError>) -> Response {
    signed_in_page(caller, "/tariff-calendars", |caller| build_list(&state, caller)).await
}

async fn build_list(state: &AppState, caller: Caller) -> Result<CalendarsPage, ApiError> {
    let mut calendars = Vec::new();
    for row in list_calendars(&state.pool, &caller).await? {
        let stored = get_calendar(&state.pool, &caller, row.id).await?;
        calendars.push(CalendarLine {
            id: row.id.0,
            name: row.name,
            versions: row.versions,
            zone: stored.versions.last().map(zone_of).unwrap_or_default(),
            latest_effective_from: when(Some(row.latest_effective_from)),
        });
    }
    Ok(CalendarsPage {
        user: caller.user,
        calendars,
    })
}

pub(crate) async fn get_calendar_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<String>,
    query: Result<ApiQuery<CalendarQuery>, ApiError>,
) -> Response {
    // Any id that names no calendar, a number or not, is not found.
    let here = format!("/tariff-calendars/{}", id.escape_default());
    signed_in_page(caller, &here, |caller| async move {
        let id = id
            .parse::<i64>()
            .map_err(|_| ApiError::not_found(format!("no tariff calendar {id:?}")))?;
        let ApiQuery(query) = query?;
        build_calendar(&state, caller, CalendarId(id), query).await
    })
    .await
}

async fn build_calendar(
    state: &AppState,
    caller: Caller,
    id: CalendarId,
    query: CalendarQuery,
) -> Result<CalendarPage, ApiError> {
    let StoredCalendar { calendar, versions } = get_calendar(&state.pool, &caller, id).await?;
    let loaded = load_calendar(&state.pool, id).await?;
    let zone = loaded.time_zone.tz();
    let today = state.clock.now().with_timezone(&zone).date_naive();
    let week = match query.week.as_deref() {
        None | Some("") => today,
        Some(text) => date_parameter("week", text)?,
    };
    let year = match query.year.as_deref() {
        None | Some("") => today.year(),
        Some(text) => year_parameter(text)?,
    };
    let monday = week - Duration::days(i64::from(week.weekday().num_days_from_monday()));
    let week_start = instant(zone, midnight(monday));
    let week_end = instant(zone, midnight(monday + Duration::days(7)));
    let starts: Vec<DateTime<Utc>> = versions.iter().map(|v| v.effective_from).collect();
    let in_force: Vec<bool> = (0..starts.len())
        .map(|i| in_force_during(&starts, i, week_start, week_end))
        .collect();
    let grid = week_grid(&loaded, monday);
    let link = |week: Option<NaiveDate>, year: Option<i32>| {
        let mut pairs = Vec::new();
        if let Some(week) = week {
            pairs.push(format!("week={week}"));
        }
        if let Some(year) = year {
            pairs.push(format!("year={year}"));
        }
        format!("/tariff-calendars/{}?{}", id.0, pairs.join("&"))
    };
    let chosen_week = query.week.as_deref().is_some_and(|w| !w.is_empty()).then_some(monday);
    let chosen_year = query.year.as_deref().is_some_and(|y| !y.is_empty()).then_some(year);
    Ok(CalendarPage {
        user: caller.user,
        id: id.0,
        name: calendar.name,
        zone: loaded.time_zone.to_string(),
        monday: monday.to_string(),
        sunday: (monday + Duration::days(6)).to_string(),
        previous_week: link(Some(monday - Duration::days(7)), chosen_year),
        next_week: link(Some(monday + Duration::days(7)), chosen_year),
        in_force: in_force_sentence(&versions, &in_force, zone),
        bands: grid.bands,
        days: grid.days,
        rows: grid.rows,
        dst_notes: grid.dst_notes,
        year,
        previous_year: link(chosen_week, Some(year - 1).filter(|y| *y >= FIRST_YEAR)),
        next_year: link(chosen_week, Some(year + 1).filter(|y| *y <= LAST_YEAR)),
        special_days: special_days(&loaded, year),
        versions: versions
            .iter()
            .zip(&in_force)
            .map(|(row, in_force)| VersionView {
                version: row.version,
                effective_from: local_and_utc(row.effective_from, zone),
                zone: zone_of(row),
                created_by: row.created_by.clone(),
                in_force: *in_force,
            })
            .collect(),
    })
}

/// Whether version `i` of versions taking effect at `starts` (increasing)
/// splits some of `[from, to)`: it applies from its start (the first one
/// also before) until the next one's.
fn in_force_during(starts: &[DateTime<Utc>], i: usize, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    let begins_before_end = i == 0 || starts[i] < to;
    let lasts_past_start = starts.get(i + 1).is_none_or(|next| *next > from);
    begins_before_end && lasts_past_start
}

fn date_parameter(field: &str, text: &str) -> Result<NaiveDate, ApiError> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::parameter(field, format!("{text:?} is not a date YYYY-MM-DD, e.g. 2026-03-23")))?;
    if !(FIRST_YEAR..=LAST_YEAR).contains(&date.year()) {
        return Err(ApiError::parameter(
            field,
            format!("{text:?} is outside the years {FIRST_YEAR} to {LAST_YEAR}"),
        ));
    }
    Ok(date)
}

fn year_parameter(text: &str) -> Result<i32, ApiError> {
    text.parse::<i32>()
        .ok()
        .filter(|year| (FIRST_YEAR..=LAST_YEAR).contains(year))
        .ok_or_else(|| {
            ApiError::parameter(
                "year",
                format!("{text:?} is not a year from {FIRST_YEAR} to {LAST_YEAR}"),
            )
        })
}

fn midnight(date: NaiveDate) -> chrono::NaiveDateTime {
    date.and_hms_opt(0, 0, 0).expect("midnight exists")
}

/// The zone a stored version names (its definition was checked on save).
fn zone_of(row: &crate::store::tariff_calendars::VersionRow) -> String {
    row.definition["time_zone"].as_str().unwrap_or_default().to_owned()
}

/// `2026-03-25 10:00 Europe/Rome (09:00 UTC)`.
fn local_and_utc(at: DateTime<Utc>, zone: Tz) -> String {
    format!(
        "{} {} ({})",
        at.with_timezone(&zone).format("%Y-%m-%d %H:%M"),
        zone.name(),
        at.format("%H:%M UTC")
    )
}

fn in_force_sentence(versions: &[crate::store::tariff_calendars::VersionRow], in_force: &[bool], zone: Tz) -> String {
    let forced: Vec<_> = versions
        .iter()
        .zip(in_force)
        .filter(|(_, f)| **f)
        .map(|(v, _)| v)
        .collect();
    match forced.as_slice() {
        [only] => format!("Version {} is in force all week.", only.version),
        [first, rest @ ..] => {
            let changes: Vec<String> = rest
                .iter()
                .map(|v| format!("version {} from {}", v.version, local_and_utc(v.effective_from, zone)))
                .collect();
            format!(
                "Version {} is in force at the start of the week, then {}.",
                first.version,
                changes.join(", then ")
            )
        }
        [] => String::new(),
    }
}

struct Grid {
    bands: Vec<BandView>,
    days: Vec<DayView>,
    rows: Vec<RowView>,
    dst_notes: Vec<String>,
}

/// The week from `monday` as the engine classifies it: each local day from
/// its midnight's instant to the next one's, in steps of real time (so 92
/// steps of a quarter hour on a 23-hour day, 100 on a 25-hour one), each
/// step's band put in the row of its local time. Rows are every quarter
/// hour and every switch time of the week's day profiles; the step is the
/// greatest common divisor of their minutes, so each row's start is a step.
fn week_grid(loaded: &LoadedCalendar, monday: NaiveDate) -> Grid {
    let zone = loaded.time_zone.tz();
    let band_names = loaded.bands();
    let colour = |name: &str| band_names.iter().position(|b| b == name).unwrap_or(0) % COLOURS;
    let dates: Vec<NaiveDate> = (0..7).map(|d| monday + Duration::days(d)).collect();
    let bounds: Vec<(DateTime<Utc>, DateTime<Utc>)> = dates
        .iter()
        .map(|date| {
            (
                instant(zone, midnight(*date)),
                instant(zone, midnight(*date + Duration::days(1))),
            )
        })
        .collect();
    // Every version in force on a day may set its switch times.
    let mut row_minutes: BTreeSet<u32> = (0..24 * 60).step_by(ROW_MINUTES as usize).collect();
    let versions = loaded.versions.versions();
    let starts: Vec<DateTime<Utc>> = versions.iter().map(|(start, _)| *start).collect();
    for (date, (from, to)) in dates.iter().zip(&bounds) {
        for (i, (_, calendar)) in versions.iter().enumerate() {
            if in_force_during(&starts, i, *from, *to) {
                row_minutes.extend(calendar.day_profile_on(*date).switches.iter().map(|s| s.minute));
            }
        }
    }
    let step = row_minutes.iter().fold(ROW_MINUTES, |g, m| gcd(g, *m));
    let row_list: Vec<u32> = row_minutes.into_iter().collect();
    let mut rows: Vec<RowView> = row_list
        .iter()
        .map(|minute| RowView {
            time: format!("{:02}:{:02}", minute / 60, minute % 60),
            cells: dates
                .iter()
                .map(|date| CellView {
                    at: format!("{date} {:02}:{:02}", minute / 60, minute % 60),
                    occurrences: Vec::new(),
                })
                .collect(),
        })
        .collect();
    let mut days = Vec::new();
    let mut dst_notes = Vec::new();
    for (d, (date, (from, to))) in dates.iter().zip(&bounds).enumerate() {
        for (at, band) in classify(loaded, *from, *to, Duration::minutes(i64::from(step))) {
            let local = at.with_timezone(&zone).naive_local();
            if local.date() != *date || local.second() != 0 {
                continue;
            }
            let minute = local.hour() * 60 + local.minute();
            if let Ok(row) = row_list.binary_search(&minute) {
                rows[row].cells[d].occurrences.push(BandView {
                    colour: colour(&band),
                    name: band,
                });
            }
        }
        let calendar = loaded.versions.at(*from);
        let profile = calendar.day_profile_on(*date).name.clone();
        let special = calendar.special_days.iter().find(|s| s.on.falls_on(*date));
        let minutes = (*to - *from).num_minutes();
        days.push(DayView {
            label: date.format("%a %Y-%m-%d").to_string(),
            profile: match special {
                Some(special) => format!("{profile} ({})", special.name),
                None => profile,
            },
            length: if minutes == 24 * 60 {
                String::new()
            } else {
                hours(minutes)
            },
        });
        if minutes != 24 * 60 {
            let skipped: Vec<&str> = rows
                .iter()
                .filter(|r| r.cells[d].occurrences.is_empty())
                .map(|r| r.time.as_str())
                .collect();
            let repeated: Vec<&str> = rows
                .iter()
                .filter(|r| r.cells[d].occurrences.len() > 1)
                .map(|r| r.time.as_str())
                .collect();
            let mut note = format!("{} has {}", date.format("%A %Y-%m-%d"), hours(minutes));
            if let (Some(first), Some(last)) = (skipped.first(), skipped.last()) {
                note.push_str(&format!(
                    ": the local times {first} to {last} do not exist (clocks go forward); their cells are hatched and show a dash"
                ));
            }
            if let (Some(first), Some(last)) = (repeated.first(), repeated.last()) {
                note.push_str(&format!(
                    ": the local times {first} to {last} occur twice (clocks go back); each of their cells shows both, the first occurrence on the left"
                ));
            }
            note.push('.');
            dst_notes.push(note);
        }
    }
    Grid {
        bands: band_names
            .iter()
            .map(|name| BandView {
                name: name.clone(),
                colour: colour(name),
            })
            .collect(),
        days,
        rows,
        dst_notes,
    }
}

fn hours(minutes: i64) -> String {
    if minutes % 60 == 0 {
        format!("{} hours", minutes / 60)
    } else {
        format!("{} h {} min", minutes / 60, minutes % 60)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Every date of `year` that is a special day under the version in force
/// at its local midnight, with the name and day profile of the first
/// special day that falls on it (the one the engine applies).
fn special_days(loaded: &LoadedCalendar, year: i32) -> Vec<SpecialView> {
    let zone = loaded.time_zone.tz();
    let Some(first) = NaiveDate::from_ymd_opt(year, 1, 1) else {
        return Vec::new();
    };
    first
        .iter_days()
        .take_while(|date| date.year() == year)
        .filter_map(|date| {
            let calendar = loaded.versions.at(instant(zone, midnight(date)));
            let special = calendar.special_days.iter().find(|s| s.on.falls_on(date))?;
            Some(SpecialView {
                date: date.to_string(),
                weekday: date.format("%A").to_string(),
                name: special.name.clone(),
                rule: match special.on {
                    SpecialDate::EveryYear(at) => format!("every year {at}"),
                    SpecialDate::Once(at) => format!("once, {at}"),
                    SpecialDate::EasterOffset(offset) => {
                        let sign = if offset < 0 { '-' } else { '+' };
                        let days = offset.unsigned_abs();
                        let unit = if days == 1 { "day" } else { "days" };
                        format!("Easter Sunday {sign} {days} {unit}")
                    }
                },
                profile: calendar.day_profiles[special.day_profile].name.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::tou::{Calendar, CalendarDefinition, CalendarVersions};

    fn loaded(definition: serde_json::Value) -> LoadedCalendar {
        let definition: CalendarDefinition = serde_json::from_value(definition).unwrap();
        let calendar = Calendar::parse(&definition).unwrap();
        LoadedCalendar {
            id: CalendarId(1),
            time_zone: calendar.zone,
            versions: CalendarVersions::single(calendar),
        }
    }

    fn bands_of(grid: &Grid, time: &str, day: usize) -> Vec<String> {
        let row = grid.rows.iter().find(|r| r.time == time).unwrap();
        row.cells[day].occurrences.iter().map(|b| b.name.clone()).collect()
    }

    #[test]
    fn a_switch_off_the_quarter_hours_gets_its_own_row() {
        let calendar = loaded(serde_json::json!({
            "time_zone": "Europe/Rome",
            "bands": ["low", "high"],
            "day_profiles": [{"name": "day", "switches": [
                {"at": "00:00", "band": "low"}, {"at": "07:10", "band": "high"}, {"at": "19:50", "band": "low"}
            ]}],
            "week_profiles": [{"name": "week", "monday": "day", "tuesday": "day", "wednesday": "day",
                "thursday": "day", "friday": "day", "saturday": "day", "sunday": "day"}],
            "seasons": [{"name": "year", "from": "01-01", "to": "12-31", "week_profile": "week"}]
        }));
        let grid = week_grid(&calendar, NaiveDate::from_ymd_opt(2026, 1, 5).unwrap());
        assert_eq!(grid.rows.len(), 96 + 2);
        for (time, band) in [
            ("07:00", "low"),
            ("07:10", "high"),
            ("07:15", "high"),
            ("19:45", "high"),
            ("19:50", "low"),
            ("20:00", "low"),
        ] {
            for day in 0..7 {
                assert_eq!(bands_of(&grid, time, day), [band], "{time} day {day}");
            }
        }
        assert!(grid.dst_notes.is_empty());
        assert_eq!(grid.bands[1].colour, 1);
    }

    #[test]
    fn parameters_are_named_when_refused() {
        assert_eq!(
            date_parameter("week", "2026-02-30").unwrap_err().message,
            "week: \"2026-02-30\" is not a date YYYY-MM-DD, e.g. 2026-03-23"
        );
        assert!(
            date_parameter("week", "1899-12-31")
                .unwrap_err()
                .message
                .starts_with("week: ")
        );
        assert_eq!(year_parameter("2026").unwrap(), 2026);
        assert_eq!(
            year_parameter("3000").unwrap_err().message,
            "year: \"3000\" is not a year from 1900 to 2999"
        );
    }
}
