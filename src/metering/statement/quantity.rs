//! Which billing quantity a load-profile channel measures, and its energy
//! per interval as an exact integer.
//!
//! Load-profile channels are named by what the meter records per interval;
//! a statement names each quantity by its cumulative register code
//! (value group D = 8, tariff E = 0), which is what a bill and the meter's
//! display show. The channel's value group C is the quantity (IEC 62056-61):
//! 1 active import, 2 active export, 3 reactive import (+R), 4 reactive
//! export (−R), 5–8 reactive in quadrants Q1–Q4, 9 apparent import,
//! 10 apparent export. Value group D says how the interval holds it:
//!
//! | channel D | holds | example | energy of the interval |
//! | --- | --- | --- | --- |
//! | 29 | energy over the capture period | A1000 `1-1:1.29.0` kWh (A1000 manual §1.6; `profiles/a1000.toml`) | the value |
//! | 8 | increase of the cumulative register | derived `1-1:1.8.0` kWh (docs/METERING.md, "Derived intervals") | the value |
//! | 5 | average power over the interval | TH40C `1-1:1.5.0` kW (TH40C manual §2, load profile: "potenza media"; `profiles/th40c.toml`) | value × minutes / 60 |
//!
//! Derived intervals of the tariff registers (`1-1:1.8.1` …, E ≠ 0) are the
//! meter's own split, not consumption: a statement leaves them out (the TOU
//! audit compares them). Where a device has two channels of one quantity
//! (say `1.29.0` and `1.8.0`), the one with D = 29 wins over D = 8 over
//! D = 5, so no energy is counted twice.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::IntervalSource;
use crate::domain::unit::Unit;

/// Value groups C that name an energy quantity a statement reports.
const QUANTITIES: [u8; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/// A billing quantity, named by its register code `A-B:C.8.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Quantity {
    register: ObisCode,
}

/// Active, reactive or apparent: what a quantity's values are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Active,
    Reactive,
    Apparent,
}

impl Family {
    /// The unit a statement shows this family's energy in.
    pub(crate) fn energy_unit(self) -> Unit {
        match self {
            Family::Active => Unit::KWh,
            Family::Reactive => Unit::KVarh,
            Family::Apparent => Unit::KVAh,
        }
    }

    /// The unit of this family's average power (demand).
    pub(crate) fn power_unit(self) -> Unit {
        match self {
            Family::Active => Unit::KW,
            Family::Reactive => Unit::KVar,
            Family::Apparent => Unit::KVA,
        }
    }
}

impl Quantity {
    /// The quantity of value group C on the channel `A-B` of `like`.
    fn of(like: &ObisCode, c: u8) -> Option<Quantity> {
        let text = like.to_string();
        let (ab, _) = text.split_once(':')?;
        let register = format!("{ab}:{c}.8.0").parse().ok()?;
        Some(Quantity { register })
    }

    /// Value group C: 1 active import, 2 active export, … (module doc).
    pub(crate) fn number(&self) -> u8 {
        self.register.quantity().unwrap_or(0)
    }

    pub(crate) fn family(&self) -> Family {
        match self.number() {
            1 | 2 => Family::Active,
            9 | 10 => Family::Apparent,
            _ => Family::Reactive,
        }
    }

    /// The maximum demand register of this quantity (D = 6): `1-1:1.8.0`
    /// → `1-1:1.6.0`, as the A1000 (Appendix A) and TH40C name it.
    pub(crate) fn demand_register(&self) -> String {
        let text = self.register.to_string();
        match text.strip_suffix(".8.0") {
            Some(base) => format!("{base}.6.0"),
            None => text,
        }
    }

    /// The register code of this quantity in meter tariff `rate` (1–4):
    /// `1-1:1.8.0` → `1-1:1.8.2`.
    pub(crate) fn in_rate(&self, rate: u8) -> Option<ObisCode> {
        let text = self.register.to_string();
        let base = text.strip_suffix(".0")?;
        format!("{base}.{rate}").parse().ok()
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.register.fmt(f)
    }
}

/// How a channel holds its quantity (value group D), in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Holding {
    /// D = 29: energy over the capture period.
    Energy,
    /// D = 8, E = 0: increase of the cumulative register.
    Increase,
    /// D = 5: average power over the interval.
    AveragePower,
}

