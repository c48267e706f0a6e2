//! What a simulated meter answers for one OBIS address at an instant:
//! energies and demands from its history ([`IecMeter::value`],
//! [`IecMeter::register_at`]), and identity, clock, status bits,
//! instantaneous values and events, so tests can ask for exactly what the
//! wire carries.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use super::events::{self, EventSummary, LoggedEventKind};
use super::history::{INTERVAL_SECONDS, Quantity};
use super::kind::{BILLING_SETS, IecKind};
use super::model::IecMeter;
use crate::protocol::iec62056::DataValue;
use crate::sim::site::site_phases;

/// A parsed OBIS address: `A-B:` prefix dropped, `C.D.E` and the `*F` suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address<'a> {
    pub groups: Vec<&'a str>,
    pub history: Option<u32>,
}

impl<'a> Address<'a> {
    pub fn parse(address: &'a str) -> Address<'a> {
        let (code, history) = match address.split_once('*') {
            Some((code, suffix)) => (code, suffix.parse().ok()),
            None => (address, None),
        };
        let body = code.rsplit_once(':').map_or(code, |(_, body)| body);
        Address {
            groups: body.split('.').collect(),
            history,
        }
    }

    /// Group `i` as a number.
    pub fn num(&self, i: usize) -> Option<u8> {
        self.groups.get(i)?.parse().ok()
    }
}

impl IecMeter {
    /// The values of one data set at `now`, as the meter sends them;
    /// `None` for an address the meter does not know.
    pub fn value(&mut self, address: &str, now: DateTime<Utc>) -> Option<Vec<DataValue>> {
        let parsed = Address::parse(address);
        if let Some(values) = special(self, &parsed, now) {
            return Some(values);
        }
        let (c, d, e) = (parsed.num(0)?, parsed.num(1)?, parsed.num(2)?);
        if parsed.groups.len() != 3 || e > 4 {
            return None;
        }
        let history = match parsed.history {
            Some(suffix) => Some(self.billing_index(suffix)?),
            None => None,
        };
        match d {
            8 => {
                let at = history.map_or(now, |k| self.reset(k, now));
                let text = self.energy_text(c, e, at)?;
                Some(vec![DataValue::with_unit(text, Quantity::energy_unit(c))])
            }
            6 => {
                let period = self.demand_period(history, now);
                let unit = Quantity::power_unit(c);
                Some(match self.max_demand(c, e, period) {
                    Some((watts, at)) => vec![
                        DataValue::with_unit(format!("{:07.4}", watts as f64 / 1000.0), unit),
                        DataValue::new(stamp(self.local(at + self.clock_offset))),
                    ],
                    None => vec![DataValue::with_unit("00.0000", unit), DataValue::new("")],
                })
            }
            // A1000 App. A: "total sum of the maximum demand of all the
            // previous month": the sum over the stored sets.
            2 if history.is_none() => {
                Quantity::for_obis_c(c)?;
                let mut sum = 0;
                for k in 1..=BILLING_SETS {
                    let period = self.demand_period(Some(k), now);
                    sum += self.max_demand(c, e, period).map_or(0, |(watts, _)| watts);
                }
                let unit = Quantity::power_unit(c);
                Some(vec![DataValue::with_unit(
                    format!("{:07.4}", sum as f64 / 1000.0),
                    unit,
                )])
            }
            // "Active power of the current quarter": the average of the
            // demand block in progress so far.
            4 if history.is_none() => {
                let elapsed = now.timestamp().rem_euclid(INTERVAL_SECONDS);
                let block = now - Duration::seconds(elapsed);
                let energy = self.energy_at(c, e, now)? - self.energy_at(c, e, block)?;
                let kw = if elapsed == 0 {
                    0.0
                } else {
                    energy * 3600.0 / elapsed as f64
                };
                Some(vec![DataValue::with_unit(
                    format!("{kw:07.4}"),
                    Quantity::power_unit(c),
                )])
            }
            _ => None,
        }
    }

