//! Billing periods the meter closed itself, rebuilt from its history sets.
//!
//! An IEC 62056-21 meter such as the Blue Star A1000 keeps the registers of
//! its last 16 billing resets ("16 energy and demand data can be recorded",
//! A1000 manual §1.5) as history sets `*101`…`*116` (App. A), together with
//! the reset count `0-0:0.1.0` and the time of each set's reset
//! `0-0:0.1.2*101`…`*116`. The poller already stores those values; such a
//! set becomes a period when its reset time is known ([`periods_from_history`]).
//!
//! A TH40C keeps 16 sets too (`*1` the last reset, up to `*16`; over Modbus
//! only "last month" and "two months ago") but no reset time. At a reset
//! "the energy values and the current maximum demand are stored as the
//! previous month's values" (TH40C manual, billing reset), so its history
//! shifts: the new `*1` is what the current registers held at the reset.
//! The reset happens on the meter's monthly schedule ("factory settings:
//! the first day of each month at 00:00"), so a shift first seen in a read
//! is placed at the latest schedule instant at or before that read, and
//! set `*k` one schedule step earlier per `k` ([`periods_from_shift`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::BillingSource;
use crate::domain::unit::Unit;
use crate::metering::billing::{BillingPeriod, BillingRegister};
use crate::metering::billing_schedule::instants_back;

/// OBIS code of the meter's count of billing resets.
pub(crate) const RESET_COUNT: &str = "0-0:0.1.0";

/// OBIS code (without suffix) of the time a history set was closed.
const RESET_TIME: &str = "0-0:0.1.2";

/// The A1000 numbers its history sets from 101 (the latest reset) up
/// (manual App. A); a TH40C numbers them from 1.
const FIRST_A1000_SET: u8 = 101;

/// A TH40C's history sets: `*1` … `*16` (manual App. A, "X (0<X<16)", and
/// "the last 16 values of energy and maximum demand").
const TH40C_SETS: std::ops::RangeInclusive<u8> = 1..=16;

/// The TH40C's factory billing schedule: "il primo giorno di ogni mese alle
/// ore 00:00" (manual, billing reset), day 1 at hour 0.
pub(crate) const FACTORY_SCHEDULE: (u32, u32) = (1, 0);

/// When a meter resets: day 1–28 and hour of each month, local time in `zone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResetSchedule {
    pub day: u32,
    pub hour: u32,
    pub zone: Tz,
}

/// One latest value of a device, as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MeterValue {
    pub obis: ObisCode,
    pub value: f64,
    pub unit: Unit,
    pub captured_at: Option<DateTime<Utc>>,
}

/// One period per history set that has a reset time, oldest first.
///
/// The reset time comes from the reading's `captured_at` (the decoded
/// instant; its value holds the same instant in Unix seconds). The reset
/// count of set N is the meter's count less the resets after it
/// (`0-0:0.1.0` − (N − 101) on an A1000), so the latest set carries the
/// current count.
pub(crate) fn periods_from_history(values: &[MeterValue]) -> Vec<BillingPeriod> {
    let count = values
        .iter()
        .find(|v| v.obis.to_string() == RESET_COUNT)
        .map(|v| v.value)
        .filter(|v| v.is_finite() && *v >= 0.0);
    let parsed: Vec<&MeterValue> = values.iter().collect();
    let mut resets: BTreeMap<u8, DateTime<Utc>> = BTreeMap::new();
    for value in &parsed {
        let code = &value.obis;
        if let Some(set) = code.billing()
            && code.current().to_string() == RESET_TIME
            && let Some(at) = reset_time(value)
        {
            resets.insert(set, at);
        }
    }
    let mut periods: Vec<BillingPeriod> = resets
        .into_iter()
        .map(|(set, reset_at)| {
            let registers = set_registers(&parsed, set, |code| code.current().to_string() != RESET_TIME);
            BillingPeriod {
                reset_at,
                source: BillingSource::Meter,
                reset_count: count.and_then(|count| reset_count(count, set)),
                registers,
                quality: Quality::GOOD,
            }
        })
        .collect();
    periods.sort_by_key(|p| p.reset_at);
    periods
}

/// The energies of the last reset (`*1`, value group D = 8) of a meter
/// without reset times: the values whose change shows a history shift.
/// Empty for a meter that reports reset times (it is read by those).
pub(crate) fn shift_codes(values: &[MeterValue]) -> Vec<(ObisCode, f64)> {
    if has_reset_times(values) {
        return Vec::new();
    }
    values
        .iter()
        .filter(|v| v.obis.billing() == Some(1) && v.obis.kind() == Some(8))
        .map(|v| (v.obis.clone(), v.value))
        .collect()
}

fn has_reset_times(values: &[MeterValue]) -> bool {
    values
        .iter()
        .any(|v| v.obis.billing().is_some() && v.obis.current().to_string() == RESET_TIME)
}