/// What a channel code measures: its quantity and how it holds it, or
/// `None` for a channel that is no energy quantity of a statement.
pub(crate) fn channel_quantity(channel: &ObisCode) -> Option<(Quantity, u8)> {
    if channel.billing().is_some() || channel.tariff() != Some(0) {
        return None;
    }
    let c = channel.quantity().filter(|c| QUANTITIES.contains(c))?;
    let holding = match channel.kind()? {
        29 => Holding::Energy,
        8 => Holding::Increase,
        5 => Holding::AveragePower,
        _ => return None,
    };
    Some((Quantity::of(channel, c)?, holding as u8))
}

/// One stored interval of one channel (the newest version of it), as a
/// statement takes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChannelInterval {
    pub obis: ObisCode,
    pub start: DateTime<Utc>,
    pub minutes: u32,
    pub value: f64,
    pub unit: Unit,
    pub quality: Quality,
    pub source: IntervalSource,
}

impl ChannelInterval {
    pub(crate) fn end(&self) -> DateTime<Utc> {
        self.start + Duration::minutes(i64::from(self.minutes))
    }
}

/// One interval's energy of one quantity, in milli-units (mWh, mvarh,
/// mVAh).
///
/// Why milli: meters print energy to at most three decimals of kWh (TH40C
/// manual §2: "fino a un massimo di 3 cifre decimali"), i.e. 1 Wh; derived
/// intervals split a register's increase pro rata by time and so carry
/// fractions of a Wh. Rounding each stored value once to 1 mWh loses at most
/// 0.5 mWh per interval (under 1.5 Wh over a month of quarter hours), and
/// everything after that is integer arithmetic: no float sum drifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slice {
    pub quantity: Quantity,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub milli: i128,
}

/// Milli-units of the family per stored unit, and whether the unit is a
/// power (to be multiplied by the interval's hours).
fn scale(family: Family, unit: Unit) -> Option<(f64, bool)> {
    let scale = match (family, unit) {
        (Family::Active, Unit::Wh) | (Family::Reactive, Unit::Varh) | (Family::Apparent, Unit::VAh) => (1e3, false),
        (Family::Active, Unit::KWh) | (Family::Reactive, Unit::KVarh) | (Family::Apparent, Unit::KVAh) => (1e6, false),
        (Family::Active, Unit::MWh) => (1e9, false),
        (Family::Active, Unit::W) | (Family::Reactive, Unit::Var) | (Family::Apparent, Unit::VA) => (1e3, true),
        (Family::Active, Unit::KW) | (Family::Reactive, Unit::KVar) | (Family::Apparent, Unit::KVA) => (1e6, true),
        _ => return None,
    };
    Some(scale)
}

/// A register's energy value in milli-units of `family`, rounded once;
/// `None` for a unit that is no energy of that family.
pub(crate) fn register_milli(family: Family, value: f64, unit: Unit) -> Option<i128> {
    let (factor, power) = scale(family, unit)?;
    let milli = (value * factor).round();
    // A finite f64 rounded to an integer converts exactly below 2^127.
    #[allow(clippy::cast_possible_truncation)]
    (!power && milli.is_finite()).then_some(milli as i128)
}

/// The energy of each interval as a [`Slice`], the preferred channel of
/// each quantity only. Also returns the channels left out because their
/// unit does not fit their quantity or a value is not finite.
pub(crate) fn slices(intervals: &[ChannelInterval]) -> (Vec<Slice>, Vec<ObisCode>) {
    let mut best: std::collections::BTreeMap<Quantity, u8> = std::collections::BTreeMap::new();
    for interval in intervals {
        if let Some((quantity, holding)) = channel_quantity(&interval.obis) {
            let entry = best.entry(quantity).or_insert(holding);
            *entry = (*entry).min(holding);
        }
    }
    let mut out = Vec::with_capacity(intervals.len());
    let mut refused: Vec<ObisCode> = Vec::new();
    for interval in intervals {
        let Some((quantity, holding)) = channel_quantity(&interval.obis) else {
            continue;
        };
        if best.get(&quantity) != Some(&holding) {
            continue;
        }
        let Some((factor, power)) = scale(quantity.family(), interval.unit) else {
            if !refused.contains(&interval.obis) {
                refused.push(interval.obis.clone());
            }
            continue;
        };
        let hours = if power { f64::from(interval.minutes) / 60.0 } else { 1.0 };
        let milli = (interval.value * factor * hours).round();
        if !milli.is_finite() || interval.minutes == 0 {
            if !refused.contains(&interval.obis) {
                refused.push(interval.obis.clone());
            }
            continue;
        }
        // A finite f64 rounded to an integer below 2^127 converts exactly.
        #[allow(clippy::cast_possible_truncation)]
        let milli = milli as i128;
        out.push(Slice {
            quantity,
            start: interval.start,
            end: interval.end(),
            milli,
        });
    }
    (out, refused)
}

