//! How a device lays a value out in 16-bit registers, and the conversion both
//! ways: decoding for the driver, encoding for the simulators.
//!
//! Word order matters: the TH40C sends an IEEE 754 float high word first
//! (TH40C manual, App. E: registers 0x3EC7 0xAE14 are 0.39 kWh).

use serde::Deserialize;

/// The register layout of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    U16,
    I16,
    U32,
    I32,
    F32,
    /// Three registers: year (two or four digits), month, day. Read as the
    /// number YYMMDD, the form IEC 62056-21 readouts give for `0.9.2`.
    DateYmd,
    /// Three registers: hour, minute, second. Read as the number hhmmss.
    TimeHms,
    /// One register holding month × 100 + day: the date part of a
    /// maximum-demand time stamp (TH40C App. G, "demand time (MMDD)").
    Mmdd,
    /// One register holding hour × 100 + minute (TH40C App. G, "(HHMM)").
    Hhmm,
    /// Six registers: year (two or four digits), month, day, hour, minute,
    /// second: the time of occurrence of a maximum or minimum (TH40C App. G,
    /// "Occur time of Max Voltage(Phase A)(YEAR)" … "(SEC)"). A time stamp
    /// part, read as the number YYYYMMDDhhmmss; all six zero means the meter
    /// has no time yet.
    Ymdhms,
}

/// Order of the two words of a 32-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    #[default]
    HighFirst,
    LowFirst,
}

impl ValueType {
    /// Number of 16-bit registers the value occupies.
    pub fn width(self) -> u16 {
        match self {
            ValueType::U16 | ValueType::I16 | ValueType::Mmdd | ValueType::Hhmm => 1,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 2,
            ValueType::DateYmd | ValueType::TimeHms => 3,
            ValueType::Ymdhms => 6,
        }
    }

    /// Whether the value is a time stamp part that belongs to another reading
    /// rather than a reading of its own.
    pub fn is_timestamp_part(self) -> bool {
        matches!(self, ValueType::Mmdd | ValueType::Hhmm | ValueType::Ymdhms)
    }

