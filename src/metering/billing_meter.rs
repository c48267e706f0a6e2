//! Billing periods the meter closed itself, rebuilt from its history sets.
//!
//! An IEC 62056-21 meter such as the Blue Star A1000 keeps the registers of
//! its last 16 billing resets ("16 energy and demand data can be recorded",
//! A1000 manual §1.5) as history sets `*101`…`*116` (App. A), together with
//! the reset count `0-0:0.1.0` and the time of each set's reset
//! `0-0:0.1.2*101`…`*116`. The poller already stores those values; a set
//! becomes a period here only when its reset time is known, since a period
//! is identified by that time. A TH40C keeps no reset time, so its sets are
//! left alone.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::device::obis::ObisCode;
use crate::device::reading::Quality;
use crate::metering::billing::{BillingPeriod, BillingRegister, BillingSource};

/// OBIS code of the meter's count of billing resets.
pub const RESET_COUNT: &str = "0-0:0.1.0";

/// OBIS code (without suffix) of the time a history set was closed.
const RESET_TIME: &str = "0-0:0.1.2";

/// The A1000 numbers its history sets from 101 (the latest reset) up
/// (manual App. A); a TH40C numbers them from 1.
const FIRST_A1000_SET: u8 = 101;

/// One latest value of a device, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterValue {
    pub obis: String,
    pub value: f64,
    pub unit: String,
    pub captured_at: Option<DateTime<Utc>>,
}

/// One period per history set that has a reset time, oldest first.
///
/// The reset time comes from the reading's `captured_at` (the decoded
/// instant; its value holds the same instant in Unix seconds). The reset
/// count of set N is the meter's count less the resets after it
/// (`0-0:0.1.0` − (N − 101) on an A1000), so the latest set carries the
/// current count.
pub fn periods_from_history(values: &[MeterValue]) -> Vec<BillingPeriod> {
    let count = values
        .iter()
        .find(|v| v.obis == RESET_COUNT)
        .map(|v| v.value)
        .filter(|v| v.is_finite() && *v >= 0.0);
    let parsed: Vec<(ObisCode, &MeterValue)> = values
        .iter()
        .filter_map(|v| v.obis.parse::<ObisCode>().ok().map(|code| (code, v)))
        .collect();
    let mut resets: BTreeMap<u8, DateTime<Utc>> = BTreeMap::new();
    for (code, value) in &parsed {
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
            let registers = parsed
                .iter()
                .filter(|(code, _)| code.billing() == Some(set) && code.current().to_string() != RESET_TIME)
                .map(|(code, value)| BillingRegister {
                    obis: code.current().to_string(),
                    value: value.value,
                    unit: value.unit.clone(),
                    captured_at: value.captured_at,
                })
                .collect();
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
            obis: obis.into(),
            value,
            unit: unit.into(),
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
                obis: "1-1:1.8.0".into(),
                value: 10400.5,
                unit: "kWh".into(),
                captured_at: None
            }]
        );

        let november = &periods[1];
        assert_eq!(november.reset_at, nov);
        assert_eq!(november.reset_count, Some(17));
        let mut codes: Vec<&str> = november.registers.iter().map(|r| r.obis.as_str()).collect();
        codes.sort();
        assert_eq!(codes, ["1-1:1.6.0", "1-1:1.8.0"]);
        let demand = november.registers.iter().find(|r| r.obis == "1-1:1.6.0").unwrap();
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

    #[test]
    fn reset_counts_never_go_below_one() {
        assert_eq!(reset_count(17.0, 101), Some(17));
        assert_eq!(reset_count(17.0, 116), Some(2));
        assert_eq!(reset_count(3.0, 116), None);
        assert_eq!(reset_count(5.0, 1), Some(5));
    }
}