/// One period per history set `*1`…`*16` of a meter without reset times,
/// oldest first, given when the current `*1` values were first read
/// (`shift_seen`): set `*k` closed at the `k`-th latest instant of
/// `schedule` at or before then. A period holds the set's energies (D = 8)
/// and maximum demands (D = 6, with their times) under their current codes;
/// the TH40C's other `*X` codes count events of period X and are left out.
pub(crate) fn periods_from_shift(
    values: &[MeterValue],
    shift_seen: DateTime<Utc>,
    schedule: &ResetSchedule,
) -> Vec<BillingPeriod> {
    if has_reset_times(values) {
        return Vec::new();
    }
    let parsed: Vec<&MeterValue> = values.iter().filter(|v| matches!(v.obis.kind(), Some(6 | 8))).collect();
    let deepest = parsed
        .iter()
        .filter_map(|v| v.obis.billing())
        .filter(|set| TH40C_SETS.contains(set))
        .max();
    let Some(deepest) = deepest else {
        return Vec::new();
    };
    let resets = instants_back(
        schedule.day,
        schedule.hour,
        schedule.zone,
        shift_seen,
        usize::from(deepest),
    );
    let mut periods: Vec<BillingPeriod> = resets
        .into_iter()
        .zip(1u8..)
        .filter_map(|(reset_at, set)| {
            let registers = set_registers(&parsed, set, |_| true);
            (!registers.is_empty()).then_some(BillingPeriod {
                reset_at,
                source: BillingSource::Meter,
                reset_count: None,
                registers,
                quality: Quality::GOOD,
            })
        })
        .collect();
    periods.sort_by_key(|p| p.reset_at);
    periods
}

/// The registers of history set `set` that `keep` accepts, under their current codes.
fn set_registers(values: &[&MeterValue], set: u8, keep: impl Fn(&ObisCode) -> bool) -> Vec<BillingRegister> {
    values
        .iter()
        .filter(|value| value.obis.billing() == Some(set) && keep(&value.obis))
        .map(|value| BillingRegister {
            obis: value.obis.current(),
            value: value.value,
            unit: value.unit,
            captured_at: value.captured_at,
        })
        .collect()
}

fn reset_time(value: &MeterValue) -> Option<DateTime<Utc>> {
    value
        .captured_at
        .or_else(|| DateTime::from_timestamp(value.value as i64, 0).filter(|_| value.value.is_finite()))
}

