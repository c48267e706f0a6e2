//! What differs between the two simulated meters: identification, load
//! profile channels, the readout's list of addresses, the billing sets
//! kept.
//!
//! Neither manual gives a manufacturer id (the three letters are assigned
//! by the FLAG association); the simulator uses `BSE` (Blue Star
//! Electrical) for the A1000 and `THM` for the TH40C, both uppercase, so a
//! client waits the standard's 200 ms reaction time.

use super::history::{HistoryInterval, Quantity};

/// Billing sets a meter keeps: A1000 manual 1.5 ("16 energy and demand
/// data can be recorded"); the TH40C keeps 16 too (TH40C §4 in
/// `docs/PROTOCOLS.md`).
pub(crate) const BILLING_SETS: u32 = 16;

/// The simulated meter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IecKind {
    A1000,
    Th40c,
}

/// One load profile channel: OBIS, unit and how a row value is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileChannel {
    pub obis: &'static str,
    pub unit: &'static str,
    pub quantity: Quantity,
    /// Energy of the interval (kWh) or its average power (kW).
    pub average_power: bool,
}

impl ProfileChannel {
    /// The row value of a period made of `intervals` (whole quarter
    /// hours): kWh, or kW averaged over the period.
    pub fn value(&self, intervals: &[HistoryInterval]) -> f64 {
        let wh: i64 = intervals.iter().map(|interval| interval.get(self.quantity)).sum();
        if self.average_power {
            let quarters = i64::try_from(intervals.len()).unwrap_or(1).max(1);
            (wh * 4) as f64 / quarters as f64 / 1000.0
        } else {
            wh as f64 / 1000.0
        }
    }
}

const fn channel(obis: &'static str, unit: &'static str, quantity: Quantity, average_power: bool) -> ProfileChannel {
    ProfileChannel {
        obis,
        unit,
        quantity,
        average_power,
    }
}

/// A1000 manual 1.6: +A, −A, Q1, Q2, Q3, Q4 energies per 15 minutes
/// (OBIS D = 29, energy of the period).
const A1000_CHANNELS: [ProfileChannel; 6] = [
    channel("1.29.0", "kWh", Quantity::ImportActive, false),
    channel("2.29.0", "kWh", Quantity::ExportActive, false),
    channel("5.29.0", "kvarh", Quantity::Q1, false),
    channel("6.29.0", "kvarh", Quantity::Q2, false),
    channel("7.29.0", "kvarh", Quantity::Q3, false),
    channel("8.29.0", "kvarh", Quantity::Q4, false),
];

/// TH40C factory default (TH40C §5 in `docs/PROTOCOLS.md`): 1.5, 5.5, 8.5, 2.5, 6.5, 7.5, the
/// average powers of the period (OBIS D = 5).
const TH40C_CHANNELS: [ProfileChannel; 6] = [
    channel("1.5.0", "kW", Quantity::ImportActive, true),
    channel("5.5.0", "kvar", Quantity::Q1, true),
    channel("8.5.0", "kvar", Quantity::Q4, true),
    channel("2.5.0", "kW", Quantity::ExportActive, true),
    channel("6.5.0", "kvar", Quantity::Q2, true),
    channel("7.5.0", "kvar", Quantity::Q3, true),
];

