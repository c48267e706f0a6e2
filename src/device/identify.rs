//! Telling which profile fits a device from what it answers: a profile's
//! `[[identification]]` entries name registers and what they must hold
//! (Socomec: "SOCO" at 0xC350, one character per register; the extended
//! product name at 0xC38A). Pure functions over words already read, so a bus
//! scan and the simulators share them without sharing any I/O.

use serde::Deserialize;

use super::value_type::{ValueType, WordOrder};

/// How an identification entry is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentificationKind {
    /// ASCII text that must equal `expect` (ignoring case and padding).
    #[default]
    Text,
    /// Three registers that must hold a valid date (year, month, day), as a
    /// meter with a clock answers; for devices with no identification text.
    Date,
    /// Registers that must each hold a value within its `within` bounds:
    /// for a device with neither identification text nor a clock, told by
    /// settings registers only it answers within its manual's ranges (the
    /// pulse concentrator's input mode and input 1's settings).
    Ranges,
}

/// How text lies in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    /// One character per register, in its low byte (Socomec's "SOCO" at 0xC350).
    LowByte,
    /// Two characters per register, the first in the high byte.
    #[default]
    HighLow,
}

/// One register range a device of the profile answers in a known way.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identification {
    pub address: u16,
    pub count: u16,
    #[serde(default)]
    pub kind: IdentificationKind,
    #[serde(default)]
    pub encoding: TextEncoding,
    /// The text a `text` entry must read as.
    #[serde(default)]
    pub expect: Option<String>,
    /// A `ranges` entry's bounds, `[least, most]` for each register in turn.
    #[serde(default)]
    pub within: Vec<[u16; 2]>,
}

impl Identification {
    /// Whether `words` (read at `address`, `count` of them) fit this entry.
    pub fn matches(&self, words: &[u16]) -> bool {
        if words.len() != usize::from(self.count) {
            return false;
        }
        match self.kind {
            IdentificationKind::Text => self
                .expect
                .as_deref()
                .is_some_and(|expect| decode_text(words, self.encoding).eq_ignore_ascii_case(expect.trim())),
            IdentificationKind::Date => ValueType::DateYmd.decode(words, WordOrder::HighFirst).is_some(),
            IdentificationKind::Ranges => {
                self.within.len() == words.len()
                    && words
                        .iter()
                        .zip(&self.within)
                        .all(|(word, [least, most])| (least..=most).contains(&word))
            }
        }
    }

    /// The words a device of the profile answers for a `text` entry (what
    /// the simulators serve); `None` for other kinds.
    pub fn expected_words(&self) -> Option<Vec<u16>> {
        match self.kind {
            IdentificationKind::Text => Some(encode_text(self.expect.as_deref()?, self.count, self.encoding)),
            IdentificationKind::Date | IdentificationKind::Ranges => None,
        }
    }
}

/// The text in `words`, without the NUL and space padding devices put
/// after it. Bytes that are not printable ASCII read as '?'.
pub fn decode_text(words: &[u16], encoding: TextEncoding) -> String {
    let bytes: Vec<u8> = match encoding {
        TextEncoding::LowByte => words.iter().map(|word| *word as u8).collect(),
        TextEncoding::HighLow => words.iter().flat_map(|word| word.to_be_bytes()).collect(),
    };
    let text: String = bytes
        .iter()
        .map(|&byte| match byte {
            0 => '\0',
            0x20..=0x7E => char::from(byte),
            _ => '?',
        })
        .collect();
    text.trim_end_matches(['\0', ' ']).trim_start_matches(' ').to_owned()
}

/// `text` laid out in `count` registers, padded with NULs: the inverse of
/// [`decode_text`] for ASCII text that fits.
pub fn encode_text(text: &str, count: u16, encoding: TextEncoding) -> Vec<u16> {
    let bytes = text.as_bytes();
    let byte = |index: usize| bytes.get(index).copied().unwrap_or(0);
    (0..usize::from(count))
        .map(|register| match encoding {
            TextEncoding::LowByte => u16::from(byte(register)),
            TextEncoding::HighLow => u16::from_be_bytes([byte(2 * register), byte(2 * register + 1)]),
        })
        .collect()
}

