//! The energy balance of the COUNTIS E43/E44, as its manual defines it
//! (COUNTIS E43/E44 manual §4.6.2, "Energy balance; definition"):
//!
//! ```text
//! kWh   = (+kWh T1) − (−kWh T1) + (+kWh T2) − (−kWh T2)
//! kvarh = (+kvarh T1) − (−kvarh T1) + (+kvarh T2) − (−kvarh T2)
//! ```
//!
//! that is, imported minus exported energy over tariffs 1 and 2 only
//! (tariffs 3 and 4, which the meter takes over Modbus, are not in it;
//! §4.6.2 and §5, "Double tariff": two tariffs via the T1/T2 input). The
//! server's T1 and T2 are the first two bands of the statement's calendar,
//! in the calendar's order. `+kWh`/`−kWh` are active import and export
//! (`1.8.0`, `2.8.0`); `+kvarh`/`−kvarh` reactive import and export
//! (`3.8.0`, `4.8.0`), or where the device records quadrants only,
//! Q1 + Q2 and Q3 + Q4 (IEC 62056-61: import reactive = Q1 + Q2).

use super::energy::BandEnergy;

/// The balance over the first two bands, in milli-units; `None` for a side
/// the device has no quantity of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnergyBalance {
    /// The bands taken as T1 and T2.
    pub bands: Vec<String>,
    /// Active, mWh.
    pub active: Option<i128>,
    /// Reactive, mvarh.
    pub reactive: Option<i128>,
}

/// The sum of the quantities with value group C in `numbers` that the
/// device has, over `bands`; `None` when it has none of them.
fn sum_of(energy: &BandEnergy, bands: &[String], numbers: &[u8]) -> Option<i128> {
    let quantities: Vec<_> = numbers.iter().filter_map(|n| energy.quantity(*n)).collect();
    if quantities.is_empty() {
        return None;
    }
    Some(
        bands
            .iter()
            .flat_map(|band| quantities.iter().map(move |q| energy.get(band, q)))
            .sum(),
    )
}

/// Imported minus exported: `None` when the device has neither side.
fn net(import: Option<i128>, export: Option<i128>) -> Option<i128> {
    match (import, export) {
        (None, None) => None,
        (import, export) => Some(import.unwrap_or(0) - export.unwrap_or(0)),
    }
}

/// The E43/E44 balance of a statement's band energies.
pub(crate) fn energy_balance(energy: &BandEnergy) -> EnergyBalance {
    let bands: Vec<String> = energy.bands.iter().take(2).cloned().collect();
    let active = net(sum_of(energy, &bands, &[1]), sum_of(energy, &bands, &[2]));
    let import_reactive = sum_of(energy, &bands, &[3]).or_else(|| sum_of(energy, &bands, &[5, 6]));
    let export_reactive = sum_of(energy, &bands, &[4]).or_else(|| sum_of(energy, &bands, &[7, 8]));
    EnergyBalance {
        bands,
        active,
        reactive: net(import_reactive, export_reactive),
    }
}

#[cfg(test)]
mod tests {
    use super::super::energy::energy_by_band;
    use super::super::energy::tests::{FixedHours, at, kwh};
    use super::*;
    use crate::domain::unit::Unit;
    use crate::metering::tou::{BandSplit, Piece};

    /// Three bands over a day in UTC: T1 06–12, T2 12–18, T3 otherwise.
    struct ThreeBands;

    impl BandSplit for ThreeBands {
        fn pieces(&self, from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> Vec<Piece> {
            let inner = FixedHours {
                day_from: 0,
                day_to: 24,
            };
            inner
                .pieces(from, to)
                .into_iter()
                .map(|piece| {
                    use chrono::Timelike;
                    let band = match piece.from.hour() {
                        6..=11 => "T1",
                        12..=17 => "T2",
                        _ => "T3",
                    };
                    Piece {
                        band: band.into(),
                        ..piece
                    }
                })
                .collect()
        }

        fn bands(&self) -> Vec<String> {
            vec!["T1".into(), "T2".into(), "T3".into()]
        }
    }

    #[test]
    fn imports_minus_exports_over_t1_and_t2_only() {
        let mut intervals = vec![
            kwh("1-1:1.8.0", at(2, 7, 0), 60, 5.0),  // T1 import
            kwh("1-1:2.8.0", at(2, 8, 0), 60, 1.5),  // T1 export
            kwh("1-1:1.8.0", at(2, 13, 0), 60, 2.0), // T2 import
            kwh("1-1:2.8.0", at(2, 14, 0), 60, 4.0), // T2 export
            kwh("1-1:1.8.0", at(2, 20, 0), 60, 9.0), // T3: not in the balance
        ];
        let mut q = |obis: &str, start, value| {
            let mut interval = kwh(obis, start, 60, value);
            interval.unit = Unit::KVarh;
            intervals.push(interval);
        };
        q("1-1:5.8.0", at(2, 7, 0), 1.0);
        q("1-1:6.8.0", at(2, 13, 0), 0.5);
        q("1-1:8.8.0", at(2, 9, 0), 0.25);
        q("1-1:7.8.0", at(2, 21, 0), 3.0);
        let energy = energy_by_band(&intervals, &ThreeBands, at(2, 0, 0), at(3, 0, 0));
        let balance = energy_balance(&energy);
        assert_eq!(balance.bands, vec!["T1", "T2"]);
        // (5 − 1.5) + (2 − 4) = 1.5 kWh; (1 + 0.5) − (0.25 + 0) = 1.25 kvarh.
        assert_eq!(balance.active, Some(1_500_000));
        assert_eq!(balance.reactive, Some(1_250_000));
    }

    #[test]
    fn no_reactive_quantity_gives_no_reactive_balance() {
        let intervals = vec![kwh("1-1:1.8.0", at(2, 7, 0), 60, 5.0)];
        let balance = energy_balance(&energy_by_band(&intervals, &ThreeBands, at(2, 0, 0), at(3, 0, 0)));
        assert_eq!((balance.active, balance.reactive), (Some(5_000_000), None));
    }
}
