//! Energy per tariff band: each interval's energy split over the bands its
//! span crosses, pro rata by seconds, in exact integers.
//!
//! **The split rule (cumulative floor).** An interval of `L` seconds holding
//! `E` milli-units is taken to accumulate at a constant rate, so that by
//! second `s` of the interval `floor(E · s / L)` has accumulated. A piece
//! `[a, b)` of the interval (seconds from its start) gets
//! `floor(E · b / L) − floor(E · a / L)`. The pieces of an interval then sum
//! to `floor(E · L / L) − floor(0) = E` exactly, whatever the number of
//! pieces, and every piece is within one milli-unit of its exact pro-rata
//! share. Clipping an interval at the period's ends is the same rule (the
//! part outside the period is a piece that is left out), so the bands of a
//! period sum exactly to the period's total, and the totals of two
//! adjacent periods sum exactly to the total of the two together.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::quantity::{ChannelInterval, Quantity, Slice, slices};
use crate::metering::tou::BandSplit;

/// Energy per band and per quantity over a period, in milli-units (see
/// [`super::quantity::Slice`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct BandEnergy {
    /// Every band: the calendar's, in its order, then any other band a
    /// piece fell in (none with a well-formed calendar).
    pub bands: Vec<String>,
    /// Milli-units per band and quantity; a band with no energy has an
    /// empty map, a quantity the device has is present in every band.
    pub by_band: BTreeMap<String, BTreeMap<Quantity, i128>>,
    /// Milli-units per quantity over the whole period.
    pub total: BTreeMap<Quantity, i128>,
}

impl BandEnergy {
    /// The energy of `quantity` in `band`, 0 when there is none.
    pub(crate) fn get(&self, band: &str, quantity: &Quantity) -> i128 {
        self.by_band
            .get(band)
            .and_then(|energies| energies.get(quantity))
            .copied()
            .unwrap_or(0)
    }

    /// The quantity with value group C `number`, if the device has it.
    pub(crate) fn quantity(&self, number: u8) -> Option<&Quantity> {
        self.total.keys().find(|quantity| quantity.number() == number)
    }
}

/// What has accumulated of `milli` after `upto` of `length` seconds:
/// `floor(milli · upto / length)`, exact (the rule of the module doc).
pub(crate) fn accumulated(milli: i128, length: i64, upto: i64) -> i128 {
    if length <= 0 {
        return milli;
    }
    (milli * i128::from(upto)).div_euclid(i128::from(length))
}

/// The part of a slice inside `[from, to)` by the cumulative-floor rule.
pub(crate) fn share_between(slice: &Slice, from: DateTime<Utc>, to: DateTime<Utc>) -> i128 {
    let from = from.max(slice.start).min(slice.end);
    let to = to.min(slice.end).max(from);
    let length = (slice.end - slice.start).num_seconds();
    accumulated(slice.milli, length, (to - slice.start).num_seconds())
        - accumulated(slice.milli, length, (from - slice.start).num_seconds())
}