    /// Decodes `words` (exactly `width()` of them) to a raw number, before scaling.
    /// Returns `None` for a value the type cannot hold (a NaN float, month 13).
    pub fn decode(self, words: &[u16], order: WordOrder) -> Option<f64> {
        debug_assert_eq!(words.len(), usize::from(self.width()));
        let pair = || match order {
            WordOrder::HighFirst => (u32::from(words[0]) << 16) | u32::from(words[1]),
            WordOrder::LowFirst => (u32::from(words[1]) << 16) | u32::from(words[0]),
        };
        let value = match self {
            ValueType::U16 => f64::from(words[0]),
            ValueType::I16 => f64::from(words[0] as i16),
            ValueType::U32 => f64::from(pair()),
            ValueType::I32 => f64::from(pair() as i32),
            ValueType::F32 => {
                let value = f32::from_bits(pair());
                if !value.is_finite() {
                    return None;
                }
                f64::from(value)
            }
            ValueType::DateYmd => {
                let (year, month, day) = (words[0] % 100, words[1], words[2]);
                if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
                    return None;
                }
                f64::from(u32::from(year) * 10_000 + u32::from(month) * 100 + u32::from(day))
            }
            ValueType::TimeHms => {
                let (hour, minute, second) = (words[0], words[1], words[2]);
                if hour > 23 || minute > 59 || second > 59 {
                    return None;
                }
                f64::from(u32::from(hour) * 10_000 + u32::from(minute) * 100 + u32::from(second))
            }
            ValueType::Mmdd => {
                let (month, day) = (words[0] / 100, words[0] % 100);
                // 0000: the meter has no time stamp yet (no demand this period).
                let valid = words[0] == 0 || ((1..=12).contains(&month) && (1..=31).contains(&day));
                if !valid {
                    return None;
                }
                f64::from(words[0])
            }
            ValueType::Hhmm => {
                let (hour, minute) = (words[0] / 100, words[0] % 100);
                if hour > 23 || minute > 59 {
                    return None;
                }
                f64::from(words[0])
            }
            ValueType::Ymdhms => {
                if words.iter().all(|&word| word == 0) {
                    return Some(0.0);
                }
                let year = match words[0] {
                    0..=99 => 2000 + u64::from(words[0]),
                    1970..=9999 => u64::from(words[0]),
                    _ => return None,
                };
                let (month, day, hour, minute, second) = (words[1], words[2], words[3], words[4], words[5]);
                if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
                    return None;
                }
                let number = [month, day, hour, minute, second]
                    .into_iter()
                    .fold(year, |number, part| number * 100 + u64::from(part));
                number as f64
            }
        };
        Some(value)
    }

    /// The "not available" pattern of this type, for devices that send one
    /// instead of a value (Socomec: 0xFFFF / 0xFFFFFFFF unsigned, 0x7FFF /
    /// 0x7FFFFFFF signed). Floats, dates and time stamps have none.
    pub fn not_available(self, order: WordOrder) -> Option<Vec<u16>> {
        let split = |bits: u32| {
            let (high, low) = ((bits >> 16) as u16, bits as u16);
            match order {
                WordOrder::HighFirst => vec![high, low],
                WordOrder::LowFirst => vec![low, high],
            }
        };
        match self {
            ValueType::U16 => Some(vec![0xFFFF]),
            ValueType::I16 => Some(vec![0x7FFF]),
            ValueType::U32 => Some(split(0xFFFF_FFFF)),
            ValueType::I32 => Some(split(0x7FFF_FFFF)),
            _ => None,
        }
    }

    /// Whether `words` are this type's "not available" pattern.
    pub fn is_not_available(self, words: &[u16], order: WordOrder) -> bool {
        self.not_available(order).is_some_and(|pattern| pattern == words)
    }

    /// Encodes a raw number (after removing scaling) into registers: the
    /// inverse of [`ValueType::decode`], used by the simulators.
    pub fn encode(self, value: f64, order: WordOrder) -> Vec<u16> {
        let split = |bits: u32| {
            let (high, low) = ((bits >> 16) as u16, bits as u16);
            match order {
                WordOrder::HighFirst => vec![high, low],
                WordOrder::LowFirst => vec![low, high],
            }
        };
        let whole = value.round();
        match self {
            ValueType::U16 | ValueType::Mmdd | ValueType::Hhmm => vec![whole.clamp(0.0, 65_535.0) as u16],
            ValueType::I16 => vec![whole.clamp(-32_768.0, 32_767.0) as i16 as u16],
            ValueType::U32 => split(whole.clamp(0.0, f64::from(u32::MAX)) as u32),
            ValueType::I32 => split(whole.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32 as u32),
            ValueType::F32 => split((value as f32).to_bits()),
            ValueType::DateYmd | ValueType::TimeHms => {
                let number = whole.clamp(0.0, 999_999.0) as u32;
                vec![
                    (number / 10_000) as u16,
                    (number / 100 % 100) as u16,
                    (number % 100) as u16,
                ]
            }
            // The year as two digits, as the meter's own clock registers
            // (0x1040) are served.
            ValueType::Ymdhms => {
                let number = whole.clamp(0.0, 99_991_231_235_959.0) as u64;
                let mut words = [0u16; 6];
                let mut rest = number;
                for word in words.iter_mut().rev() {
                    *word = (rest % 100) as u16;
                    rest /= 100;
                }
                words.to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TH40C manual, App. E: the answer `01 03 04 3E C7 AE 14` to a read of
    /// 0x8010 is total import active energy 0.39 kWh.
    #[test]
    fn decodes_the_th40c_manual_example() {
        let value = ValueType::F32.decode(&[0x3EC7, 0xAE14], WordOrder::HighFirst).unwrap();
        assert!((value - 0.39).abs() < 1e-6, "{value}");
    }

    #[test]
    fn word_order_swaps_the_words() {
        let value = ValueType::F32.decode(&[0xAE14, 0x3EC7], WordOrder::LowFirst).unwrap();
        assert!((value - 0.39).abs() < 1e-6);
        assert_eq!(
            ValueType::U32.decode(&[0x0001, 0x0002], WordOrder::HighFirst),
            Some(65_538.0)
        );
        assert_eq!(
            ValueType::I32.decode(&[0xFFFF, 0xFFFE], WordOrder::HighFirst),
            Some(-2.0)
        );
        assert_eq!(ValueType::I16.decode(&[0x8000], WordOrder::HighFirst), Some(-32_768.0));
    }

    #[test]
    fn dates_and_times_become_iec_style_numbers() {
        assert_eq!(
            ValueType::DateYmd.decode(&[26, 11, 22], WordOrder::HighFirst),
            Some(261_122.0)
        );
        assert_eq!(
            ValueType::DateYmd.decode(&[2026, 11, 22], WordOrder::HighFirst),
            Some(261_122.0)
        );
        assert_eq!(
            ValueType::TimeHms.decode(&[14, 5, 9], WordOrder::HighFirst),
            Some(140_509.0)
        );
        assert_eq!(ValueType::DateYmd.decode(&[26, 13, 1], WordOrder::HighFirst), None);
        assert_eq!(ValueType::Mmdd.decode(&[1231], WordOrder::HighFirst), Some(1231.0));
        assert_eq!(ValueType::Mmdd.decode(&[0], WordOrder::HighFirst), Some(0.0));
        assert_eq!(ValueType::Mmdd.decode(&[1300], WordOrder::HighFirst), None);
        assert_eq!(ValueType::Hhmm.decode(&[2460], WordOrder::HighFirst), None);
    }

    /// TH40C App. G: the occurrence time of a maximum is six registers
    /// YEAR, MONTH, DAY, HOUR, MIN, SEC.
    #[test]
    fn six_register_times_become_one_number() {
        let decode = |words: [u16; 6]| ValueType::Ymdhms.decode(&words, WordOrder::HighFirst);
        assert_eq!(decode([2026, 11, 19, 14, 5, 30]), Some(20_261_119_140_530.0));
        assert_eq!(decode([26, 11, 19, 14, 5, 30]), Some(20_261_119_140_530.0));
        assert_eq!(decode([0; 6]), Some(0.0), "no time yet");
        assert_eq!(decode([2026, 13, 19, 14, 5, 30]), None);
        assert_eq!(decode([2026, 11, 0, 14, 5, 30]), None);
        assert_eq!(decode([2026, 11, 19, 24, 5, 30]), None);
        assert_eq!(decode([2026, 11, 19, 14, 60, 30]), None);
        assert_eq!(decode([2026, 11, 19, 14, 5, 60]), None);
        assert_eq!(decode([150, 11, 19, 14, 5, 30]), None);
        assert_eq!(
            ValueType::Ymdhms.encode(20_261_119_140_530.0, WordOrder::HighFirst),
            vec![26, 11, 19, 14, 5, 30]
        );
    }

    #[test]
    fn non_finite_floats_are_refused() {
        assert_eq!(ValueType::F32.decode(&[0x7FC0, 0x0000], WordOrder::HighFirst), None);
    }

    #[test]
    fn not_available_patterns_follow_signedness_and_word_order() {
        assert!(ValueType::U32.is_not_available(&[0xFFFF, 0xFFFF], WordOrder::HighFirst));
        assert!(ValueType::I32.is_not_available(&[0x7FFF, 0xFFFF], WordOrder::HighFirst));
        assert!(ValueType::I32.is_not_available(&[0xFFFF, 0x7FFF], WordOrder::LowFirst));
        assert!(
            !ValueType::I32.is_not_available(&[0xFFFF, 0xFFFF], WordOrder::HighFirst),
            "-1 is a value"
        );
        assert!(ValueType::U16.is_not_available(&[0xFFFF], WordOrder::HighFirst));
        assert!(ValueType::I16.is_not_available(&[0x7FFF], WordOrder::HighFirst));
        assert!(!ValueType::F32.is_not_available(&[0xFFFF, 0xFFFF], WordOrder::HighFirst));
    }

    proptest::proptest! {
        #[test]
        fn f32_encode_then_decode_is_identity(value in -1.0e9f32..1.0e9f32) {
            for order in [WordOrder::HighFirst, WordOrder::LowFirst] {
                let words = ValueType::F32.encode(f64::from(value), order);
                proptest::prop_assert_eq!(ValueType::F32.decode(&words, order), Some(f64::from(value)));
            }
        }

        #[test]
        fn integer_encode_then_decode_is_identity(value in i32::MIN..=i32::MAX) {
            let words = ValueType::I32.encode(f64::from(value), WordOrder::LowFirst);
            proptest::prop_assert_eq!(ValueType::I32.decode(&words, WordOrder::LowFirst), Some(f64::from(value)));
        }
    }
}
