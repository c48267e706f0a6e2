//! What differs between the two simulated meters: identification, load
//! profile channels, the readout's list of addresses, and the addresses of
//! clock, status and event registers.
//!
//! Neither manual gives a manufacturer id (the three letters are assigned
//! by the FLAG association); the simulator uses `BSE` (Blue Star
//! Electrical) for the A1000 and `THM` for the TH40C, both uppercase, so a
//! client waits the standard's 200 ms reaction time.

use chrono::{DateTime, Utc};

use super::events::{self, EventKind, EventSummary};
use super::history::{Interval, Quantity};
use super::model::{Address, BILLING_SETS, IecMeter, stamp};
use crate::protocol::iec62056::DataValue;
use crate::sim::meter::site_phases;

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
    /// The row value of `interval`: kWh, or kW averaged over the quarter hour.
    pub fn value(&self, interval: &Interval) -> f64 {
        let wh = interval.get(self.quantity);
        if self.average_power {
            (wh * 4) as f64 / 1000.0
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
                list.extend(["0-0:C.51.0*1", "0-0:C.51.1*1", "0-0:C.50.41*00", "1-1:11.32.0*1"].map(String::from));
                // The last voltage loss per phase and the terminal cover, with
                // their start and stop.
                for item in ["21", "22", "23", "31", "32", "33"] {
                    list.push(format!("0-0:C.50.41*{item}"));
                }
                list.extend(["0-0:C.90.1*1", "0-0:C.90.2*1"].map(String::from));
            }
        }
        list
    }
}

/// Values of the registers that are not energies or demands: identity,
/// clock, status bits, instantaneous values and events.
pub(super) fn special(meter: &mut IecMeter, parsed: &Address, now: DateTime<Utc>) -> Option<Vec<DataValue>> {
    let plain = |text: String| Some(vec![DataValue::new(text)]);
    let body = parsed.groups.join(".");
    match body.as_str() {
        "0.0.0" => return plain(meter.config.address.clone()),
        "0.0.1" | "0.0.2" => return plain(meter.config.kind.identification().1.to_owned()),
        "0.9.1" => return plain(meter.clock(now).format("%H%M%S").to_string()),
        "0.9.2" => return plain(meter.clock(now).format("%y%m%d").to_string()),
        "F.F.0" => return plain(format!("{:08b}", meter.config.error_bits)),
        "F.F.1" => return plain(format!("{:08b}", warning_bits(meter, now))),
        "F.F.2" => return plain("00000000".into()),
        _ => {}
    }
    let seed = meter.config.seed;
    let epoch = meter.history().epoch();
    if parsed.num(1) == Some(7) && parsed.history.is_none() && meter.kind() == IecKind::Th40c {
        return instantaneous(seed, meter.config.zone, parsed.num(0)?, now);
    }
    // Events: the period a TH40C's history index X names (X = 1 the
    // current billing period; TH40C §2.5 in `docs/PROTOCOLS.md`, inferred), or since the
    // history's start for the A1000's cumulative counters.
    let period = |x: u32| -> (DateTime<Utc>, DateTime<Utc>) {
        let resets = meter.resets(now, x);
        let until = if x == 1 { now } else { resets[x as usize - 2] };
        (resets[x as usize - 1], until)
    };
    let (kind, phase, item, range) = match (parsed.groups.as_slice(), parsed.history) {
        // Reset counter and dates (standard OBIS 0.1.0 / 0.1.2).
        (["0", "1", "0"], None) => {
            let count = meter.resets(now, 40).iter().filter(|at| **at > epoch).count();
            return plain(format!("{count}"));
        }
        (["0", "1", "2"], Some(suffix)) => {
            let k = suffix.checked_sub(if meter.kind() == IecKind::A1000 { 100 } else { 0 })?;
            if !(1..=16).contains(&k) {
                return None;
            }
            let at = meter.reset(k, now);
            return plain(stamp(meter.local(at)));
        }
        // Power down: count (C.7.0), last start/stop (C.51.0 / C.51.1).
        (["C", "7", "0"], None) => (EventKind::PowerDown, 0, 0, (epoch, now)),
        (["C", "51", which @ ("0" | "1")], x) => {
            let range = match meter.kind() {
                IecKind::Th40c => period(x.filter(|x| (1..=16).contains(x))?),
                IecKind::A1000 => (epoch, now),
            };
            (EventKind::PowerDown, 0, if *which == "0" { 2 } else { 3 }, range)
        }
        (["C", "90", which @ ("1" | "2")], Some(x)) if (1..=16).contains(&x) => (
            EventKind::TerminalCover,
            0,
            if *which == "1" { 2 } else { 3 },
            period(x),
        ),
        (["C", "51", "2"], None) => (EventKind::PowerDown, 0, 1, (epoch, now)),
        // C.50.nX*KP: n = 4 voltage loss, 5 phase failure, 6 unbalance,
        // 8 under voltage (TH40C App. A), and for the A1000's display codes
        // 30–33, which have no OBIS code, 7 over current and 9 reverse run;
        // X the period; K the item (0 count, 1 minutes, 2 start, 3 stop),
        // P the phase (0 all).
        (["C", "50", field], Some(item)) if field.len() == 2 => {
            let kind = match &field[..1] {
                "4" => EventKind::VoltageLoss,
                "5" => EventKind::PhaseFailure,
                "6" => EventKind::CurrentUnbalance,
                "7" => EventKind::OverCurrent,
                "8" => EventKind::UnderVoltage,
                "9" => EventKind::ReverseRun,
                _ => return None,
            };
            let x: u32 = field[1..].parse().ok().filter(|x| (1..=7).contains(x))?;
            let range = match meter.kind() {
                IecKind::Th40c => period(x),
                IecKind::A1000 if x == 1 => (epoch, now),
                IecKind::A1000 => return None,
            };
            (kind, (item % 10) as u8, (item / 10) as u8, range)
        }
        // TH40C current loss and voltage counters: C = 10 + 20·phase + …
        ([c, d @ ("32" | "33" | "36" | "37"), "0"], Some(x)) if meter.kind() == IecKind::Th40c => {
            let c: u8 = c.parse().ok()?;
            let phase = match c {
                11 | 12 => 0,
                31 | 32 => 1,
                51 | 52 => 2,
                71 | 72 => 3,
                _ => return None,
            };
            let kind = match (c % 10, *d) {
                (1, "32" | "33") => EventKind::CurrentLoss,
                (2, "36" | "37") => EventKind::OverVoltage,
                (2, "33") => EventKind::UnderVoltage,
                _ => return None,
            };
            let item = if matches!(*d, "33" | "37") { 1 } else { 0 };
            (kind, phase, item, period(x.clamp(1, 16)))
        }
        _ => return None,
    };
    let summary = phase_summary(seed, kind, phase, range);
    let stamp_of = |at: Option<DateTime<Utc>>| at.map(|at| stamp(meter.local(at))).unwrap_or_default();
    plain(match item {
        0 => summary.count.to_string(),
        1 => summary.minutes.to_string(),
        2 => stamp_of(summary.last_start),
        3 => stamp_of(summary.last_stop),
        _ => return None,
    })
}

