//! Easter Sunday in the Gregorian calendar, from which movable feasts
//! (Easter Monday, Pentecost, …) are counted.

use chrono::NaiveDate;

/// Easter Sunday of `year` (Gregorian computus: the first Sunday after the
/// ecclesiastical full moon on or after 21 March). `None` only for years
/// chrono cannot represent.
pub(crate) fn easter_sunday(year: i32) -> Option<NaiveDate> {
    // Golden number, century corrections (solar: dropped leap days;
    // lunar: the Metonic cycle's drift), epact, then the Sunday after.
    let golden = year.rem_euclid(19);
    let century = year.div_euclid(100);
    let in_century = year.rem_euclid(100);
    let skipped_leap_days = century / 4;
    let century_rest = century % 4;
    let lunar_correction = (century + 8) / 25;
    let moon_correction = (century - lunar_correction + 1) / 3;
    let epact = (19 * golden + century - skipped_leap_days - moon_correction + 15).rem_euclid(30);
    let leap_quarters = in_century / 4;
    let leap_rest = in_century % 4;
    let to_sunday = (32 + 2 * century_rest + 2 * leap_quarters - epact - leap_rest).rem_euclid(7);
    let shift = (golden + 11 * epact + 22 * to_sunday) / 451;
    let day_from_march_22 = epact + to_sunday - 7 * shift;
    NaiveDate::from_ymd_opt(year, 3, 22)?.checked_add_days(chrono::Days::new(u64::try_from(day_from_march_22).ok()?))
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Weekday};
    use proptest::prelude::*;

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn known_easter_sundays() {
        // From printed calendars; 1818 and 2285 have the earliest possible
        // date (22 March), 1943 and 2038 the latest (25 April).
        for (year, month, day) in [
            (1818, 3, 22),
            (1943, 4, 25),
            (1961, 4, 2),
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(year), Some(date(year, month, day)), "{year}");
        }
    }

    proptest! {
        #[test]
        fn easter_is_a_sunday_between_22_march_and_25_april(year in 1583i32..5000) {
            let easter = easter_sunday(year).unwrap();
            prop_assert_eq!(easter.weekday(), Weekday::Sun);
            prop_assert!(easter >= date(year, 3, 22) && easter <= date(year, 4, 25));
        }
    }
}