impl IecKind {
    pub fn name(self) -> &'static str {
        match self {
            IecKind::A1000 => "a1000",
            IecKind::Th40c => "th40c",
        }
    }

    pub fn from_profile(name: &str) -> Option<IecKind> {
        match name {
            "a1000" => Some(IecKind::A1000),
            "th40c" => Some(IecKind::Th40c),
            _ => None,
        }
    }

    /// Manufacturer id and identification text after `/XXXZ`.
    pub fn identification(self) -> (&'static str, &'static str) {
        match self {
            IecKind::A1000 => ("BSE", "A1000"),
            IecKind::Th40c => ("THM", "TH40C"),
        }
    }

    /// How long field programming ("PRG") lasts after the button opens
    /// it, no button being pushed meanwhile: A1000 manual 2.1.1 ("exit
    /// automatically if no button was pushed for 4 minutes"), TH40C §3.1
    /// ("in modo automatico dopo 10 minuti").
    pub fn field_programming_window(self) -> chrono::Duration {
        match self {
            IecKind::A1000 => chrono::Duration::minutes(4),
            IecKind::Th40c => chrono::Duration::minutes(10),
        }
    }

    pub fn profile_channels(self) -> &'static [ProfileChannel] {
        match self {
            IecKind::A1000 => &A1000_CHANNELS,
            IecKind::Th40c => &TH40C_CHANNELS,
        }
    }

    /// Address prefix of energy and demand registers (`1-1:`, both manuals).
    fn history_suffix(self, k: u32) -> String {
        match self {
            IecKind::A1000 => format!("*{}", 100 + k),
            IecKind::Th40c => format!("*{k}"),
        }
    }

    /// The data sets of the full readout (option Y = 0), in order, with
    /// the newest `sets` billing sets (at most the 16 a meter keeps).
    pub fn readout_addresses(self, sets: u32) -> Vec<String> {
        let sets = sets.min(BILLING_SETS);
        let mut list: Vec<String> = ["1-0:0.0.0", "1-0:0.9.1", "1-0:0.9.2", "0-0:F.F.0", "0-0:F.F.1"]
            .map(String::from)
            .to_vec();
        if self == IecKind::Th40c {
            // App. A: a second warning word and two identifiers.
            list.extend(["0-0:F.F.2", "1-0:0.0.1", "1-0:0.0.2"].map(String::from));
        }
        let energy_cs: &[u8] = match self {
            IecKind::A1000 => &[1, 2, 5, 6, 7, 8],
            IecKind::Th40c => &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        };
        for &c in energy_cs {
            let rates = if matches!(c, 3 | 4 | 9 | 10) { 0 } else { 4 };
            for e in 0..=rates {
                list.push(format!("1-1:{c}.8.{e}"));
            }
        }
        // The A1000 prints each set with its reset time (manual 1.5: "16
        // energy and demand data can be recorded"); the TH40C keeps none.
        for k in 1..=sets {
            for &c in energy_cs {
                list.push(format!("1-1:{c}.8.0{}", self.history_suffix(k)));
            }
        }
        for c in [1, 2] {
            for e in 0..=4 {
                list.push(format!("1-1:{c}.6.{e}"));
            }
        }
        match self {
            IecKind::A1000 => {
                for c in [1, 2] {
                    list.push(format!("1-1:{c}.2.0"));
                    list.push(format!("1-1:{c}.4.0"));
                }
                list.push("0-0:0.1.0".into());
                list.extend((1..=sets).map(|k| format!("0-0:0.1.2*{}", 100 + k)));
                list.extend(["0-0:C.7.0", "0-0:C.51.2", "0-0:C.51.0", "0-0:C.51.1"].map(String::from));
                // Display codes 10/13/14 (voltage loss), 20/23/24 (phase
                // failure), 30/31 and 035 (over current) per phase.
                for n in [4, 5, 7] {
                    for item in [
                        "00", "10", "01", "02", "03", "11", "12", "13", "21", "22", "23", "31", "32", "33",
                    ] {
                        list.push(format!("0-0:C.50.{n}1*{item}"));
                    }
                }
                // 32/33 and 036: reverse run, no phase.
                for item in ["00", "10", "20", "30"] {
                    list.push(format!("0-0:C.50.91*{item}"));
                }
            }
            IecKind::Th40c => {
                list.extend(["1-1:3.6.0", "1-1:4.6.0"].map(String::from));
                for c in [1, 2, 13, 32, 52, 72, 31, 51, 71] {
                    list.push(format!("1-1:{c}.7.0"));
                }
                list.extend(th40c_event_records());
                list.extend(["0-0:C.90.1*1", "0-0:C.90.2*1"].map(String::from));
            }
        }
        list
    }
}

/// The TH40C's records of App. A for every period X = 1..7 it keeps (§2:
/// "fino a 7 valori storici"): current loss per phase (count, minutes,
/// start, end), over and under voltage, and the C.50 blocks of voltage loss
/// (4X), supply absence (5X), current unbalance (6X) and under voltage
/// (8X); the totals App. A gives for X = 1 only; power failure start and end.
fn th40c_event_records() -> Vec<String> {
    let mut list = Vec::new();
    for x in 1..=7 {
        for phase in 1..=3 {
            let c = 11 + 20 * phase;
            list.push(format!("1-1:{c}.32.0*{x}"));
            list.push(format!("1-1:{c}.33.0*{x}"));
            list.push(format!("1-1:{}.130.0*{x}", 180 + phase));
            list.push(format!("1-1:{}.150.0*{x}", 180 + phase));
        }
        for c in [12, 32, 52, 72] {
            for d in [36, 37, 33] {
                list.push(format!("1-1:{c}.{d}.0*{x}"));
            }
        }
        for block in [4, 6] {
            for item in ["01", "02", "03", "11", "12", "13", "21", "22", "23", "31", "32", "33"] {
                list.push(format!("0-0:C.50.{block}{x}*{item}"));
            }
        }
        for item in ["00", "01", "02", "10", "11", "12", "21", "22", "23", "31", "32", "33"] {
            list.push(format!("0-0:C.50.5{x}*{item}"));
        }
        for item in ["00", "01", "02", "03"] {
            list.push(format!("0-0:C.50.8{x}*{item}"));
        }
        list.push(format!("0-0:C.51.0*{x}"));
        list.push(format!("0-0:C.51.1*{x}"));
    }
    list.extend(
        [
            "1-1:11.32.0*1",
            "1-1:11.33.0*1",
            "0-0:C.50.41*00",
            "0-0:C.50.41*10",
            "0-0:C.50.51*03",
            "0-0:C.50.51*13",
            "0-0:C.50.61*00",
            "0-0:C.50.61*10",
        ]
        .map(String::from),
    );
    list
}
