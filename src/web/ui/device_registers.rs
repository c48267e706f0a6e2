//! The value tables of a device read by register map (Modbus meters and
//! pulse concentrators): energies and demands by tariff, their billing
//! sets, real-time values per phase (also shown for IEC meters), maxima and
//! minima with their times, and pulse inputs.

use super::latest::Latest;
use super::pages::{Cell, Table};
use crate::device::pulse_check::{Misconfigured, misconfigured};

/// Energy quantities by OBIS value group C (register kind D = 8).
const ENERGIES: [(u8, &str); 6] = [
    (1, "Active import"),
    (2, "Active export"),
    (3, "Reactive import"),
    (4, "Reactive export"),
    (9, "Apparent import"),
    (10, "Apparent export"),
];
/// Maximum demand quantities by OBIS value group C (kind D = 6).
const DEMANDS: [(u8, &str); 4] = [
    (1, "Active import"),
    (2, "Active export"),
    (3, "Reactive import"),
    (4, "Reactive export"),
];
/// Real-time quantities: label, then the C group for L1, L2, L3 and total.
const PHASES: [(&str, [u8; 4]); 8] = [
    ("Voltage", [32, 52, 72, 0]),
    ("Current", [31, 51, 71, 0]),
    ("Active power import", [21, 41, 61, 1]),
    ("Active power export", [22, 42, 62, 2]),
    ("Reactive power import", [23, 43, 63, 3]),
    ("Reactive power export", [24, 44, 64, 4]),
    ("Apparent power", [29, 49, 69, 9]),
    ("Power factor", [33, 53, 73, 13]),
];

/// Maxima and minima of instantaneous values (TH40C App. G, 0x1115-0x1210):
/// label, OBIS code of the maximum and of the minimum, decimals shown. The
/// powers' maximum is D = 16 and minimum D = 13, since D = 6 is their
/// maximum demand (docs/PROFILES.md, "TH40C statistics").
const EXTREMES: [(&str, &str, &str, usize); 11] = [
    ("L1 voltage", "1-1:32.6.0", "1-1:32.3.0", 1),
    ("L2 voltage", "1-1:52.6.0", "1-1:52.3.0", 1),
    ("L3 voltage", "1-1:72.6.0", "1-1:72.3.0", 1),
    ("L1 current", "1-1:31.6.0", "1-1:31.3.0", 3),
    ("L2 current", "1-1:51.6.0", "1-1:51.3.0", 3),
    ("L3 current", "1-1:71.6.0", "1-1:71.3.0", 3),
    ("Active power", "1-1:1.16.0", "1-1:1.13.0", 3),
    ("Reactive power", "1-1:3.16.0", "1-1:3.13.0", 3),
    ("Apparent power", "1-1:9.16.0", "1-1:9.13.0", 3),
    ("Power factor", "1-1:13.6.0", "1-1:13.3.0", 3),
    ("Frequency", "1-1:14.6.0", "1-1:14.3.0", 2),
];

/// The sections of a register-mapped meter's page, in reading order.
pub(super) fn register_sections(latest: &Latest<'_>) -> Vec<Table> {
    vec![
        phase_table(latest),
        extremes_table(latest),
        tariff_table(latest, "Energy by tariff", 8, "", &ENERGIES),
        tariff_table(latest, "Maximum demand", 6, "", &DEMANDS),
        tariff_table(latest, "Last billing period", 8, "*1", &ENERGIES),
        tariff_table(latest, "Two billing periods ago", 8, "*2", &ENERGIES),
        tariff_table(latest, "Maximum demand, last billing period", 6, "*1", &DEMANDS),
    ]
}