/// The count after set `set`'s reset: resets since then are `index − 1`.
fn reset_count(count: f64, set: u8) -> Option<i32> {
    let index = if set >= FIRST_A1000_SET {
        set - FIRST_A1000_SET
    } else {
        set.checked_sub(1)?
    };
    let at = count as i64 - i64::from(index);
    (at > 0).then(|| i32::try_from(at).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn value(obis: &str, value: f64, unit: &str, captured_at: Option<DateTime<Utc>>) -> MeterValue {
        MeterValue {
            obis: obis.parse().unwrap(),
            value,
            unit: unit.parse().unwrap(),
            captured_at,
        }
    }

    fn at(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn each_set_with_a_reset_time_becomes_a_period_under_current_codes() {
        let oct = at(10, 1, 0);
        let nov = at(11, 1, 0);
        let demand_at = Utc.with_ymd_and_hms(2026, 10, 14, 9, 15, 0).unwrap();
        let values = vec![
            value("0-0:0.1.0", 17.0, "", None),
            value("0-0:0.1.2*101", nov.timestamp() as f64, "timestamp", Some(nov)),
            value("0-0:0.1.2*102", oct.timestamp() as f64, "timestamp", Some(oct)),
            value("1-1:1.8.0", 12345.67, "kWh", None),
            value("1-1:1.8.0*101", 11000.0, "kWh", None),
            value("1-1:1.6.0*101", 12.5, "kW", Some(demand_at)),
            value("1-1:1.8.0*102", 10400.5, "kWh", None),
            // Set 103 has no reset time: skipped.
            value("1-1:1.8.0*103", 9800.0, "kWh", None),
        ];
        let periods = periods_from_history(&values);
        assert_eq!(periods.len(), 2);

        let october = &periods[0];
        assert_eq!(october.reset_at, oct);
        assert_eq!(october.source, BillingSource::Meter);
        assert_eq!(october.reset_count, Some(16));
        assert_eq!(october.quality, Quality::GOOD);
        assert_eq!(
            october.registers,
            vec![BillingRegister {
                obis: "1-1:1.8.0".parse().unwrap(),
                value: 10400.5,
                unit: Unit::KWh,
                captured_at: None
            }]
        );

        let november = &periods[1];
        assert_eq!(november.reset_at, nov);
        assert_eq!(november.reset_count, Some(17));
        let mut codes: Vec<String> = november.registers.iter().map(|r| r.obis.to_string()).collect();
        codes.sort();
        assert_eq!(codes, ["1-1:1.6.0", "1-1:1.8.0"]);
        let demand = november
            .registers
            .iter()
            .find(|r| r.obis.to_string() == "1-1:1.6.0")
            .unwrap();
        assert_eq!((demand.value, demand.unit.as_str()), (12.5, "kW"));
        assert_eq!(demand.captured_at, Some(demand_at));
    }

    #[test]
    fn without_a_reset_count_periods_carry_none() {
        let nov = at(11, 1, 0);
        let values = vec![
            value("0-0:0.1.2*101", nov.timestamp() as f64, "timestamp", None),
            value("1-1:1.8.0*101", 5.0, "kWh", None),
        ];
        let periods = periods_from_history(&values);
        assert_eq!(periods.len(), 1);
        // The reset time falls back on the value in Unix seconds.
        assert_eq!(periods[0].reset_at, nov);
        assert_eq!(periods[0].reset_count, None);
    }

    #[test]
    fn a_meter_without_reset_times_gives_no_periods() {
        // A TH40C: history sets *1…*16 but no 0.1.2.
        let values = vec![
            value("1-1:1.8.0*1", 100.0, "kWh", None),
            value("1-1:1.8.0*2", 90.0, "kWh", None),
        ];
        assert!(periods_from_history(&values).is_empty());
    }

    fn rome() -> ResetSchedule {
        ResetSchedule {
            day: 1,
            hour: 0,
            zone: chrono_tz::Europe::Rome,
        }
    }

    #[test]
    fn a_shift_is_placed_at_the_latest_schedule_instant_before_it_was_seen() {
        let demand_at = Utc.with_ymd_and_hms(2026, 11, 18, 9, 15, 0).unwrap();
        let values = vec![
            value("1-1:1.8.0", 1200.0, "kWh", None),
            value("1-1:1.8.0*1", 1100.0, "kWh", None),
            value("1-1:1.8.1*1", 600.0, "kWh", None),
            value("1-1:1.6.0*1", 7.5, "kW", Some(demand_at)),
            value("1-1:1.8.0*2", 1000.0, "kWh", None),
            // Events of the last period, not a billing register.
            value("0-0:C.51.0*1", 1_700_000_000.0, "timestamp", None),
            value("1-1:1.7.0", 3.0, "kW", None),
        ];
        // First seen on 3 December, 10:00 UTC: the shift happened at
        // 1 December 00:00 in Rome (UTC+1), 30 November 23:00 UTC; set *2
        // a month earlier, 1 November 00:00 in Rome, 31 October 23:00 UTC.
        let seen = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let periods = periods_from_shift(&values, seen, &rome());
        assert_eq!(periods.len(), 2);
        assert_eq!(
            periods[0].reset_at,
            Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap()
        );
        assert_eq!(
            periods[0].registers,
            vec![BillingRegister {
                obis: "1-1:1.8.0".parse().unwrap(),
                value: 1000.0,
                unit: Unit::KWh,
                captured_at: None
            }]
        );
        let last = &periods[1];
        assert_eq!(last.reset_at, Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap());
        assert_eq!((last.source, last.reset_count), (BillingSource::Meter, None));
        let mut codes: Vec<String> = last.registers.iter().map(|r| r.obis.to_string()).collect();
        codes.sort();
        assert_eq!(codes, ["1-1:1.6.0", "1-1:1.8.0", "1-1:1.8.1"]);
        let demand = last
            .registers
            .iter()
            .find(|r| r.obis.to_string() == "1-1:1.6.0")
            .unwrap();
        assert_eq!((demand.value, demand.captured_at), (7.5, Some(demand_at)));
    }

    #[test]
    fn a_shift_seen_on_the_instant_itself_belongs_to_it() {
        let values = vec![value("1-1:1.8.0*1", 5.0, "kWh", None)];
        let instant = Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap();
        let periods = periods_from_shift(&values, instant, &rome());
        assert_eq!(periods.len(), 1);
        assert_eq!(periods[0].reset_at, instant);
        let before = periods_from_shift(&values, instant - chrono::Duration::seconds(1), &rome());
        assert_eq!(
            before[0].reset_at,
            Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap()
        );
    }

    #[test]
    fn shift_codes_are_the_last_resets_energies_of_a_meter_without_reset_times() {
        let th40c = vec![
            value("1-1:1.8.0*1", 5.0, "kWh", None),
            value("1-1:1.6.0*1", 2.0, "kW", None),
            value("1-1:1.8.0*2", 4.0, "kWh", None),
            value("1-1:1.8.0", 6.0, "kWh", None),
        ];
        assert_eq!(shift_codes(&th40c), vec![("1-1:1.8.0*1".parse().unwrap(), 5.0)]);
        let nov = at(11, 1, 0);
        let a1000 = vec![
            value("0-0:0.1.2*101", nov.timestamp() as f64, "timestamp", Some(nov)),
            value("1-1:1.8.0*1", 5.0, "kWh", None),
        ];
        assert!(shift_codes(&a1000).is_empty());
        assert!(periods_from_shift(&a1000, nov, &rome()).is_empty());
    }

    #[test]
    fn reset_counts_never_go_below_one() {
        assert_eq!(reset_count(17.0, 101), Some(17));
        assert_eq!(reset_count(17.0, 116), Some(2));
        assert_eq!(reset_count(3.0, 116), None);
        assert_eq!(reset_count(5.0, 1), Some(5));
    }
}