/// Energy per band and quantity in `[from, to)`, from a device's intervals
/// (the newest version of each; any channels, see
/// [`super::quantity`] for which count) under a band split. An interval
/// that straddles a band switch or the period's ends is split pro rata by
/// seconds (module doc).
pub(crate) fn energy_by_band(
    intervals: &[ChannelInterval],
    split: &dyn BandSplit,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BandEnergy {
    energy_of_slices(&slices(intervals).0, split, from, to)
}

/// [`energy_by_band`] over intervals already turned into slices.
pub(crate) fn energy_of_slices(
    slices: &[Slice],
    split: &dyn BandSplit,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BandEnergy {
    let mut energy = BandEnergy {
        bands: split.bands(),
        ..BandEnergy::default()
    };
    for band in &energy.bands {
        energy.by_band.insert(band.clone(), BTreeMap::new());
    }
    for slice in slices {
        let clip_from = slice.start.max(from);
        let clip_to = slice.end.min(to);
        if clip_from >= clip_to {
            continue;
        }
        *energy.total.entry(slice.quantity.clone()).or_insert(0) += share_between(slice, clip_from, clip_to);
        for piece in split.pieces(clip_from, clip_to) {
            if !energy.by_band.contains_key(&piece.band) {
                energy.bands.push(piece.band.clone());
            }
            let part = share_between(slice, piece.from, piece.to);
            *energy
                .by_band
                .entry(piece.band)
                .or_default()
                .entry(slice.quantity.clone())
                .or_insert(0) += part;
        }
    }
    // Every quantity the device has appears in every band, 0 where none.
    for quantity in energy.total.keys() {
        for energies in energy.by_band.values_mut() {
            energies.entry(quantity.clone()).or_insert(0);
        }
    }
    energy
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{Duration, TimeZone, Timelike};
    use proptest::prelude::*;

    use super::*;
    use crate::domain::quality::Quality;
    use crate::domain::source::IntervalSource;
    use crate::domain::unit::Unit;
    use crate::metering::tou::Piece;

    /// A day split at fixed UTC hours: `"day"` from `day_from` to
    /// `day_to` o'clock, `"night"` otherwise.
    pub(crate) struct FixedHours {
        pub day_from: u32,
        pub day_to: u32,
    }

    impl FixedHours {
        fn band_at(&self, at: DateTime<Utc>) -> &'static str {
            if (self.day_from..self.day_to).contains(&at.hour()) {
                "day"
            } else {
                "night"
            }
        }
    }

    impl BandSplit for FixedHours {
        fn pieces(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Piece> {
            let mut pieces = Vec::new();
            let mut at = from;
            while at < to {
                let next_hour = at.with_minute(0).unwrap().with_second(0).unwrap() + Duration::hours(1);
                let end = next_hour.min(to);
                let band = self.band_at(at).to_owned();
                pieces.push(Piece {
                    band,
                    from: at,
                    to: end,
                });
                at = end;
            }
            pieces
        }

        fn bands(&self) -> Vec<String> {
            vec!["day".into(), "night".into()]
        }
    }

    pub(crate) fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
    }

    pub(crate) fn kwh(obis: &str, start: DateTime<Utc>, minutes: u32, value: f64) -> ChannelInterval {
        ChannelInterval {
            obis: obis.parse().unwrap(),
            start,
            minutes,
            value,
            unit: Unit::KWh,
            quality: Quality::GOOD,
            source: IntervalSource::Meter,
        }
    }

    fn import() -> Quantity {
        super::super::quantity::channel_quantity(&"1-1:1.29.0".parse().unwrap())
            .unwrap()
            .0
    }

    #[test]
    fn an_interval_across_a_switch_is_split_by_seconds() {
        // 07:50–08:20 holds 3 kWh; day starts at 08:00: 10 of 30 minutes are night.
        let split = FixedHours {
            day_from: 8,
            day_to: 20,
        };
        let energy = energy_by_band(
            &[kwh("1-1:1.29.0", at(2, 7, 50), 30, 3.0)],
            &split,
            at(2, 0, 0),
            at(3, 0, 0),
        );
        assert_eq!(energy.get("night", &import()), 1_000_000);
        assert_eq!(energy.get("day", &import()), 2_000_000);
        assert_eq!(energy.total[&import()], 3_000_000);
        assert_eq!(energy.bands, vec!["day", "night"]);
    }

    #[test]
    fn a_remainder_goes_to_the_later_piece() {
        // 1 mWh over 3 equal pieces: floor(1/3)=0, floor(2/3)=0, floor(3/3)=1.
        let slice = Slice {
            quantity: import(),
            start: at(2, 0, 0),
            end: at(2, 0, 30),
            milli: 1,
        };
        let parts: Vec<i128> = (0..3)
            .map(|i| share_between(&slice, at(2, 0, 10 * i), at(2, 0, 10 * i + 10)))
            .collect();
        assert_eq!(parts, vec![0, 0, 1]);
    }

    #[test]
    fn an_interval_straddling_the_period_counts_its_inside_part() {
        let split = FixedHours {
            day_from: 8,
            day_to: 20,
        };
        // 23:45–00:15 holds 0.6 kWh: half of it falls on the 3rd.
        let energy = energy_by_band(
            &[kwh("1-1:1.29.0", at(2, 23, 45), 30, 0.6)],
            &split,
            at(3, 0, 0),
            at(4, 0, 0),
        );
        assert_eq!(energy.total[&import()], 300_000);
        assert_eq!(energy.get("night", &import()), 300_000);
        assert_eq!(energy.get("day", &import()), 0);
    }

    proptest! {
        /// The bands of any period sum exactly to its total, and two
        /// adjacent periods to the total of both.
        #[test]
        fn bands_sum_exactly_to_the_total(
            values in proptest::collection::vec(-1_000_000.0f64..1_000_000.0, 1..60),
            minutes in prop_oneof![Just(5u32), Just(15), Just(20), Just(30), Just(45), Just(60), Just(7)],
            offset in 0i64..3600,
            cut in 0i64..(3 * 86_400),
            day_from in 0u32..24,
            length in 0u32..24,
        ) {
            let split = FixedHours { day_from, day_to: day_from + length };
            let first = at(2, 0, 0) + Duration::seconds(offset);
            let intervals: Vec<ChannelInterval> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let start = first + Duration::minutes(i64::from(minutes) * i as i64);
                    kwh("1-1:1.29.0", start, minutes, *v)
                })
                .collect();
            let from = at(2, 0, 0);
            let middle = from + Duration::seconds(cut);
            let to = at(5, 0, 0);
            let whole = energy_by_band(&intervals, &split, from, to);
            let left = energy_by_band(&intervals, &split, from, middle);
            let right = energy_by_band(&intervals, &split, middle, to);
            let quantity = import();
            for energy in [&whole, &left, &right] {
                let bands: i128 = energy.bands.iter().map(|band| energy.get(band, &quantity)).sum();
                prop_assert_eq!(bands, energy.total.get(&quantity).copied().unwrap_or(0));
            }
            let sum_of_values: i128 = slices(&intervals).0.iter().map(|s| s.milli).sum();
            prop_assert_eq!(whole.total[&quantity], sum_of_values);
            let parts = left.total.get(&quantity).copied().unwrap_or(0) + right.total.get(&quantity).copied().unwrap_or(0);
            prop_assert_eq!(parts, sum_of_values);
        }
    }
}