/// Counters of one phase, or of every phase together for phase 0 of a
/// per-phase kind.
pub fn phase_summary(seed: u64, kind: EventKind, phase: u8, range: (DateTime<Utc>, DateTime<Utc>)) -> EventSummary {
    let (from, now) = range;
    if phase != 0 || !kind.per_phase() {
        let phase = if kind.per_phase() { phase.min(3) } else { 0 };
        return events::summary(seed, kind, phase, from, now);
    }
    let mut total = EventSummary::default();
    for phase in 1..=3 {
        let one = events::summary(seed, kind, phase, from, now);
        total.count += one.count;
        total.minutes += one.minutes;
        if one.last_start > total.last_start {
            total.last_start = one.last_start;
            total.last_stop = one.last_stop;
        }
    }
    total
}

/// ERR1 / F.F.1 warning bits (A1000 App. B, TH40C §3 in `docs/PROTOCOLS.md`): over/under
/// voltage, phase voltage loss, phase failure, current reversal (a phase
/// exporting), energy reversal (the meter exporting), missing current.
pub fn warning_bits(meter: &IecMeter, now: DateTime<Utc>) -> u8 {
    let seed = meter.config.seed;
    let any = |kind: EventKind| (1..=3).any(|phase| events::active(seed, kind, phase, now));
    let phases = site_phases(seed, meter.config.zone, now);
    let bits = [
        any(EventKind::OverVoltage),
        any(EventKind::UnderVoltage),
        any(EventKind::VoltageLoss),
        any(EventKind::PhaseFailure),
        phases.active.iter().any(|p| *p < 0.0),
        phases.total_active() < 0.0,
        any(EventKind::CurrentLoss),
        false,
    ];
    bits.iter()
        .enumerate()
        .fold(0, |mask, (bit, set)| if *set { mask | 1 << bit } else { mask })
}

/// TH40C instantaneous values (TH40C §2.4 in `docs/PROTOCOLS.md`), from the same site physics as
/// its Modbus simulator.
fn instantaneous(seed: u64, zone: chrono_tz::Tz, c: u8, now: DateTime<Utc>) -> Option<Vec<DataValue>> {
    let phases = site_phases(seed, zone, now);
    let (value, unit) = match c {
        1 => (phases.total_active().max(0.0), "kW"),
        2 => ((-phases.total_active()).max(0.0), "kW"),
        3 => (phases.total_reactive().max(0.0), "kvar"),
        4 => ((-phases.total_reactive()).max(0.0), "kvar"),
        13 => (phases.total_power_factor(), ""),
        21..=73 => {
            let k = usize::from((c - 1) / 20 - 1);
            match (c - 1) % 20 {
                0 => (phases.active[k].max(0.0), "kW"),
                1 => ((-phases.active[k]).max(0.0), "kW"),
                10 => (phases.current[k], "A"),
                11 => (phases.voltage[k], "V"),
                12 => (phases.power_factor(k), ""),
                _ => return None,
            }
        }
        _ => return None,
    };
    let text = format!("{value:.3}");
    Some(vec![if unit.is_empty() {
        DataValue::new(text)
    } else {
        DataValue::with_unit(text, unit)
    }])
}
