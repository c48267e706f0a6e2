//! The TOU audit: a meter that keeps its own tariff registers splits its
//! energy by its own calendar and clock. Over a billing period, the
//! increase of each tariff register should match the server's split of the
//! same period's intervals under the device's calendar; a difference
//! beyond a tolerance is the symptom of a wrong calendar (in the meter or
//! on the server) or of a meter clock that drifts.
//!
//! **Rates and bands.** The meters number their tariffs 1–4 in value group
//! E: A1000 F1–F4 as `1-1:1.8.1` … `1-1:1.8.4` (A1000 manual, Appendix A),
//! TH40C rates 1–4 the same way (`profiles/th40c.toml`), COUNTIS T1–T4
//! (E43/E44 manual, tariff management). Band *i* of the calendar, in its
//! order, is rate *i* (F1 is rate 1). A calendar of more than four bands
//! has no meter register for the fifth and is audited on the first four.
//!
//! **Tolerance.** A band is out when `|meter − server| > tolerance × total`,
//! `total` the server's energy of that quantity over the period (all
//! bands); the site's `tou_tolerance_percent`, default 1 %.

use std::collections::BTreeMap;

use super::energy::BandEnergy;
use super::quantity::{Family, Quantity, register_milli};
use crate::domain::obis::ObisCode;
use crate::domain::unit::Unit;
use crate::metering::register_deltas::plausible_wrap;

/// A register value at one end of a billing period.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RegisterValue {
    pub value: f64,
    pub unit: Unit,
}

/// One band whose meter register disagrees with the server's split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BandMismatch {
    pub band: String,
    /// The meter's tariff register compared (`1-1:1.8.2`).
    pub register: ObisCode,
    /// Milli-units the register grew by.
    pub meter: i128,
    /// Milli-units the server splits into the band.
    pub server: i128,
}

/// The audit of one quantity over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QuantityAudit {
    pub quantity: Quantity,
    /// The server's energy of the quantity over the period, milli-units.
    pub total: i128,
    /// Bands compared (those with a register at both ends).
    pub compared: Vec<String>,
    pub mismatches: Vec<BandMismatch>,
}

/// Compares the meter's tariff registers at the start and end of a period
/// with the server's split of it. Quantities without a tariff register at
/// both ends are left out. `wrap` is where the meter's energy registers
/// roll over to zero, in kWh, kvarh or kVAh (its profile's
/// `[energy_display]`): a register lower at the end than at the start by a
/// plausible wrap grew by the wrap's increase
/// ([`plausible_wrap`]); any other decrease is compared as it is.
pub(crate) fn audit(
    start: &BTreeMap<ObisCode, RegisterValue>,
    end: &BTreeMap<ObisCode, RegisterValue>,
    server: &BandEnergy,
    tolerance: f64,
    wrap: Option<f64>,
) -> Vec<QuantityAudit> {
    let mut audits = Vec::new();
    for (quantity, total) in &server.total {
        let family = quantity.family();
        let wrap = wrap.and_then(|wrap| register_milli(family, wrap, family.energy_unit()));
        let mut audit = QuantityAudit {
            quantity: quantity.clone(),
            total: *total,
            compared: Vec::new(),
            mismatches: Vec::new(),
        };
        for (index, band) in server.bands.iter().enumerate().take(4) {
            let Some(register) = u8::try_from(index + 1).ok().and_then(|rate| quantity.in_rate(rate)) else {
                continue;
            };
            let (Some(before), Some(after)) = (
                start.get(&register).and_then(|r| milli(family, r)),
                end.get(&register).and_then(|r| milli(family, r)),
            ) else {
                continue;
            };
            audit.compared.push(band.clone());
            let meter = increase(before, after, wrap);
            let split = server.get(band, quantity);
            if out_of_tolerance(meter, split, *total, tolerance) {
                audit.mismatches.push(BandMismatch {
                    band: band.clone(),
                    register,
                    meter,
                    server: split,
                });
            }
        }
        if !audit.compared.is_empty() {
            audits.push(audit);
        }
    }
    audits
}

/// A register's increase from `before` to `after` (milli-units), across a
/// rollover at `wrap` when the fall is a plausible one.
fn increase(before: i128, after: i128, wrap: Option<i128>) -> i128 {
    // Registers are far below 2^53 milli-units: f64 holds them exactly.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let wrapped = wrap
        .and_then(|wrap| plausible_wrap(before as f64, after as f64, wrap as f64))
        .map(|increase| increase.round() as i128);
    wrapped.unwrap_or(after - before)
}

fn milli(family: Family, register: &RegisterValue) -> Option<i128> {
    register_milli(family, register.value, register.unit)
}

/// Whether `|meter − server| > tolerance × |total|`, computed without
/// floats drifting: the tolerance is taken in parts per million.
fn out_of_tolerance(meter: i128, server: i128, total: i128, tolerance: f64) -> bool {
    // A tolerance is a small fraction; parts per million are exact enough.
    #[allow(clippy::cast_possible_truncation)]
    let ppm = (tolerance.max(0.0) * 1e6).round() as i128;
    (meter - server).abs() * 1_000_000 > ppm * total.abs()
}

