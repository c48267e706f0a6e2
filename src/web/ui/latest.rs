//! The latest reading of each code, as the device pages show it.

use std::collections::HashMap;

use super::fleet::cell;
use super::pages::Cell;
use crate::domain::unit::Unit;
use crate::store::readings::StoredReading;

/// The latest reading of each code, by code and in the order read.
pub(super) struct Latest<'a>(pub(super) HashMap<String, &'a StoredReading>, &'a [StoredReading]);

impl<'a> Latest<'a> {
    pub(super) fn new(readings: &'a [StoredReading]) -> Latest<'a> {
        Latest(readings.iter().map(|r| (r.obis.to_string(), r)).collect(), readings)
    }

    /// Every reading, in the order read.
    pub(super) fn in_order(&self) -> impl Iterator<Item = &'a StoredReading> + use<'a> {
        self.1.iter()
    }

    /// A value cell; a value the device stamped (a maximum demand) shows when.
    /// An instant (unit `timestamp`, Unix seconds: an event's start or stop)
    /// shows as a date.
    pub(super) fn cell(&self, code: &str, decimals: usize) -> Cell {
        let reading = self.0.get(code);
        if let Some(r) = reading.filter(|r| r.unit == Unit::Timestamp) {
            return Cell {
                text: chrono::DateTime::from_timestamp(r.value as i64, 0)
                    .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| format!("{}", r.value)),
                title: format!("{}", r.value),
                note: String::new(),
            };
        }
        let mut cell = cell(reading.map(|r| (r.value, r.unit.as_str())), decimals);
        if let Some(at) = reading.and_then(|r| r.captured_at) {
            cell.note = at.format("%Y-%m-%d %H:%M").to_string();
        }
        cell
    }

    pub(super) fn has_any(&self, rows: &[(String, Vec<Cell>)]) -> bool {
        rows.iter()
            .flat_map(|(_, cells)| cells)
            .any(|cell| !cell.title.is_empty())
    }
}
