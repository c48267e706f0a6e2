//! Billing periods: the registers as they stood at a billing reset.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::BillingSource;
use crate::domain::unit::Unit;

/// One register of a closed period, under its current OBIS code (`1-1:1.8.0`,
/// not the history code `1-1:1.8.0*1` it was read as).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingRegister {
    pub obis: ObisCode,
    pub value: f64,
    pub unit: Unit,
    /// When the value occurred, for a maximum demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<DateTime<Utc>>,
}

/// A closed billing period.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingPeriod {
    pub reset_at: DateTime<Utc>,
    pub source: BillingSource,
    /// The meter's own count of resets, where it keeps one.
    pub reset_count: Option<i32>,
    pub registers: Vec<BillingRegister>,
    pub quality: Quality,
}

/// When each of `periods` (any order) started: the reset before it from
/// the same source (a meter's periods follow each other, and so do the
/// server's); `None` for the oldest of its source, whose start was not
/// stored. The end of a period is its `reset_at`.
pub fn period_starts(periods: &[BillingPeriod]) -> Vec<Option<DateTime<Utc>>> {
    periods
        .iter()
        .map(|period| {
            periods
                .iter()
                .filter(|other| other.source == period.source && other.reset_at < period.reset_at)
                .map(|other| other.reset_at)
                .max()
        })
        .collect()
}

/// When the meter was replaced within the period (`start`, `end`]: the
/// confirmed replacement `replaced` (the start of the device's newest
/// register series) when it lies there, so the period's registers and the
/// ones of the period before it are two meters'. `None` when the period's
/// start is not known (the oldest stored of its source).
pub fn replaced_within(
    replaced: Option<DateTime<Utc>>,
    start: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let (replaced, start) = (replaced?, start?);
    (start < replaced && replaced <= end).then_some(replaced)
}

/// Whether a register's time of occurrence (a maximum demand's) falls
/// outside the period `(start, end]` it was closed with: the meter's clock
/// or its history is not to be trusted for it. `None` when the register
/// has no time, or the period's start is not known and the time is before
/// its end.
pub fn captured_outside(register: &BillingRegister, start: Option<DateTime<Utc>>, end: DateTime<Utc>) -> Option<bool> {
    let at = register.captured_at?;
    if at > end {
        return Some(true);
    }
    match start {
        Some(start) => Some(at <= start),
        None => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn period(source: BillingSource, month: u32) -> BillingPeriod {
        BillingPeriod {
            reset_at: Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap(),
            source,
            reset_count: None,
            registers: Vec::new(),
            quality: Quality::GOOD,
        }
    }

    fn at(month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, 9, 15, 0).unwrap()
    }

    #[test]
    fn a_period_starts_at_the_reset_before_it_from_the_same_source() {
        // Newest first, as stored: meter resets on Nov 1, Oct 1, Sep 1, a
        // server period on Oct 1 that belongs to its own chain.
        let periods = [
            period(BillingSource::Meter, 11),
            period(BillingSource::Server, 10),
            period(BillingSource::Meter, 10),
            period(BillingSource::Meter, 9),
        ];
        let first = |month| Some(Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap());
        assert_eq!(period_starts(&periods), vec![first(10), None, first(9), None]);
    }

    #[test]
    fn a_demand_outside_its_period_is_told() {
        let register = |captured_at| BillingRegister {
            obis: "1-1:1.6.0".parse().unwrap(),
            value: 12.5,
            unit: Unit::KW,
            captured_at,
        };
        let (start, end) = (Some(at(10, 1)), at(11, 1));
        assert_eq!(captured_outside(&register(Some(at(10, 14))), start, end), Some(false));
        assert_eq!(captured_outside(&register(Some(at(11, 3))), start, end), Some(true));
        assert_eq!(captured_outside(&register(Some(at(9, 20))), start, end), Some(true));
        assert_eq!(captured_outside(&register(Some(at(9, 20))), None, end), Some(false));
        assert_eq!(captured_outside(&register(None), start, end), None);
    }

    #[test]
    fn a_replacement_is_told_on_the_period_it_falls_in() {
        let first = |month: u32| Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap();
        let replaced = Some(at(10, 20));
        // October 1 to November 1 holds October 20; the periods on either
        // side do not.
        assert_eq!(replaced_within(replaced, Some(first(10)), first(11)), replaced);
        assert_eq!(replaced_within(replaced, Some(first(9)), first(10)), None);
        assert_eq!(replaced_within(replaced, Some(first(11)), first(12)), None);
        // A replacement at the very end belongs to the period it closes;
        // at the very start, to the one before.
        assert_eq!(
            replaced_within(Some(first(11)), Some(first(10)), first(11)),
            Some(first(11))
        );
        assert_eq!(replaced_within(Some(first(10)), Some(first(10)), first(11)), None);
        // No replacement, or a period whose start is not known: nothing said.
        assert_eq!(replaced_within(None, Some(first(10)), first(11)), None);
        assert_eq!(replaced_within(replaced, None, first(11)), None);
    }
}
