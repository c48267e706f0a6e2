//! The meter's clock as a read shows it: the wall time its date and time
//! registers (Modbus) or data sets (IEC 62056-21) held.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::device::reading::Reading;
use crate::protocol::iec62056::dataset::DataSet;

/// The meter's date, read as the number YYMMDD (`date_ymd`, TH40C 0x1040).
const DATE: &str = "1-0:0.9.2";
/// The meter's time of day, read as the number hhmmss (`time_hms`, TH40C 0x1043).
const TIME: &str = "1-0:0.9.1";

/// The wall time the meter showed, when both its date and time are among
/// `readings`. Two-digit years are taken in 2000–2099.
pub(crate) fn meter_clock(readings: &[Reading]) -> Option<NaiveDateTime> {
    let find = |code: &str| {
        readings
            .iter()
            .find(|r| r.obis.to_string() == code)
            .map(|r| r.value as u32)
    };
    let (date, time) = (find(DATE)?, find(TIME)?);
    let date = NaiveDate::from_ymd_opt(2000 + (date / 10_000) as i32, date / 100 % 100, date % 100)?;
    let time = NaiveTime::from_hms_opt(time / 10_000, time / 100 % 100, time % 100)?;
    Some(date.and_time(time))
}

/// The wall time an IEC 62056-21 readout showed: its `0.9.2(YYMMDD)` and
/// `0.9.1(hhmmss)` data sets (IEC 62056-21 readouts of the A1000 and TH40C),
/// written with or without the `1-0:` prefix. Read here rather than from the
/// decoded readings, as profiles need not list the clock to store it.
pub(crate) fn readout_clock(sets: &[DataSet]) -> Option<NaiveDateTime> {
    let find = |code: &str| {
        sets.iter()
            .find(|set| set.address == code || set.address.rsplit_once(':').is_some_and(|(_, c)| c == code))
            .and_then(|set| set.values.first())
            .map(|value| value.value.as_str())
    };
    let date = NaiveDate::parse_from_str(&format!("20{}", find("0.9.2")?), "%Y%m%d").ok()?;
    let time = NaiveTime::parse_from_str(find("0.9.1")?, "%H%M%S").ok()?;
    Some(date.and_time(time))
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::domain::quality::Quality;
    use crate::domain::unit::Unit;
    use crate::protocol::iec62056::dataset::DataValue;

    fn reading(code: &str, value: f64) -> Reading {
        Reading {
            obis: code.parse().unwrap(),
            value,
            unit: Unit::None,
            read_at: DateTime::UNIX_EPOCH,
            captured_at: None,
            quality: Quality::default(),
        }
    }

    #[test]
    fn date_and_time_numbers_make_the_wall_time() {
        let readings = [reading(DATE, 261123.0), reading(TIME, 75_904.0)];
        let expected = NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(7, 59, 4)
            .unwrap();
        assert_eq!(meter_clock(&readings), Some(expected));
    }

    #[test]
    fn no_clock_without_both_parts() {
        assert_eq!(meter_clock(&[reading(TIME, 75_904.0)]), None);
        assert_eq!(meter_clock(&[reading(DATE, 261123.0)]), None);
    }

    fn set(address: &str, value: &str) -> DataSet {
        DataSet {
            address: address.to_owned(),
            values: vec![DataValue {
                value: value.to_owned(),
                unit: None,
            }],
        }
    }

    #[test]
    fn a_readout_gives_the_wall_time_with_or_without_prefix() {
        let expected = NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(15, 30, 0)
            .unwrap();
        let sets = [set("1-0:0.9.1", "153000"), set("1-0:0.9.2", "260329")];
        assert_eq!(readout_clock(&sets), Some(expected));
        let sets = [set("0.9.2", "260329"), set("0.9.1", "153000")];
        assert_eq!(readout_clock(&sets), Some(expected));
        // A clock the meter answered ERROR for cannot be compared.
        assert_eq!(readout_clock(&[set("0.9.2", "260329"), set("0.9.1", "ERROR")]), None);
    }
}