/// Whether a channel is one of the statement's energy channels (used for
/// the data-quality count).
pub(crate) fn is_energy_channel(channel: &ObisCode) -> bool {
    channel_quantity(channel).is_some()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn interval(obis: &str, value: f64, unit: Unit, minutes: u32) -> ChannelInterval {
        ChannelInterval {
            obis: obis.parse().unwrap(),
            start: Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap(),
            minutes,
            value,
            unit,
            quality: Quality::GOOD,
            source: IntervalSource::Meter,
        }
    }

    #[test]
    fn channels_map_to_their_register_codes() {
        let register = |code: &str| channel_quantity(&code.parse().unwrap()).map(|(q, _)| q.to_string());
        assert_eq!(register("1-1:1.29.0").as_deref(), Some("1-1:1.8.0"));
        assert_eq!(register("1-1:8.29.0").as_deref(), Some("1-1:8.8.0"));
        assert_eq!(register("1-1:2.5.0").as_deref(), Some("1-1:2.8.0"));
        assert_eq!(register("1-0:9.8.0").as_deref(), Some("1-0:9.8.0"));
        assert_eq!(register("1-1:1.8.2"), None, "a tariff register is the meter's split");
        assert_eq!(register("1-1:1.8.0*1"), None);
        assert_eq!(register("1-1:32.7.0"), None);
        assert_eq!(register("1-1:129.8.0"), None);
    }

    #[test]
    fn energies_become_milli_units_and_powers_are_multiplied_by_hours() {
        let (slices, refused) = slices(&[
            interval("1-1:1.29.0", 1.25, Unit::KWh, 15),
            interval("1-1:5.5.0", 2.0, Unit::KVar, 15),
            interval("1-1:2.8.0", 0.0004, Unit::Wh, 15),
        ]);
        assert!(refused.is_empty());
        let milli: Vec<i128> = slices.iter().map(|s| s.milli).collect();
        // 1.25 kWh = 1 250 000 mWh; 2 kvar × 0.25 h = 500 000 mvarh; 0.0004 Wh rounds to 0 mWh.
        assert_eq!(milli, vec![1_250_000, 500_000, 0]);
        assert_eq!(slices[0].end, Utc.with_ymd_and_hms(2026, 3, 2, 8, 15, 0).unwrap());
    }

    #[test]
    fn the_preferred_channel_of_a_quantity_is_the_only_one_counted() {
        let (slices, _) = slices(&[
            interval("1-1:1.5.0", 4.0, Unit::KW, 15),
            interval("1-1:1.29.0", 1.0, Unit::KWh, 15),
            interval("1-1:1.8.0", 9.0, Unit::KWh, 15),
        ]);
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0].milli, 1_000_000);
    }

    #[test]
    fn a_unit_that_does_not_fit_is_refused_by_name() {
        let (slices, refused) = slices(&[interval("1-1:1.29.0", 1.0, Unit::KVarh, 15)]);
        assert!(slices.is_empty());
        assert_eq!(refused, vec!["1-1:1.29.0".parse::<ObisCode>().unwrap()]);
    }

    #[test]
    fn a_quantity_names_its_tariff_registers() {
        let (quantity, _) = channel_quantity(&"1-1:1.29.0".parse().unwrap()).unwrap();
        assert_eq!(quantity.in_rate(3).unwrap().to_string(), "1-1:1.8.3");
        assert_eq!(quantity.demand_register(), "1-1:1.6.0");
    }
}
