//! The device page of a meter read over IEC 62056-21: its values grouped
//! and named from the profile's `[iec62056]` section (a readout names its
//! values by OBIS code, so the profile, not a register map, gives the names),
//! its status words decoded into named conditions, and its load profile.

use chrono::{DateTime, Utc};

use super::latest::Latest;
use super::pages::{Cell, Table};
use crate::device::iec::{IecSettings, IecValue, StatusFormat, StatusWord};
use crate::domain::event::EventCode;
use crate::domain::obis::ObisCode;

/// Groups D of the values the energy, demand and real-time tables show;
/// every other value (counters, event blocks, reset times) is an event register.
const ENERGY: u8 = 8;
const MAX_DEMAND: u8 = 6;
const CUMULATIVE_DEMAND: u8 = 2;
const PERIOD_DEMAND: u8 = 4;
const INSTANTANEOUS: u8 = 7;

/// The sections of an IEC meter's page, in reading order.
pub(super) fn iec_sections(iec: &IecSettings, latest: &Latest<'_>) -> Vec<Table> {
    vec![
        status_table(iec, latest),
        tariff_table(iec, latest, "Energy by tariff", &[ENERGY]),
        tariff_table(
            iec,
            latest,
            "Demand (maximum with its time, cumulative, current period)",
            &[MAX_DEMAND, CUMULATIVE_DEMAND, PERIOD_DEMAND],
        ),
        history_table(iec, latest),
        event_table(iec, latest),
    ]
}

/// The profile's name of a stored code; a billing set says which one
/// (`*101` is the A1000's last closed period, `*1` the TH40C's).
pub(super) fn iec_name(iec: &IecSettings, code: &str) -> Option<String> {
    let code: ObisCode = code.parse().ok()?;
    if let Some(word) = iec.status.iter().find(|word| word.obis == code) {
        return Some(format!("{} status word", word.name));
    }
    let value = iec.value_for(&code)?;
    Some(match (code.billing(), value.history) {
        (Some(set), Some([first, _])) if value.obis.billing().is_none() => {
            format!("{}, billing set *{set} ({})", value.name, periods_back(set - first + 1))
        }
        _ => value.name.clone(),
    })
}

fn periods_back(n: u8) -> String {
    match n {
        1 => "last period".to_owned(),
        n => format!("{n} periods back"),
    }
}

/// The conditions a status word names, as the latest reading has them set.
pub(super) fn active_conditions(word: &StatusWord, latest: &Latest<'_>) -> Option<(u32, Vec<EventCode>)> {
    let reading = latest.0.get(word.obis.to_string().as_str())?;
    let bits = reading.value as u32;
    Some((bits, word.conditions(bits)))
}