fn tariff_table(latest: &Latest<'_>, caption: &str, kind: u8, suffix: &str, quantities: &[(u8, &str)]) -> Table {
    // Meters report on channel 1; a pulse concentrator's GME tariff registers on channel 0.
    let gme = latest
        .0
        .keys()
        .any(|code| code.starts_with("1-0:") && code.contains(".8."));
    let channel = if gme { 0 } else { 1 };
    let rows = quantities
        .iter()
        .map(|(c, label)| {
            let cells = (0..=4)
                .map(|e| latest.cell(&format!("1-{channel}:{c}.{kind}.{e}{suffix}"), 3))
                .collect();
            ((*label).to_owned(), cells)
        })
        .collect();
    Table {
        caption: caption.to_owned(),
        columns: ["Total", "T1", "T2", "T3", "T4"].map(String::from).to_vec(),
        rows,
    }
}

/// A pulse device's inputs: the engineering value of each, its raw count,
/// and whether its settings are in the manual's ranges (and if not, why:
/// what the `pulse_channel_misconfigured` event says). An input mode out
/// of range is flagged on every input, whose counts it leaves in doubt.
pub(super) fn pulse_table(latest: &Latest<'_>, inputs: u8) -> Table {
    let found = misconfigured(inputs, |code| latest.0.get(code).map(|r| r.value));
    let mode = found
        .iter()
        .flatten()
        .find(|problem| problem.input == 0)
        .map(ToString::to_string);
    let settings = |n: u8| -> Cell {
        let Some(found) = &found else {
            return Cell::empty();
        };
        let own = found
            .iter()
            .find(|problem| problem.input == n)
            .map(Misconfigured::reasons);
        let wrong: Vec<String> = mode.iter().cloned().chain(own).collect();
        if wrong.is_empty() {
            return Cell {
                text: "in range".to_owned(),
                title: "in range".to_owned(),
                note: String::new(),
            };
        }
        let why = wrong.join("; ");
        Cell {
            text: format!("out of range: {why}"),
            title: why,
            note: String::new(),
        }
    };
    let rows = (1..=inputs)
        .map(|n| {
            let derived = [
                format!("1-{n}:1.8.0"),
                format!("1-{n}:3.8.0"),
                format!("1-{n}:9.8.0"),
                format!("7-{n}:3.0.0"),
                format!("7-{n}:13.0.0"),
                format!("0-{n}:96.128.0"),
            ]
            .into_iter()
            .find(|code| latest.0.contains_key(code.as_str()));
            let value = derived.map(|code| latest.cell(&code, 3)).unwrap_or_else(Cell::empty);
            (
                format!("Input {n}"),
                vec![value, latest.cell(&format!("0-{n}:96.129.0"), 0), settings(n)],
            )
        })
        .collect();
    Table {
        caption: "Pulse inputs".to_owned(),
        columns: vec!["Value".to_owned(), "Pulses counted".to_owned(), "Settings".to_owned()],
        rows,
    }
}

/// The largest and smallest values the meter recorded, each with the time
/// it occurred (the cell's note, from the reading's capture time).
fn extremes_table(latest: &Latest<'_>) -> Table {
    let rows = EXTREMES
        .iter()
        .map(|(label, maximum, minimum, decimals)| {
            let cells = vec![latest.cell(maximum, *decimals), latest.cell(minimum, *decimals)];
            ((*label).to_owned(), cells)
        })
        .collect();
    Table {
        caption: "Maxima and minima".to_owned(),
        columns: ["Maximum", "Minimum"].map(String::from).to_vec(),
        rows,
    }
}

pub(super) fn phase_table(latest: &Latest<'_>) -> Table {
    let rows = PHASES
        .iter()
        .map(|(label, groups)| {
            let cells = groups
                .iter()
                .map(|&c| {
                    if c == 0 {
                        Cell::empty()
                    } else {
                        latest.cell(&format!("1-1:{c}.7.0"), 3)
                    }
                })
                .collect();
            ((*label).to_owned(), cells)
        })
        .collect();
    Table {
        caption: "Real-time values".to_owned(),
        columns: ["L1", "L2", "L3", "Total"].map(String::from).to_vec(),
        rows,
    }
}
