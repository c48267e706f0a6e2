//! Turns the data sets of an IEC 62056-21 readout into OBIS readings, per
//! the `[iec62056]` part of the device's profile.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::iec::{IecSettings, ValueShape, WordLevel};
use super::reading::Reading;
use crate::domain::event::EventCode;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;
use crate::protocol::iec62056::dataset::parse_value_number;
use crate::protocol::iec62056::{DataSet, DataValue};

/// A condition a status word reports as present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Stable snake_case code from the profile (`over_voltage`, `low_battery`).
    pub code: EventCode,
    /// `error` or `warning`, from the status word it came from.
    pub severity: WordLevel,
    /// The status word's code (`0-0:F.F.0`).
    pub word: ObisCode,
}

/// What one readout holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IecDecoded {
    pub readings: Vec<Reading>,
    /// Conditions set in the status words, and the words that were read (so
    /// a condition absent from a word that was read has cleared).
    pub conditions: Vec<Condition>,
    pub words_read: Vec<ObisCode>,
    /// Status words written in neither the profile's form nor any other
    /// (`0-0:F.F.1: "0000 01X1" is not 8 binary digits`): their conditions
    /// are not known, and are neither set nor cleared.
    pub unreadable_words: Vec<String>,
    /// Data sets the profile does not list that carry no value to keep
    /// (no number, no unit or one Ohmnibus does not know, an error), with
    /// the reason: left out, reported. The others are kept in `readings`.
    pub left_out: Vec<String>,
    /// Data sets the profile lists whose value cannot be taken (a number
    /// that is not one, a unit that does not convert), with the reason.
    pub invalid: Vec<String>,
    /// Data sets the meter answered `(ERROR)` or an empty value for.
    pub not_available: Vec<String>,
}

/// Decodes a readout. `meter_zone` is the zone of the meter's clock, for
/// the time stamps it writes without one.
pub fn decode_readout(settings: &IecSettings, sets: &[DataSet], read_at: DateTime<Utc>, meter_zone: Tz) -> IecDecoded {
    let mut out = IecDecoded::default();
    for set in sets {
        if set.address.is_empty() {
            continue;
        }
        let Some(code) = settings.full_code(&set.address) else {
            out.left_out.push(format!("{}: not an OBIS address", set.address));
            continue;
        };
        if let Some(word) = settings.status.iter().find(|word| word.obis == code) {
            match set.values.first().and_then(|value| word.parse(&value.value)) {
                Some(bits) => {
                    if !word.raw_only {
                        out.words_read.push(code.clone());
                        out.conditions
                            .extend(word.conditions(bits).into_iter().map(|condition| Condition {
                                code: condition,
                                severity: word.severity,
                                word: code.clone(),
                            }));
                    }
                    out.readings
                        .push(reading(code, f64::from(bits), Unit::None, read_at, None));
                }
                None => {
                    let written = set.values.first().map_or("", |value| value.value.as_str());
                    out.unreadable_words
                        .push(format!("{code}: {written:?} is not {}", word.format.describe()));
                }
            }
            continue;
        }
        let Some(entry) = settings.value_for(&code) else {
            match unlisted(set, code, read_at, meter_zone) {
                Ok(reading) => out.readings.push(reading),
                Err(reason) => out.left_out.push(format!("{}: {reason}", set.address)),
            }
            continue;
        };
        let Some(first) = set.values.first() else {
            out.not_available.push(set.address.clone());
            continue;
        };
        if first.is_error() || first.value.is_empty() {
            out.not_available.push(set.address.clone());
            continue;
        }
        let taken = match entry.shape {
            ValueShape::Time => instant(&first.value, read_at, meter_zone)
                .map(|at| reading(code, at.timestamp() as f64, Unit::Timestamp, read_at, Some(at)))
                .ok_or_else(|| format!("{:?} is not a YYMMDDhhmm or MMDDhhmm time", first.value)),
            ValueShape::Number | ValueShape::NumberWithTime => number(first, entry.unit).map(|value| {
                let captured = match entry.shape {
                    ValueShape::NumberWithTime => set
                        .values
                        .get(1)
                        .and_then(|stamp| instant(&stamp.value, read_at, meter_zone)),
                    _ => None,
                };
                reading(code, value, entry.unit, read_at, captured)
            }),
        };
        match taken {
            Ok(reading) => out.readings.push(reading),
            Err(reason) => out.invalid.push(format!("{}: {reason}", set.address)),
        }
    }
    out
}