/// Whether a device fits a profile whose identification is `entries`: every
/// entry matches what `read(address, count)` returns (`None`: the device
/// answered with an exception or not at all). A profile with no entries
/// cannot be told by identification and never fits. Reads stop at the first
/// mismatch.
pub fn matches(entries: &[Identification], mut read: impl FnMut(u16, u16) -> Option<Vec<u16>>) -> bool {
    !entries.is_empty()
        && entries
            .iter()
            .all(|entry| read(entry.address, entry.count).is_some_and(|words| entry.matches(&words)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::device::registry::ProfileSet;

    #[test]
    fn socomec_low_byte_text_decodes() {
        assert_eq!(
            decode_text(&[0x0053, 0x004F, 0x0043, 0x004F], TextEncoding::LowByte),
            "SOCO"
        );
        assert_eq!(
            encode_text("SOCO", 4, TextEncoding::LowByte),
            [0x0053, 0x004F, 0x0043, 0x004F]
        );
    }

    #[test]
    fn text_round_trips_with_padding() {
        for encoding in [TextEncoding::LowByte, TextEncoding::HighLow] {
            let words = encode_text("countis e44", 16, encoding);
            assert_eq!(words.len(), 16);
            assert_eq!(decode_text(&words, encoding), "countis e44");
        }
        let words = encode_text("countis e44", 8, TextEncoding::HighLow);
        assert_eq!(words[0], u16::from_be_bytes(*b"co"));
        assert_eq!(words[5], u16::from_be_bytes([b'4', 0]));
        assert_eq!(decode_text(&[0x41FF, 0x2020], TextEncoding::HighLow), "A?");
    }

    /// A fake device: a register map answering reads, `None` for unmapped ranges.
    fn device(map: &HashMap<u16, u16>) -> impl FnMut(u16, u16) -> Option<Vec<u16>> + '_ {
        |address, count| (address..address + count).map(|a| map.get(&a).copied()).collect()
    }

    fn load(map: &mut HashMap<u16, u16>, address: u16, words: &[u16]) {
        for (offset, word) in words.iter().enumerate() {
            map.insert(address + offset as u16, *word);
        }
    }

    #[test]
    fn every_shipped_profile_with_entries_recognises_only_its_own_answers() {
        let set = ProfileSet::builtin();
        let names: Vec<String> = set.names().map(str::to_owned).collect();
        for name in &names {
            let profile = set.get(name).unwrap();
            if profile.identification.is_empty() {
                continue;
            }
            // A device that answers what the profile expects: text entries
            // as encoded, date entries with a valid date.
            let mut map = HashMap::new();
            for entry in &profile.identification {
                let words = match entry.kind {
                    IdentificationKind::Text => entry.expected_words().unwrap(),
                    IdentificationKind::Date => vec![26, 11, 22],
                    IdentificationKind::Ranges => entry.within.iter().map(|[least, _]| *least).collect(),
                };
                load(&mut map, entry.address, &words);
            }
            assert!(
                matches(&profile.identification, device(&map)),
                "{name} recognises itself"
            );
            for other in &names {
                let other_profile = set.get(other).unwrap();
                if other != name && !other_profile.identification.is_empty() {
                    assert!(
                        !matches(&other_profile.identification, device(&map)),
                        "{name} is not {other}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_date_entry_needs_a_valid_date() {
        let profile = ProfileSet::builtin().get("th40c").unwrap();
        let mut map = HashMap::new();
        load(&mut map, 0x1040, &[26, 13, 1]);
        assert!(!matches(&profile.identification, device(&map)), "month 13");
        load(&mut map, 0x1040, &[0, 0, 0]);
        assert!(
            !matches(&profile.identification, device(&map)),
            "an all-zero answer is no date"
        );
        load(&mut map, 0x1040, &[2026, 2, 28]);
        assert!(matches(&profile.identification, device(&map)));
        assert!(
            !matches(&profile.identification, device(&HashMap::new())),
            "no answer, no fit"
        );
    }

    /// The concentrator's probe, laid out by hand: input mode 0x0000, and
    /// input 1's unit, weight code, CT, VT x10 and OFF time at 0x0102.
    #[test]
    fn a_concentrator_is_told_by_its_settings_in_range() {
        let concentrator = ProfileSet::builtin().get("pulse-concentrator").unwrap();
        let mut map = HashMap::new();
        load(&mut map, 0x0000, &[3]); // GME SØ
        load(&mut map, 0x0102, &[1, 1, 160, 10, 50]); // kWh, 0.01, CT 160, VT 1.0, 50 ms
        assert!(matches(&concentrator.identification, device(&map)));
        load(&mut map, 0x0102, &[1, 1, 160, 10, 301]);
        assert!(!matches(&concentrator.identification, device(&map)), "OFF time 301 ms");
        load(&mut map, 0x0102, &[5, 2, 0, 0, 300]); // Nm3, 0.1: no ratios
        assert!(matches(&concentrator.identification, device(&map)));
        load(&mut map, 0x0000, &[4]);
        assert!(!matches(&concentrator.identification, device(&map)), "mode 4");
        let mut settings_only = HashMap::new();
        load(&mut settings_only, 0x0102, &[1, 1, 160, 10, 50]);
        assert!(
            !matches(&concentrator.identification, device(&settings_only)),
            "no mode register, no fit"
        );
    }

    #[test]
    fn socomec_name_tells_the_model() {
        let e43 = ProfileSet::builtin().get("countis-e43").unwrap();
        let mut map = HashMap::new();
        load(&mut map, 0xC350, &[0x53, 0x4F, 0x43, 0x4F]);
        load(&mut map, 0xC38A, &encode_text("COUNTIS E43", 8, TextEncoding::HighLow));
        assert!(matches(&e43.identification, device(&map)), "case is not significant");
        load(&mut map, 0xC350, &[0x53, 0x4F, 0x43, 0x41]);
        assert!(!matches(&e43.identification, device(&map)));
    }
}