fn status_table(iec: &IecSettings, latest: &Latest<'_>) -> Table {
    let rows = iec
        .status
        .iter()
        .map(|word| {
            let watched = word
                .bits
                .values()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let cells = match active_conditions(word, latest) {
                Some((bits, conditions)) => {
                    let raw = match word.format {
                        StatusFormat::Binary => format!("{bits:08b}"),
                        StatusFormat::Hex => format!("{bits:08X}"),
                    };
                    let text = if word.raw_only {
                        "kept as its value: no source names its bits".to_owned()
                    } else if conditions.is_empty() {
                        "none".to_owned()
                    } else {
                        conditions
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    vec![plain(raw, bits.to_string()), plain(text, format!("watched: {watched}"))]
                }
                None => vec![Cell::empty(), Cell::empty()],
            };
            (format!("{} ({}, {})", word.name, word.obis, word.severity), cells)
        })
        .collect();
    Table {
        caption: "Status words".to_owned(),
        columns: vec!["Word".to_owned(), "Conditions set".to_owned()],
        rows,
    }
}

/// Rows with at least one value read: registers read seldom (billing sets,
/// per-period events) appear once the meter has sent them.
fn filled(rows: Vec<(String, Vec<Cell>)>) -> Vec<(String, Vec<Cell>)> {
    rows.into_iter()
        .filter(|(_, cells)| cells.iter().any(|cell| !cell.title.is_empty()))
        .collect()
}

fn plain(text: String, title: String) -> Cell {
    Cell {
        text,
        title,
        note: String::new(),
    }
}

/// Totals of the given kinds as rows, tariffs 1–4 beside them.
fn tariff_table(iec: &IecSettings, latest: &Latest<'_>, caption: &str, kinds: &[u8]) -> Table {
    let rows = kinds
        .iter()
        .flat_map(|kind| totals(iec, *kind))
        .map(|total| {
            let cells = (0..=4).map(|e| latest.cell(&with_tariff(&total.obis, e), 3)).collect();
            (label(total), cells)
        })
        .collect();
    let rows = filled(rows);
    Table {
        caption: caption.to_owned(),
        columns: ["Total", "T1", "T2", "T3", "T4"].map(String::from).to_vec(),
        rows,
    }
}

/// The profile's total (E = 0) values of one kind sent as current values.
fn totals(iec: &IecSettings, kind: u8) -> impl Iterator<Item = &IecValue> {
    iec.values.iter().filter(move |value| {
        value.current
            && value.obis.billing().is_none()
            && value.obis.kind() == Some(kind)
            && value.obis.tariff() == Some(0)
            && value.obis.quantity().is_some()
    })
}

fn label(value: &IecValue) -> String {
    value.name.trim_end_matches(", total").to_owned()
}

/// `1-1:1.8.0` with tariff `e`, written as stored.
fn with_tariff(code: &ObisCode, e: u8) -> String {
    let text = code.to_string();
    let body = text.rsplit_once('.').map_or(text.as_str(), |(body, _)| body);
    format!("{body}.{e}")
}

/// `code*set` as stored.
fn in_set(code: &ObisCode, set: u8) -> String {
    format!("{code}*{set}")
}

/// Closed billing periods: one row per set, the energy totals, the active
/// import maximum demand and the reset time as columns.
fn history_table(iec: &IecSettings, latest: &Latest<'_>) -> Table {
    let mut columns: Vec<&IecValue> = totals(iec, ENERGY).filter(|value| value.history.is_some()).collect();
    columns.extend(totals(iec, MAX_DEMAND).filter(|value| value.history.is_some()).take(1));
    columns.extend(
        iec.values
            .iter()
            .filter(|value| value.obis.to_string() == "0-0:0.1.2" && value.history.is_some()),
    );
    let sets = columns.first().and_then(|value| value.history).unwrap_or([1, 0]);
    let rows = (sets[0]..=sets[1])
        .map(|set| {
            let cells = columns
                .iter()
                .map(|value| match value.history {
                    Some([first, last]) if (first..=last).contains(&set) => latest.cell(&in_set(&value.obis, set), 3),
                    _ => Cell::empty(),
                })
                .collect();
            (format!("*{set} ({})", periods_back(set - sets[0] + 1)), cells)
        })
        .collect();
    let rows = filled(rows);
    Table {
        caption: "Billing history".to_owned(),
        columns: columns.iter().map(|value| label(value)).collect(),
        rows,
    }
}

/// Counters, durations and start/stop times of events: the current value,
/// or the latest period's for registers kept per period.
fn event_table(iec: &IecSettings, latest: &Latest<'_>) -> Table {
    let rows = iec
        .values
        .iter()
        .filter(|value| {
            !matches!(
                value.obis.kind(),
                Some(ENERGY | MAX_DEMAND | CUMULATIVE_DEMAND | PERIOD_DEMAND | INSTANTANEOUS)
            ) || value.obis.quantity().is_none()
        })
        .filter(|value| value.obis.to_string() != "0-0:0.1.2")
        .map(|value| match (value.current, value.history) {
            (false, Some([first, _])) => (
                format!("{} (*{first}, {})", value.name, periods_back(1)),
                vec![latest.cell(&in_set(&value.obis, first), 0)],
            ),
            _ => (value.name.clone(), vec![latest.cell(&value.obis.to_string(), 0)]),
        })
        .collect();
    let rows = filled(rows);
    Table {
        caption: "Event registers".to_owned(),
        columns: vec!["Value".to_owned()],
        rows,
    }
}

/// The load-profile line of the page: the newest interval and how many
/// intervals the last 24 hours hold.
pub(super) fn load_profile_summary(newest: Option<DateTime<Utc>>, last_day: i64, interval_minutes: u32) -> String {
    match newest {
        Some(at) => format!(
            "newest interval {} ({interval_minutes} min), {last_day} intervals in the last 24 h (of {} possible)",
            at.format("%Y-%m-%d %H:%M UTC"),
            24 * 60 / interval_minutes.max(1)
        ),
        None => "no interval stored yet".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::registry::ProfileSet;

    fn a1000() -> IecSettings {
        let profile = ProfileSet::builtin().get("a1000").expect("shipped");
        profile.iec62056.clone().expect("an [iec62056] section")
    }

    #[test]
    fn billing_sets_say_which_period_they_hold() {
        let iec = a1000();
        // A1000 App. A: *101 is the last reset, *116 the sixteenth back.
        assert_eq!(
            iec_name(&iec, "1-1:1.8.2*101").as_deref(),
            Some("Active import energy, tariff 2, billing set *101 (last period)")
        );
        assert_eq!(
            iec_name(&iec, "1-1:1.8.0*116").as_deref(),
            Some("Active import energy, total, billing set *116 (16 periods back)")
        );
        assert_eq!(iec_name(&iec, "1-1:1.8.0*117"), None, "outside the meter's sets");
        // An event block item keeps its own name: its suffix is no billing set.
        assert_eq!(
            iec_name(&iec, "0-0:C.50.41*21").as_deref(),
            Some("L1 last voltage loss start")
        );
        assert_eq!(iec_name(&iec, "0-0:F.F.1").as_deref(), Some("ERR1 status word"));
    }

    #[test]
    fn tariff_codes_are_written_as_stored() {
        let code: ObisCode = "1-1:10.6.0".parse().unwrap();
        assert_eq!(with_tariff(&code, 3), "1-1:10.6.3");
        assert_eq!(in_set(&code, 1), "1-1:10.6.0*1");
    }

    #[test]
    fn the_summary_counts_a_day_of_quarter_hours() {
        let at = "2026-11-23T12:45:00Z".parse().unwrap();
        assert_eq!(
            load_profile_summary(Some(at), 95, 15),
            "newest interval 2026-11-23 12:45 UTC (15 min), 95 intervals in the last 24 h (of 96 possible)"
        );
        assert_eq!(load_profile_summary(None, 0, 15), "no interval stored yet");
    }
}