/// A data set the profile does not list, kept under its own code in the
/// unit the meter wrote (a readout names each value and its unit), with the
/// time of a second value that is one (a maximum demand's). A number
/// without a unit is left out: it cannot be told from an identifier, a date
/// or a status word (TH40C App. A: `1-0:0.0.0` serial, `1-0:0.9.2` date),
/// which a profile lists to keep.
fn unlisted(set: &DataSet, code: ObisCode, read_at: DateTime<Utc>, meter_zone: Tz) -> Result<Reading, String> {
    let first = set
        .values
        .first()
        .filter(|first| !first.is_error() && !first.value.is_empty())
        .ok_or("not listed, no value")?;
    let value = numeric(first).ok_or_else(|| format!("not listed, {:?} is not a number", first.value))?;
    let text = first.unit.as_deref().ok_or("not listed, no unit")?;
    let unit = known_unit(text).ok_or_else(|| format!("not listed, unit {text:?} is not one Ohmnibus knows"))?;
    let captured = set
        .values
        .get(1)
        .and_then(|stamp| instant(&stamp.value, read_at, meter_zone));
    Ok(reading(code, value, unit, read_at, captured))
}

/// The unit of measure a meter wrote, as Ohmnibus names it: the same
/// prefix and base, in any case (`kVArh` is `kvarh`). Never an instant or
/// a date: those are not written as units.
pub(super) fn known_unit(text: &str) -> Option<Unit> {
    Unit::ALL
        .iter()
        .copied()
        .filter(|unit| !matches!(unit, Unit::None | Unit::Date | Unit::Time | Unit::Timestamp))
        .find(|unit| unit_factor(text, *unit) == Some(1.0))
}

fn reading(
    obis: ObisCode,
    value: f64,
    unit: Unit,
    read_at: DateTime<Utc>,
    captured_at: Option<DateTime<Utc>>,
) -> Reading {
    Reading {
        obis,
        value,
        unit,
        read_at,
        captured_at,
        quality: Quality::GOOD,
    }
}

/// The value as a number, the spaces a firmware pads it with left out
/// (`(   3)`, as instants are read).
fn numeric(value: &DataValue) -> Option<f64> {
    parse_value_number(value.value.trim()).filter(|n| n.is_finite())
}

/// The value in the profile's unit: the meter's unit may differ by a
/// decimal prefix (`Wh` for `kWh`), and may be left out.
fn number(value: &DataValue, want: Unit) -> Result<f64, String> {
    let number = numeric(value).ok_or_else(|| format!("{:?} is not a number", value.value))?;
    match value.unit.as_deref() {
        None => Ok(number),
        Some(text) => {
            let factor = unit_factor(text, want).ok_or_else(|| format!("unit {text:?} does not convert to {want}"))?;
            Ok(number * factor)
        }
    }
}

/// The factor from a unit as a meter writes it to `want`, if they measure
/// the same thing. Meters vary in case (`kVArh`, `KWH`); the prefix does
/// not: `M` is mega and `m` would be milli, so prefixes are matched exactly.
pub(super) fn unit_factor(text: &str, want: Unit) -> Option<f64> {
    if text == want.as_str() {
        return Some(1.0);
    }
    let (prefix, base) = split_prefix(text);
    let (want_prefix, want_base) = split_prefix(want.as_str());
    if !base.eq_ignore_ascii_case(want_base) || base.is_empty() {
        return None;
    }
    Some(prefix / want_prefix)
}

fn split_prefix(unit: &str) -> (f64, &str) {
    // Bases that begin with a prefix letter of their own.
    for base in ["var", "varh", "VA", "VAh", "V", "A", "Hz", "W", "Wh"] {
        if unit.eq_ignore_ascii_case(base) {
            return (1.0, unit);
        }
    }
    match unit.chars().next() {
        Some('k' | 'K') => (1e3, &unit[1..]),
        Some('M') => (1e6, &unit[1..]),
        _ => (1.0, unit),
    }
}

