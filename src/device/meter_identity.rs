//! Which meter answers at an address: the identity a read finds, as text,
//! compared after every (re)connection with the one first seen or
//! configured (`poll::identity`). Pure functions over what was read.
//!
//! - Over Modbus, a profile's `[[identity]]` entries name the registers
//!   that tell one meter from another of its type: the Socomec serial
//!   number words (0xC358–0xC35A, read as raw words since their decoding is
//!   not published), extended name (0xC38A), vendor name (0xC37A) and
//!   product name (0xC382). Where no public source
//!   gives such registers (TH40C, pulse concentrator) a profile has none,
//!   and no identity is checked over Modbus (docs/PROFILES.md).
//! - Over IEC 62056-21, every readout brings the identification line
//!   (`/XXXZ<identification>`) and, when the meter prints one, its serial
//!   number data set: `C.1.0` (meter serial number, IEC 62056-61),
//!   `96.1.0` (device identifier) or `0.0.0` (device address, which the
//!   TH40C prints as its serial, manual App. A), under any or no A-B
//!   prefix.

use serde::Deserialize;

use crate::domain::identity::PART_SEPARATOR;

use super::identify::{TextEncoding, decode_text};
use crate::protocol::iec62056::dataset::DataSet;
use crate::protocol::iec62056::ident::Identification;

/// How an identity entry's registers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityFormat {
    /// The raw words in hex (`0012-3456-789a`): for a serial number whose
    /// decoding is not published; two meters differ if their words do.
    #[default]
    Words,
    /// ASCII text in the entry's encoding.
    Text,
}

/// Registers that tell one meter from another of its type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityEntry {
    pub address: u16,
    pub count: u16,
    #[serde(default)]
    pub format: IdentityFormat,
    #[serde(default)]
    pub encoding: TextEncoding,
}

impl IdentityEntry {
    /// The entry's words as shown in an identity.
    pub fn render(&self, words: &[u16]) -> String {
        match self.format {
            IdentityFormat::Words => words
                .iter()
                .map(|word| format!("{word:04x}"))
                .collect::<Vec<_>>()
                .join("-"),
            IdentityFormat::Text => decode_text(words, self.encoding),
        }
    }
}

/// The identity of a Modbus meter from its entries' answers (`None` for an
/// entry the firmware does not have, answered "illegal data address"); no
/// identity when no entry was answered.
pub fn from_registers(entries: &[IdentityEntry], answers: &[Option<Vec<u16>>]) -> Option<String> {
    let parts: Vec<String> = entries
        .iter()
        .zip(answers)
        .filter_map(|(entry, words)| words.as_deref().map(|words| entry.render(words)))
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(PART_SEPARATOR))
}

/// The serial number codes, most specific first, as value group C.D.E.
const SERIAL_CODES: [&str; 3] = ["C.1.0", "96.1.0", "0.0.0"];

/// The code of `address` without its A-B prefix and its F group (`*F` or
/// `&F`): `1-0:0.0.0` and `0.0.0*255` are both `0.0.0`.
fn reduced(address: &str) -> &str {
    let body = address.rsplit_once(':').map_or(address, |(_, body)| body);
    body.split(['*', '&']).next().unwrap_or(body).trim()
}

/// The identity of an IEC 62056-21 meter from a readout: its manufacturer
/// and serial number when it prints one, else its manufacturer and
/// identification text (which tells only the meter's type). The baud rate
/// character is left out: the same meter may offer another.
pub fn from_readout(identification: &Identification, sets: &[DataSet]) -> String {
    let manufacturer = identification.manufacturer.trim();
    let serial = SERIAL_CODES.iter().find_map(|code| {
        sets.iter()
            .filter(|set| reduced(&set.address).eq_ignore_ascii_case(code))
            .find_map(|set| set.values.first().map(|value| value.value.trim().to_owned()))
            .filter(|serial| !serial.is_empty())
    });
    match serial {
        Some(serial) => format!("{manufacturer} {serial}"),
        None => format!("{manufacturer} {}", identification.identification.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::iec62056::dataset::parse_data_sets;

    fn ident(manufacturer: &str, text: &str) -> Identification {
        Identification {
            manufacturer: manufacturer.into(),
            baud_char: b'5',
            capability: None,
            identification: text.into(),
        }
    }

    #[test]
    fn socomec_serial_words_and_extended_name_make_the_identity() {
        // Laid out by hand: serial words as read at 0xC358 (three u16), the
        // extended name "countis e43" two characters a register at 0xC38A.
        let entries = [
            IdentityEntry {
                address: 0xC358,
                count: 3,
                format: IdentityFormat::Words,
                encoding: TextEncoding::HighLow,
            },
            IdentityEntry {
                address: 0xC38A,
                count: 8,
                format: IdentityFormat::Text,
                encoding: TextEncoding::HighLow,
            },
        ];
        let name = vec![
            0x636F, 0x756E, 0x7469, 0x7320, 0x6534, 0x3300, 0x0000, 0x0000, // "countis e43"
        ];
        let answers = [Some(vec![0x0012, 0x3456, 0xABCD]), Some(name)];
        assert_eq!(
            from_registers(&entries, &answers).as_deref(),
            Some("0012-3456-abcd / countis e43")
        );
        // A firmware without the serial words: the name alone.
        assert_eq!(
            from_registers(&entries, &[None, answers[1].clone()]).as_deref(),
            Some("countis e43")
        );
        assert_eq!(from_registers(&entries, &[None, None]), None);
    }

    #[test]
    fn socomec_vendor_and_product_names_join_the_identity() {
        // Laid out by hand, two characters a register as at 0xC38A: vendor
        // "SOCOMEC" at 0xC37A, product "COUNTIS E43" at 0xC382.
        let text = |address| IdentityEntry {
            address,
            count: 8,
            format: IdentityFormat::Text,
            encoding: TextEncoding::HighLow,
        };
        let entries = [text(0xC37A), text(0xC382)];
        let vendor = vec![0x534F, 0x434F, 0x4D45, 0x4300, 0, 0, 0, 0];
        let product = vec![0x434F, 0x554E, 0x5449, 0x5320, 0x4534, 0x3300, 0, 0];
        assert_eq!(
            from_registers(&entries, &[Some(vendor), Some(product)]).as_deref(),
            Some("SOCOMEC / COUNTIS E43")
        );
    }

    #[test]
    fn an_iec_serial_is_found_under_any_prefix_and_preferred_to_the_type() {
        let sets = |text: &str| parse_data_sets(text).unwrap();
        let th40c = ident("THM", "TH40C");
        assert_eq!(
            from_readout(&th40c, &sets("1-0:0.0.0(12345678)\r\n1-1:1.8.0(000123.45*kWh)\r\n")),
            "THM 12345678"
        );
        // Reduced addresses, as firmware writes them; C.1.0 before 0.0.0.
        assert_eq!(
            from_readout(&th40c, &sets("0.0.0(1)\r\nC.1.0(SN-778)\r\n")),
            "THM SN-778"
        );
        assert_eq!(from_readout(&th40c, &sets("0-0:96.1.0*255( 42 )\r\n")), "THM 42");
        // No serial printed (an A1000): its type only.
        assert_eq!(
            from_readout(&ident("BSE", "A1000"), &sets("1-1:1.8.0(000001.00*kWh)\r\n")),
            "BSE A1000"
        );
        // An empty serial is no serial.
        assert_eq!(from_readout(&th40c, &sets("0.0.0()\r\n")), "THM TH40C");
    }
}
