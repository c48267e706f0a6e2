//! Turns the words a device answered into OBIS readings, per its profile.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::profile::{Block, Profile};
use super::reading::Reading;
use super::value_type::ValueType;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;

/// What one poll's answers hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedRegisters {
    pub readings: Vec<Reading>,
    /// Registers whose words the type cannot hold (a NaN float, month 13):
    /// garbled, by register name.
    pub invalid: Vec<String>,
    /// Registers the device says it has no value for (its "not available"
    /// pattern, for profiles with `modbus.not_available_sentinels`), by
    /// register name. Normal for a device, not a fault.
    pub not_available: Vec<String>,
}

/// Decodes the answers to one poll's blocks: [`decode`] without the
/// not-available list. Returns the readings and the garbled registers.
pub fn decode_blocks(
    profile: &Profile,
    answers: &[(&Block, &[u16])],
    read_at: DateTime<Utc>,
    meter_zone: Tz,
) -> (Vec<Reading>, Vec<String>) {
    let decoded = decode(profile, answers, read_at, meter_zone);
    (decoded.readings, decoded.invalid)
}

/// Decodes the answers to one poll's blocks. `answers` pairs each block with
/// the words read for it. `meter_zone` is the zone the meter's clock runs in,
/// used for the time stamps it reports without a zone (demand times).
///
/// A value the type cannot hold is left out and listed as invalid, and a
/// "not available" pattern is left out and listed as such, so neither ever
/// becomes a number in the database.
pub fn decode(
    profile: &Profile,
    answers: &[(&Block, &[u16])],
    read_at: DateTime<Utc>,
    meter_zone: Tz,
) -> DecodedRegisters {
    let mut readings = Vec::new();
    let mut invalid = Vec::new();
    let mut not_available = Vec::new();
    let mut month_days: HashMap<ObisCode, u16> = HashMap::new();
    let mut hour_minutes: HashMap<ObisCode, u16> = HashMap::new();
    let mut occurrences: HashMap<ObisCode, u64> = HashMap::new();
    for (block, words) in answers {
        for &index in &block.registers {
            let register = &profile.registers[index];
            let offset = usize::from(register.address - block.start);
            let width = usize::from(register.value_type.width());
            let Some(slice) = words.get(offset..offset + width) else {
                invalid.push(register.name.clone());
                continue;
            };
            let order = profile.word_order(register);
            if profile.modbus.not_available_sentinels && register.value_type.is_not_available(slice, order) {
                not_available.push(register.name.clone());
                continue;
            }
            let Some(raw) = register.value_type.decode(slice, order) else {
                invalid.push(register.name.clone());
                continue;
            };
            match register.value_type {
                ValueType::Mmdd => {
                    month_days.insert(register.obis.clone(), raw as u16);
                }
                ValueType::Hhmm => {
                    hour_minutes.insert(register.obis.clone(), raw as u16);
                }
                ValueType::Ymdhms => {
                    occurrences.insert(register.obis.clone(), raw as u64);
                }
                _ => {
                    let value = scaled(raw, register.scale);
                    let reading = |obis: &ObisCode, value: f64| Reading {
                        obis: obis.clone(),
                        value,
                        unit: register.unit,
                        read_at,
                        captured_at: None,
                        quality: Quality::GOOD,
                    };
                    match &register.obis_negative {
                        Some(negative) => {
                            readings.push(reading(&register.obis, value.max(0.0)));
                            readings.push(reading(negative, (-value).max(0.0)));
                        }
                        None => readings.push(reading(&register.obis, value)),
                    }
                }
            }
        }
    }
    for reading in &mut readings {
        if let (Some(&mmdd), Some(&hhmm)) = (month_days.get(&reading.obis), hour_minutes.get(&reading.obis)) {
            reading.captured_at = last_occurrence(mmdd, hhmm, read_at, meter_zone);
        }
        if let Some(&number) = occurrences.get(&reading.obis) {
            reading.captured_at = occurred_at(number, meter_zone);
        }
    }
    DecodedRegisters {
        readings,
        invalid,
        not_available,
    }
}