/// An instant the meter wrote in its own zone: `YYMMDDhhmm[ss]`, or
/// `MMDDhhmm` without a year (TH40C and A1000 demand and event times),
/// which is the latest such instant not after the read.
pub fn instant(text: &str, read_at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let local = match text.len() {
        10 | 12 => crate::protocol::iec62056::dataset::parse_timestamp(text)?,
        8 => {
            let field = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
            let (month, day, hour, minute) = (field(0..2)?, field(2..4)?, field(4..6)?, field(6..8)?);
            let now_year = read_at.with_timezone(&zone).year();
            let at = |year: i32| -> Option<NaiveDateTime> {
                NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, 0)
            };
            let this_year = at(now_year).filter(|t| localize(*t, zone).is_some_and(|utc| utc <= read_at));
            match this_year {
                Some(t) => t,
                None => at(now_year - 1).or_else(|| at(now_year - 4))?,
            }
        }
        _ => return None,
    };
    localize(local, zone)
}

/// A local time of the meter's zone in UTC; in the autumn's repeated hour
/// the earlier instant, in the spring's missing hour none.
fn localize(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(&local)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::device::registry::ProfileSet;
    use crate::protocol::iec62056::parse_data_sets;

    /// The `[iec62056]` section of shipped profile `name`.
    pub(in crate::device) fn shipped_iec(name: &str) -> IecSettings {
        ProfileSet::builtin()
            .get(name)
            .unwrap()
            .iec62056
            .clone()
            .unwrap_or_else(|| panic!("{name} is read over IEC 62056-21"))
    }

    fn a1000() -> IecSettings {
        shipped_iec("a1000")
    }

    /// The value decoded under `code`, if one was.
    pub(in crate::device) fn value(decoded: &IecDecoded, code: &str) -> Option<f64> {
        decoded
            .readings
            .iter()
            .find(|r| r.obis.to_string() == code)
            .map(|r| r.value)
    }

    #[test]
    fn a_readout_becomes_obis_readings_in_the_profiles_units() {
        let zone: Tz = "Europe/Rome".parse().unwrap();
        let read_at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let text = "1.8.0(012345.67*kWh)\r\n\
                    1-1:2.8.0(0001500*Wh)\r\n\
                    1-1:1.8.0*101(011000.00*kWh)\r\n\
                    1-1:1.8.0*117(000001.00*kWh)\r\n\
                    1-1:1.6.0(0012.3456*kW)(11221530)\r\n\
                    1-1:5.8.0(ERROR)\r\n\
                    1-1:6.8.0(12.5*m3)\r\n\
                    C.1.0(12345678)\r\n\
                    !\r\n";
        let sets = parse_data_sets(text).unwrap();
        let decoded = decode_readout(&a1000(), &sets, read_at, zone);
        // Reduced address: the profile's groups A-B.
        assert_eq!(value(&decoded, "1-1:1.8.0"), Some(12345.67));
        // 1500 Wh = 1.5 kWh.
        assert_eq!(value(&decoded, "1-1:2.8.0"), Some(1.5));
        assert_eq!(value(&decoded, "1-1:1.8.0*101"), Some(11000.0));
        // Sixteen billing sets: *101..*116; *117 is not one of them, so it
        // is kept as the meter wrote it.
        assert_eq!(value(&decoded, "1-1:1.8.0*117"), Some(1.0));
        // The serial number carries no unit.
        assert_eq!(decoded.left_out, vec!["C.1.0: not listed, no unit".to_owned()]);
        assert_eq!(decoded.not_available, vec!["1-1:5.8.0".to_owned()]);
        assert_eq!(decoded.invalid.len(), 1, "{:?}", decoded.invalid);
        assert!(decoded.invalid[0].starts_with("1-1:6.8.0: unit \"m3\""));
        // The demand's time: 22 November 15:30 in Rome (UTC+1) is 14:30 UTC.
        let demand = decoded
            .readings
            .iter()
            .find(|r| r.obis.to_string() == "1-1:1.6.0")
            .unwrap();
        assert_eq!(demand.value, 12.3456);
        assert_eq!(
            demand.captured_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 22, 14, 30, 0).unwrap())
        );
    }

    #[test]
    fn a_firmwares_reduced_addresses_and_unlisted_values_are_kept() {
        let zone: Tz = "Europe/Rome".parse().unwrap();
        let read_at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        // An A1000 that writes every address reduced and prints phase
        // values its profile does not list (A1000 App. A lists neither).
        let text = "0.0.0(00012345)\r\n\
                    0.9.1(110000)\r\n\
                    0.9.2(261123)\r\n\
                    C.1.0(12345678)\r\n\
                    F.F(00000000)\r\n\
                    1.8.0(012345.67*kWh)\r\n\
                    0.1.0(12)\r\n\
                    0.1.2*101(2611010000)\r\n\
                    0.1.2*102(2610010000)\r\n\
                    32.7.0(230.1*V)\r\n\
                    31.7.0(5.02*A)\r\n\
                    14.7.0(50.01*Hz)\r\n\
                    3.6.0(0001.234*kVAr)(11221530)\r\n\
                    21.7.0(ERROR)\r\n\
                    33.7.0(0.98)\r\n\
                    96.6.3(3.62*VDC)\r\n\
                    0.2.0(V1.05)\r\n\
                    !\r\n";
        let sets = parse_data_sets(text).unwrap();
        let decoded = decode_readout(&a1000(), &sets, read_at, zone);
        let stored: Vec<(String, f64, &str)> = decoded
            .readings
            .iter()
            .map(|r| (r.obis.to_string(), r.value, r.unit.as_str()))
            .collect();
        let expected = [
            // ERR2 read as F.F.0, all bits clear.
            ("0-0:F.F.0", 0.0, ""),
            ("1-1:1.8.0", 12345.67, "kWh"),
            // Reset count and the times of the last two resets, as the
            // profile lists them (0-0:0.1.0, 0-0:0.1.2 with *101..*116):
            // 1 November 00:00 in Rome (UTC+1) is 31 October 23:00 UTC,
            // 1 October 00:00 (UTC+2) is 30 September 22:00 UTC.
            ("0-0:0.1.0", 12.0, ""),
            ("0-0:0.1.2*101", 1_793_487_600.0, "timestamp"),
            ("0-0:0.1.2*102", 1_790_805_600.0, "timestamp"),
            // Not listed, kept under their codes in the meter's units.
            ("1-1:32.7.0", 230.1, "V"),
            ("1-1:31.7.0", 5.02, "A"),
            ("1-1:14.7.0", 50.01, "Hz"),
            ("1-1:3.6.0", 1.234, "kvar"),
        ];
        let expected: Vec<(String, f64, &str)> = expected
            .iter()
            .map(|(code, value, unit)| ((*code).to_owned(), *value, *unit))
            .collect();
        assert_eq!(stored, expected);
        assert_eq!(decoded.words_read, vec!["0-0:F.F.0".parse::<ObisCode>().unwrap()]);
        let reset = &decoded.readings[3];
        assert_eq!(
            reset.captured_at,
            Some(Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap())
        );
        // The unlisted demand keeps its time: 22 November 15:30 in Rome.
        assert_eq!(
            decoded.readings[8].captured_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 22, 14, 30, 0).unwrap())
        );
        assert_eq!(
            decoded.left_out,
            vec![
                "0.0.0: not listed, no unit",
                "0.9.1: not listed, no unit",
                "0.9.2: not listed, no unit",
                "C.1.0: not listed, no unit",
                "21.7.0: not listed, no value",
                "33.7.0: not listed, no unit",
                "96.6.3: not listed, unit \"VDC\" is not one Ohmnibus knows",
                "0.2.0: not listed, \"V1.05\" is not a number",
            ]
        );
        assert!(decoded.invalid.is_empty(), "{:?}", decoded.invalid);
        assert!(decoded.not_available.is_empty(), "{:?}", decoded.not_available);
    }

    #[test]
    fn status_words_name_their_conditions() {
        let read_at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        // A1000 manual, App. B: "if Missing Voltage and Over Voltage,
        // Display 0000 0101": bits 0 and 2 of ERR1.
        let sets = parse_data_sets("F.F.1(00000101)\r\nF.F.0(01000000)\r\n!\r\n").unwrap();
        let decoded = decode_readout(&a1000(), &sets, read_at, Tz::UTC);
        let codes: Vec<(&str, &str)> = decoded
            .conditions
            .iter()
            .map(|c| (c.code.as_str(), c.severity.as_str()))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("over_voltage", "warning"),
                ("phase_voltage_loss", "warning"),
                ("low_battery", "error")
            ]
        );
        assert_eq!(decoded.words_read.len(), 2);
        assert_eq!(value(&decoded, "0-0:F.F.1"), Some(5.0));
    }

    #[test]
    fn a_status_word_in_neither_form_is_reported_not_guessed() {
        let read_at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        // ERR1 with the manual's own spacing ("0000 0101") reads; ERR2
        // written in hex ("4C") is not 8 binary digits: not read as hex, not
        // read at all, and its conditions are neither set nor cleared.
        let sets = parse_data_sets("F.F.1(0000 0101)\r\nF.F.0(4C)\r\n!\r\n").unwrap();
        let decoded = decode_readout(&a1000(), &sets, read_at, Tz::UTC);
        let codes: Vec<&str> = decoded.conditions.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, vec!["over_voltage", "phase_voltage_loss"]);
        let read: Vec<String> = decoded.words_read.iter().map(ToString::to_string).collect();
        assert_eq!(read, vec!["0-0:F.F.1"]);
        assert_eq!(
            decoded.unreadable_words,
            vec!["0-0:F.F.0: \"4C\" is not binary digits".to_owned()]
        );
        assert_eq!(value(&decoded, "0-0:F.F.0"), None);
    }

    #[test]
    fn a_time_without_year_is_the_latest_one_not_after_the_read() {
        let read_at = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
        // 20 December is last year's; 4 January is this year's.
        assert_eq!(
            instant("12201200", read_at, Tz::UTC),
            Some(Utc.with_ymd_and_hms(2025, 12, 20, 12, 0, 0).unwrap())
        );
        assert_eq!(
            instant("01042300", read_at, Tz::UTC),
            Some(Utc.with_ymd_and_hms(2026, 1, 4, 23, 0, 0).unwrap())
        );
        assert_eq!(
            instant("2601042300", read_at, Tz::UTC),
            Some(Utc.with_ymd_and_hms(2026, 1, 4, 23, 0, 0).unwrap())
        );
        assert_eq!(instant("13011200", read_at, Tz::UTC), None);
        assert_eq!(instant("0104230", read_at, Tz::UTC), None);
    }

    #[test]
    fn units_convert_by_prefix_only_within_one_quantity() {
        assert_eq!(unit_factor("kWh", Unit::KWh), Some(1.0));
        assert_eq!(unit_factor("Wh", Unit::KWh), Some(0.001));
        assert_eq!(unit_factor("MWh", Unit::KWh), Some(1000.0));
        assert_eq!(unit_factor("kVArh", Unit::KVarh), Some(1.0));
        assert_eq!(unit_factor("KWH", Unit::KWh), Some(1.0));
        assert_eq!(unit_factor("kW", Unit::KWh), None);
        assert_eq!(unit_factor("kvarh", Unit::KWh), None);
        assert_eq!(unit_factor("V", Unit::V), Some(1.0));
        assert_eq!(unit_factor("kV", Unit::V), Some(1000.0));
    }

    #[test]
    fn a_meters_unit_is_known_by_prefix_and_base_in_any_case() {
        assert_eq!(known_unit("kWh"), Some(Unit::KWh));
        assert_eq!(known_unit("KWH"), Some(Unit::KWh));
        assert_eq!(known_unit("Wh"), Some(Unit::Wh));
        assert_eq!(known_unit("MWh"), Some(Unit::MWh));
        assert_eq!(known_unit("kVArh"), Some(Unit::KVarh));
        assert_eq!(known_unit("V"), Some(Unit::V));
        assert_eq!(known_unit("m3"), Some(Unit::CubicMetre));
        // Milli is no prefix Ohmnibus keeps, and not mega.
        assert_eq!(known_unit("mWh"), None);
        assert_eq!(known_unit("h"), None);
        assert_eq!(known_unit("timestamp"), None);
        assert_eq!(known_unit("YYMMDD"), None);
    }
}