#[cfg(test)]
mod tests {
    use super::super::energy::energy_by_band;
    use super::super::energy::tests::{FixedHours, at, kwh};
    use super::*;

    /// The default tolerance (`sites.tou_tolerance_percent` = 1).
    const DEFAULT_TOLERANCE: f64 = 0.01;

    fn registers(values: &[(&str, f64)]) -> BTreeMap<ObisCode, RegisterValue> {
        values
            .iter()
            .map(|(code, value)| {
                (
                    code.parse().unwrap(),
                    RegisterValue {
                        value: *value,
                        unit: Unit::KWh,
                    },
                )
            })
            .collect()
    }

    /// 10 kWh in the day band (08–20 UTC), 5 kWh at night.
    fn server() -> BandEnergy {
        let intervals = vec![
            kwh("1-1:1.29.0", at(2, 10, 0), 60, 10.0),
            kwh("1-1:1.29.0", at(2, 22, 0), 60, 5.0),
        ];
        energy_by_band(
            &intervals,
            &FixedHours {
                day_from: 8,
                day_to: 20,
            },
            at(2, 0, 0),
            at(3, 0, 0),
        )
    }

    #[test]
    fn registers_that_agree_within_one_percent_pass() {
        // day = rate 1 grew 10.1 kWh, night = rate 2 grew 4.9: 0.1 kWh off of 15 kWh total (0.67 %).
        let start = registers(&[("1-1:1.8.1", 100.0), ("1-1:1.8.2", 50.0)]);
        let end = registers(&[("1-1:1.8.1", 110.1), ("1-1:1.8.2", 54.9)]);
        let audits = audit(&start, &end, &server(), DEFAULT_TOLERANCE, None);
        assert_eq!(audits.len(), 1);
        assert_eq!(audits[0].compared, vec!["day", "night"]);
        assert!(audits[0].mismatches.is_empty());
    }

    #[test]
    fn a_shift_between_bands_beyond_the_tolerance_names_both_bands() {
        // The meter put 2 kWh of the day's energy in its night rate: 13.3 % of 15 kWh.
        let start = registers(&[("1-1:1.8.1", 100.0), ("1-1:1.8.2", 50.0)]);
        let end = registers(&[("1-1:1.8.1", 108.0), ("1-1:1.8.2", 57.0)]);
        let audits = audit(&start, &end, &server(), DEFAULT_TOLERANCE, None);
        let mismatches = &audits[0].mismatches;
        assert_eq!(mismatches.len(), 2);
        assert_eq!(
            (mismatches[0].band.as_str(), mismatches[0].meter, mismatches[0].server),
            ("day", 8_000_000, 10_000_000)
        );
        assert_eq!(mismatches[0].register.to_string(), "1-1:1.8.1");
        assert_eq!(
            (mismatches[1].band.as_str(), mismatches[1].meter, mismatches[1].server),
            ("night", 7_000_000, 5_000_000)
        );
    }

    #[test]
    fn exactly_at_the_tolerance_is_not_a_mismatch() {
        // 0.15 kWh off of 15 kWh is exactly 1 %.
        let start = registers(&[("1-1:1.8.1", 0.0)]);
        let end = registers(&[("1-1:1.8.1", 10.15)]);
        assert!(audit(&start, &end, &server(), 0.01, None)[0].mismatches.is_empty());
        let end = registers(&[("1-1:1.8.1", 10.151)]);
        assert_eq!(audit(&start, &end, &server(), 0.01, None)[0].mismatches.len(), 1);
    }

    #[test]
    fn a_register_that_rolled_over_at_the_meters_digits_grew_by_the_wrap() {
        // An A1000 at 99 999.99 kWh (7 digits, 2 decimals) rolls over to 0:
        // rate 1 went 99 995.00 → 5.10 (10.10 kWh), rate 2 50.00 → 54.90.
        let start = registers(&[("1-1:1.8.1", 99_995.0), ("1-1:1.8.2", 50.0)]);
        let end = registers(&[("1-1:1.8.1", 5.1), ("1-1:1.8.2", 54.9)]);
        let audits = audit(&start, &end, &server(), DEFAULT_TOLERANCE, Some(100_000.0));
        assert!(audits[0].mismatches.is_empty(), "{:?}", audits[0].mismatches);
        // Without the wrap point the fall is compared as it is.
        let audits = audit(&start, &end, &server(), DEFAULT_TOLERANCE, None);
        assert_eq!(audits[0].mismatches[0].meter, -99_989_900_000);
        // A fall that is no plausible wrap (too far below the top) stays a
        // fall: a meter reset shows as the mismatch it is.
        let start = registers(&[("1-1:1.8.1", 60_000.0), ("1-1:1.8.2", 50.0)]);
        let audits = audit(&start, &end, &server(), DEFAULT_TOLERANCE, Some(100_000.0));
        assert_eq!(audits[0].mismatches[0].meter, -59_994_900_000);
    }

    #[test]
    fn a_quantity_without_tariff_registers_is_not_audited() {
        let start = registers(&[("1-1:1.8.0", 0.0)]);
        let end = registers(&[("1-1:1.8.0", 15.0)]);
        assert!(audit(&start, &end, &server(), 0.01, None).is_empty());
    }
}