/// The latest instant at or before `now` (plus a day of clock slack) whose
/// local month, day, hour and minute are the given ones. MMDD 0000 means the
/// meter has recorded no demand yet.
fn last_occurrence(mmdd: u16, hhmm: u16, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
    let (month, day) = (u32::from(mmdd / 100), u32::from(mmdd % 100));
    let time = NaiveTime::from_hms_opt(u32::from(hhmm / 100), u32::from(hhmm % 100), 0)?;
    let limit = now + chrono::Duration::days(1);
    let this_year = now.with_timezone(&zone).year();
    (this_year - 4..=this_year + 1)
        .rev()
        .filter_map(|year| NaiveDate::from_ymd_opt(year, month, day))
        .filter_map(|date| zone.from_local_datetime(&date.and_time(time)).earliest())
        .map(|local| local.with_timezone(&Utc))
        .find(|instant| *instant <= limit)
}

/// `raw × scale`, as the meter means it: a scale of 0.1, 0.01, … divides
/// by its whole reciprocal, so 5005 × 0.01 is 50.05 and not
/// 50.050000000000004 (0.01 has no exact binary form; 100 has).
fn scaled(raw: f64, scale: f64) -> f64 {
    let reciprocal = 1.0 / scale;
    if scale.abs() < 1.0 && (reciprocal - reciprocal.round()).abs() < 1e-9 {
        raw / reciprocal.round()
    } else {
        raw * scale
    }
}