    /// The numeric value of an energy, demand or power register at `now`,
    /// as the meter computes it (before formatting): e.g.
    /// `register_at("1-1:1.8.2*101", now)`.
    pub fn register_at(&mut self, address: &str, now: DateTime<Utc>) -> Option<f64> {
        self.value(address, now)?.first()?.number()
    }
}

/// Values of the registers that are not energies or demands: identity,
/// clock, status bits, instantaneous values and events.
pub(super) fn special(meter: &mut IecMeter, parsed: &Address, now: DateTime<Utc>) -> Option<Vec<DataValue>> {
    let plain = |text: String| Some(vec![DataValue::new(text)]);
    let body = parsed.groups.join(".");
    match body.as_str() {
        "0.0.0" => return plain(meter.config.meter_number()),
        // TH40C App. A "Identificativo 1" / "2"; the A1000 prints neither
        // in its readout, and answers its type to a read.
        "0.0.1" | "0.0.2" => {
            let identifier = match meter.kind() {
                IecKind::Th40c => {
                    let index = usize::from(body == "0.0.2");
                    meter.config.identifiers[index]
                        .clone()
                        .unwrap_or_else(|| meter.config.meter_number())
                }
                IecKind::A1000 => meter.config.kind.identification().1.to_owned(),
            };
            return plain(identifier);
        }
        "0.9.1" => return plain(meter.clock(now).format("%H%M%S").to_string()),
        "0.9.2" => return plain(meter.clock(now).format("%y%m%d").to_string()),
        "F.F.0" => {
            let text = meter.config.error_word_text.clone();
            return plain(text.unwrap_or_else(|| format!("{:08b}", meter.config.error_bits)));
        }
        "F.F.1" => return plain(format!("{:08b}", warning_bits(meter, now))),
        "F.F.2" => return plain(format!("{:08b}", meter.config.warning2_bits)),
        _ => {}
    }
    let seed = meter.config.seed;
    let epoch = meter.history().epoch();
    if parsed.num(1) == Some(7)
        && parsed.history.is_none()
        && (meter.kind() == IecKind::Th40c || meter.config.phase_values)
    {
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
        (["C", "7", "0"], None) => (LoggedEventKind::PowerDown, 0, 0, (epoch, now)),
        (["C", "51", which @ ("0" | "1")], x) => {
            let range = match meter.kind() {
                IecKind::Th40c => period(x.filter(|x| (1..=16).contains(x))?),
                IecKind::A1000 => (epoch, now),
            };
            (LoggedEventKind::PowerDown, 0, if *which == "0" { 2 } else { 3 }, range)
        }
        (["C", "90", which @ ("1" | "2")], Some(x)) if (1..=16).contains(&x) => (
            LoggedEventKind::TerminalCover,
            0,
            if *which == "1" { 2 } else { 3 },
            period(x),
        ),
        (["C", "51", "2"], None) => (LoggedEventKind::PowerDown, 0, 1, (epoch, now)),
        // C.50.nX*KP: n = 4 voltage loss, 5 phase failure, 6 unbalance,
        // 8 under voltage (TH40C App. A), and for the A1000's display codes
        // 30–33, which have no OBIS code, 7 over current and 9 reverse run;
        // X the period; K the item (0 count, 1 minutes, 2 start, 3 stop),
        // P the phase (0 all).
        (["C", "50", field], Some(item)) if field.len() == 2 => {
            let kind = match &field[..1] {
                "4" => LoggedEventKind::VoltageLoss,
                "5" => LoggedEventKind::PhaseFailure,
                "6" => LoggedEventKind::CurrentUnbalance,
                "7" => LoggedEventKind::OverCurrent,
                "8" => LoggedEventKind::UnderVoltage,
                "9" => LoggedEventKind::ReverseRun,
                _ => return None,
            };
            let x: u32 = field[1..].parse().ok().filter(|x| (1..=7).contains(x))?;
            let range = match meter.kind() {
                IecKind::Th40c => period(x),
                IecKind::A1000 if x == 1 => (epoch, now),
                IecKind::A1000 => return None,
            };
            let (k, p) = ((item / 10) as u8, (item % 10) as u8);
            // TH40C App. A numbers the supply-absence counts and minutes
            // of L1-L3 0-2 and their total 3 (C.50.5X*00…*02, C.50.51*03;
            // *10…*13 alike); its start and stop times, and every other
            // block, 1-3 with 0 the total.
            let phase = match (meter.kind(), kind, k) {
                (IecKind::Th40c, LoggedEventKind::PhaseFailure, 0 | 1) => (p + 1) % 4,
                _ => p,
            };
            (kind, phase, k, range)
        }
        // TH40C current loss start (C = 181-183, D = 130) and end (D = 150)
        // of phase C - 180, per period X = 1..7 (App. A).
        ([c @ ("181" | "182" | "183"), d @ ("130" | "150"), "0"], Some(x))
            if meter.kind() == IecKind::Th40c && (1..=7).contains(&x) =>
        {
            let phase = c.parse::<u8>().ok()? - 180;
            let item = if *d == "130" { 2 } else { 3 };
            (LoggedEventKind::CurrentLoss, phase, item, period(x))
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
                (1, "32" | "33") => LoggedEventKind::CurrentLoss,
                (2, "36" | "37") => LoggedEventKind::OverVoltage,
                (2, "33") => LoggedEventKind::UnderVoltage,
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
pub fn phase_summary(
    seed: u64,
    kind: LoggedEventKind,
    phase: u8,
    range: (DateTime<Utc>, DateTime<Utc>),
) -> EventSummary {
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
    let any = |kind: LoggedEventKind| (1..=3).any(|phase| events::active(seed, kind, phase, now));
    let phases = site_phases(seed, meter.config.zone, now);
    let bits = [
        any(LoggedEventKind::OverVoltage),
        any(LoggedEventKind::UnderVoltage),
        any(LoggedEventKind::VoltageLoss),
        any(LoggedEventKind::PhaseFailure),
        phases.active.iter().any(|p| *p < 0.0),
        phases.total_active() < 0.0,
        any(LoggedEventKind::CurrentLoss),
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

/// `YYMMDDhhmm`, the stamp form of demands and events.
pub fn stamp(local: NaiveDateTime) -> String {
    local.format("%y%m%d%H%M").to_string()
}