/// The instant of a YYYYMMDDhhmmss number (a [`ValueType::Ymdhms`] time)
/// read in the meter's zone; 0 (no time yet) and a local time that does not
/// exist (a spring-forward gap) give none. A time in the autumn's repeated
/// hour is taken as its first occurrence.
fn occurred_at(number: u64, zone: Tz) -> Option<DateTime<Utc>> {
    let part = |divisor: u64| u32::try_from(number / divisor % 100).ok();
    let year = i32::try_from(number / 10_000_000_000).ok()?;
    let date = NaiveDate::from_ymd_opt(year, part(100_000_000)?, part(1_000_000)?)?;
    let time = NaiveTime::from_hms_opt(part(10_000)?, part(100)?, part(1)?)?;
    zone.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|local| local.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::register_group::RegisterGroup;
    use crate::device::registry::ProfileSet;

    fn th40c() -> std::sync::Arc<Profile> {
        ProfileSet::builtin().get("th40c").unwrap()
    }

    #[test]
    fn decodes_the_manual_example_through_the_profile() {
        let profile = th40c();
        let blocks = profile.blocks(RegisterGroup::Energy);
        let block = blocks.iter().find(|b| b.start == 0x8010).unwrap();
        let mut words = vec![0u16; usize::from(block.count)];
        words[0] = 0x3EC7;
        words[1] = 0xAE14;
        let now = Utc::now();
        let (readings, invalid) = decode_blocks(&profile, &[(block, &words)], now, Tz::UTC);
        assert!(invalid.is_empty());
        let total = readings.iter().find(|r| r.obis.to_string() == "1-1:1.8.0").unwrap();
        assert!((total.value - 0.39).abs() < 1e-6);
        assert_eq!(total.unit.as_str(), "kWh");
    }

    #[test]
    fn signed_power_splits_into_import_and_export() {
        let profile = th40c();
        let blocks = profile.blocks(RegisterGroup::Realtime);
        let block = blocks.iter().find(|b| b.start == 0xA630).unwrap();
        let mut words = Vec::new();
        for value in [-3.5f32, 1.0, -2.0, -2.5] {
            words.extend(ValueType::F32.encode(f64::from(value), profile.modbus.word_order));
        }
        let (readings, _) = decode_blocks(&profile, &[(block, &words)], Utc::now(), Tz::UTC);
        let value = |code: &str| readings.iter().find(|r| r.obis.to_string() == code).unwrap().value;
        assert_eq!(value("1-1:1.7.0"), 0.0);
        assert_eq!(value("1-1:2.7.0"), 3.5);
        assert_eq!(value("1-1:21.7.0"), 1.0);
        assert_eq!(value("1-1:22.7.0"), 0.0);
    }

    #[test]
    fn demand_time_stamps_attach_to_the_demand_reading() {
        let profile = th40c();
        let blocks = profile.blocks(RegisterGroup::Energy);
        let demand = blocks.iter().find(|b| b.start == 0x9010).unwrap();
        let stamps = blocks.iter().find(|b| b.start == 0xA010).unwrap();
        let mut demand_words = vec![0u16; usize::from(demand.count)];
        demand_words[..2].copy_from_slice(&ValueType::F32.encode(12.5, profile.modbus.word_order));
        let mut stamp_words = vec![0u16; usize::from(stamps.count)];
        stamp_words[0] = 1221; // 21 December
        stamp_words[1] = 1830; // 18:30
        // Read on 5 January 2027 in Rome: the demand happened last December.
        let now = Utc.with_ymd_and_hms(2027, 1, 5, 9, 0, 0).unwrap();
        let zone: Tz = "Europe/Rome".parse().unwrap();
        let (readings, _) = decode_blocks(&profile, &[(demand, &demand_words), (stamps, &stamp_words)], now, zone);
        let reading = readings.iter().find(|r| r.obis.to_string() == "1-1:1.6.0").unwrap();
        assert_eq!(reading.value, 12.5);
        assert_eq!(
            reading.captured_at,
            Some(Utc.with_ymd_and_hms(2026, 12, 21, 17, 30, 0).unwrap())
        );
    }

    /// TH40C App. G, 0x1115-0x1161: integer maxima with implied decimals
    /// (* one, † three, ‡ two), each followed by YEAR, MONTH, DAY, HOUR,
    /// MIN, SEC of its occurrence in the meter's local time.
    #[test]
    fn statistics_carry_their_six_register_time() {
        let profile = th40c();
        let blocks = profile.blocks(RegisterGroup::Energy);
        let block = blocks.iter().find(|b| b.start == 0x1115).unwrap();
        #[rustfmt::skip]
        let words: [u16; 77] = [
            2351, 2026, 11, 19, 14, 5, 30,   // L1 voltage 235.1 V (*)
            2339, 26, 11, 18, 9, 0, 0,       // L2 233.9 V, two-digit year
            2344, 0, 0, 0, 0, 0, 0,          // L3 234.4 V, no time yet
            12_345, 2026, 7, 1, 12, 0, 59,   // L1 current 12.345 A (†), summer time
            0, 2026, 11, 2, 0, 0, 0,         // L2 0.000 A
            65_535, 2026, 11, 2, 23, 59, 59, // L3 65.535 A, the register's top
            0xF830, 2026, 11, 3, 6, 7, 8,    // P -2.000 kW (i16 †)
            4_321, 2026, 11, 4, 1, 2, 3,     // Q 4.321 kvar
            0x7FFF, 2026, 11, 5, 1, 2, 3,    // S 32.767 kVA
            0xFCAE, 2026, 11, 6, 1, 2, 3,    // PF -0.850
            5_004, 2026, 11, 7, 1, 2, 3,     // 50.04 Hz (‡)
        ];
        let zone: Tz = "Europe/Rome".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let decoded = decode(&profile, &[(block, &words)], now, zone);
        assert!(decoded.invalid.is_empty(), "{:?}", decoded.invalid);
        let find = |code: &str| {
            decoded
                .readings
                .iter()
                .find(|r| r.obis.to_string() == code)
                .unwrap_or_else(|| panic!("{code}"))
        };
        let utc = |m, d, h, min, s| Some(Utc.with_ymd_and_hms(2026, m, d, h, min, s).unwrap());
        // (code, value, unit, capture time): Rome is UTC+1 in November, +2 in July.
        let expected = [
            ("1-1:32.6.0", 235.1, "V", utc(11, 19, 13, 5, 30)),
            ("1-1:52.6.0", 233.9, "V", utc(11, 18, 8, 0, 0)),
            ("1-1:72.6.0", 234.4, "V", None),
            ("1-1:31.6.0", 12.345, "A", utc(7, 1, 10, 0, 59)),
            ("1-1:51.6.0", 0.0, "A", utc(11, 1, 23, 0, 0)),
            ("1-1:71.6.0", 65.535, "A", utc(11, 2, 22, 59, 59)),
            ("1-1:1.16.0", -2.0, "kW", utc(11, 3, 5, 7, 8)),
            ("1-1:3.16.0", 4.321, "kvar", utc(11, 4, 0, 2, 3)),
            ("1-1:9.16.0", 32.767, "kVA", utc(11, 5, 0, 2, 3)),
            ("1-1:13.6.0", -0.85, "", utc(11, 6, 0, 2, 3)),
            ("1-1:14.6.0", 50.04, "Hz", utc(11, 7, 0, 2, 3)),
        ];
        for (code, value, unit, captured_at) in expected {
            let reading = find(code);
            assert!((reading.value - value).abs() < 1e-9, "{code}: {}", reading.value);
            assert_eq!(reading.unit.as_str(), unit, "{code}");
            assert_eq!(reading.captured_at, captured_at, "{code}");
        }
        assert_eq!(decoded.readings.len(), 11, "the times are no readings of their own");

        // A month 13 in a time: that time is garbled, the value stays.
        let mut garbled = words;
        garbled[2] = 13;
        let decoded = decode(&profile, &[(block, &garbled)], now, zone);
        assert_eq!(decoded.invalid, vec!["Occur time of max voltage (phase A)".to_owned()]);
    }

    #[test]
    fn a_decimal_scale_gives_the_decimal_the_meter_means() {
        assert_eq!(scaled(5005.0, 0.01), 50.05);
        assert_eq!(scaled(2351.0, 0.1), 235.1);
        assert_eq!(scaled(-2000.0, 0.001), -2.0);
        assert_eq!(scaled(3.0, 10.0), 30.0);
        assert_eq!(scaled(3.0, 0.3), 3.0 * 0.3);
        assert_ne!(5005.0 * 0.01, 50.05, "the product alone would not be");
    }

    #[test]
    fn not_available_patterns_are_left_out_and_named() {
        let profile = ProfileSet::builtin().get("countis-e43").unwrap();
        assert!(profile.modbus.not_available_sentinels);
        let blocks = profile.blocks(RegisterGroup::Realtime);
        let block = blocks.iter().find(|b| b.start == 0xC552).unwrap();
        let mut words = vec![0u16; usize::from(block.count)];
        let offset = |address: u16| usize::from(address - 0xC552);
        // U12 = 400.00 V; In not available (u32); ΣP not available (s32);
        // ΣQ = -1 (0xFFFFFFFF is a value for a signed register: -10 var).
        words[offset(0xC552)..offset(0xC552) + 2].copy_from_slice(&[0x0000, 40_000]);
        words[offset(0xC566)..offset(0xC566) + 2].copy_from_slice(&[0xFFFF, 0xFFFF]);
        words[offset(0xC568)..offset(0xC568) + 2].copy_from_slice(&[0x7FFF, 0xFFFF]);
        words[offset(0xC56A)..offset(0xC56A) + 2].copy_from_slice(&[0xFFFF, 0xFFFF]);
        let decoded = decode(&profile, &[(block, &words)], Utc::now(), Tz::UTC);
        assert!(decoded.invalid.is_empty());
        assert_eq!(
            decoded.not_available,
            vec!["Neutral current In".to_owned(), "Total active power".to_owned()]
        );
        let value = |code: &str| {
            decoded
                .readings
                .iter()
                .find(|r| r.obis.to_string() == code)
                .map(|r| r.value)
        };
        assert_eq!(value("1-1:132.7.0"), Some(400.0));
        assert_eq!(value("1-1:91.7.0"), None);
        assert_eq!(value("1-1:1.7.0"), None);
        assert_eq!(value("1-1:2.7.0"), None, "neither direction of a missing power");
        assert_eq!(value("1-1:3.7.0"), Some(0.0));
        assert!((value("1-1:4.7.0").unwrap() - 0.01).abs() < 1e-12);
        // The same words from a profile without the rule are numbers.
        let mut plain = (*profile).clone();
        plain.modbus.not_available_sentinels = false;
        let decoded = decode(&plain, &[(block, &words)], Utc::now(), Tz::UTC);
        assert!(decoded.not_available.is_empty());
        assert!((value_of(&decoded, "1-1:91.7.0") - 4_294_967.295).abs() < 1e-6);
    }

    fn value_of(decoded: &DecodedRegisters, code: &str) -> f64 {
        decoded
            .readings
            .iter()
            .find(|r| r.obis.to_string() == code)
            .unwrap()
            .value
    }

    #[test]
    fn garbled_values_are_reported_not_stored() {
        let profile = th40c();
        let blocks = profile.blocks(RegisterGroup::Energy);
        let block = blocks.iter().find(|b| b.start == 0x8010).unwrap();
        let mut words = vec![0u16; usize::from(block.count)];
        words[0] = 0x7FC0; // NaN
        let (readings, invalid) = decode_blocks(&profile, &[(block, &words)], Utc::now(), Tz::UTC);
        assert!(readings.iter().all(|r| r.obis.to_string() != "1-1:1.8.0"));
        assert_eq!(invalid, vec!["Current total import active energy".to_owned()]);
    }
}
