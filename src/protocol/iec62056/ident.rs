//! The opening handshake: the client's request (sign-on) `/?ADDR!` CR LF,
//! the meter's identification `/XXXZ[\W]ident` CR LF and, in mode C, the
//! client's acknowledgement/option select `ACK V Z Y` CR LF.
//! IEC 62056-21:2002, 6.3.1–6.3.3; facts in `docs/PROTOCOLS.md`.

use super::frame::{ACK, CR, Decoded, EncodeError, FrameError, LF};

/// Longest sign-on or identification line a decoder waits for. The
/// standard's longest are 37 bytes (a 32-character address) and 27 bytes;
/// the slack tolerates meters with long identifications.
pub(crate) const MAX_LINE_LEN: usize = 128;

/// Longest device address in a sign-on (6.3.1, item 5).
pub(crate) const MAX_ADDRESS_LEN: usize = 32;

/// Longest identification after the manufacturer and baud characters.
pub(crate) const MAX_IDENTIFICATION_LEN: usize = 16;

/// The client's request message: `/?` address `!` CR LF.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignOn {
    /// Empty on a point-to-point optical link; selects the meter on a
    /// shared RS485 line or behind a gateway.
    pub address: String,
}

impl SignOn {
    /// Refuses addresses the standard does not allow: more than 32
    /// characters, or characters other than `0-9 A-Z a-z` and space.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.address.len() > MAX_ADDRESS_LEN {
            return Err(EncodeError::new("device address", "longer than 32 characters"));
        }
        if !self.address.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
            return Err(EncodeError::new(
                "device address",
                "only 0-9, A-Z, a-z and space are allowed",
            ));
        }
        Ok([b"/?", self.address.as_bytes(), b"!\r\n"].concat())
    }

    /// Decodes a sign-on at the front of `buf`, which starts with `/`.
    /// Tolerates any printable address character except `!`.
    pub fn parse(buf: &[u8]) -> Result<Decoded<SignOn>, FrameError> {
        let Some((line, used)) = take_line(buf)? else {
            return Ok(Decoded::Incomplete);
        };
        let address = line
            .strip_prefix(b"/?")
            .and_then(|rest| rest.strip_suffix(b"!"))
            .ok_or_else(|| FrameError::Malformed("a sign-on is /?address!".into()))?;
        let address = printable(address, "device address")?;
        if address.contains('!') {
            return Err(FrameError::Malformed("'!' inside the device address".into()));
        }
        Ok(Decoded::Complete(SignOn { address }, used))
    }
}

/// Protocol mode a meter offers, read from its baud rate character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stays at 300 baud.
    A,
    /// Both sides switch baud rate after the identification, without
    /// acknowledgement.
    B,
    /// The client acknowledges and selects the option (readout,
    /// programming) and the baud rate.
    C,
}

/// The meter's identification message: `/XXXZ[\W]ident` CR LF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// Three-letter manufacturer (FLAG) id, e.g. `ISk`, `LGZ`, `EMH`.
    pub manufacturer: String,
    /// Z: baud rate (and mode) character, e.g. `b'5'`.
    pub baud_char: u8,
    /// The characters W of the optional `\W` sequences, one per sequence
    /// (`\2` = HDLC/mode E capable → `"2"`). `None` when absent.
    pub capability: Option<String>,
    /// Meter type/firmware text; at most 16 characters by the standard.
    pub identification: String,
}

impl Identification {
    /// The baud rate character (IEC 62056-21:2002, 6.3.2; table in
    /// `docs/PROTOCOLS.md`): `0`–`6` mode C, `A`–`F` mode B, else A.
    pub fn mode(&self) -> Mode {
        match self.baud_char {
            b'0'..=b'6' => Mode::C,
            b'A'..=b'F' => Mode::B,
            _ => Mode::A,
        }
    }

    /// The baud rate the meter offers: mode C `0`–`6` = 300…19200, mode B
    /// `A`–`F` = 600…19200, mode A 300.
    pub fn baud_rate(&self) -> u32 {
        match self.baud_char {
            z @ b'0'..=b'6' => 300 << (z - b'0'),
            z @ b'A'..=b'F' => 600 << (z - b'A'),
            _ => 300,
        }
    }

    /// A lowercase third manufacturer letter announces a minimum reaction
    /// time of 20 ms instead of 200 ms.
    pub fn fast_reaction(&self) -> bool {
        self.manufacturer.as_bytes().get(2).is_some_and(u8::is_ascii_lowercase)
    }

    /// Enforces the standard: three letters, a printable baud character,
    /// non-empty capability characters, at most 16 identification
    /// characters without `/` or `!` (and not starting with `\`, which
    /// would read back as a capability).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.manufacturer.len() != 3 || !self.manufacturer.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(EncodeError::new("manufacturer", "three ASCII letters"));
        }
        if !is_field_char(self.baud_char) {
            return Err(EncodeError::new(
                "baud rate character",
                "a printable character other than / ! \\",
            ));
        }
        let mut line = vec![b'/'];
        line.extend_from_slice(self.manufacturer.as_bytes());
        line.push(self.baud_char);
        if let Some(capability) = &self.capability {
            if capability.is_empty() || !capability.bytes().all(is_field_char) {
                return Err(EncodeError::new(
                    "capability",
                    "one or more printable characters other than / ! \\",
                ));
            }
            for w in capability.bytes() {
                line.extend_from_slice(&[b'\\', w]);
            }
        }
        let ident = &self.identification;
        if ident.len() > MAX_IDENTIFICATION_LEN {
            return Err(EncodeError::new("identification", "longer than 16 characters"));
        }
        if !ident
            .bytes()
            .all(|b| b == b' ' || (b.is_ascii_graphic() && b != b'/' && b != b'!'))
            || ident.starts_with('\\')
        {
            return Err(EncodeError::new(
                "identification",
                "printable characters other than / and !, not starting with \\",
            ));
        }
        line.extend_from_slice(ident.as_bytes());
        line.extend_from_slice(&[CR, LF]);
        Ok(line)
    }

    /// Decodes an identification at the front of `buf`, which starts with
    /// `/`. Tolerant: identifications longer than 16 characters and any
    /// printable characters in them are accepted, as real meters send them.
    pub fn parse(buf: &[u8]) -> Result<Decoded<Identification>, FrameError> {
        let Some((line, used)) = take_line(buf)? else {
            return Ok(Decoded::Incomplete);
        };
        let malformed = |why: &str| FrameError::Malformed(format!("identification: {why}"));
        let &[b'/', m1, m2, m3, baud_char, ref rest @ ..] = line else {
            return Err(malformed("shorter than /XXXZ"));
        };
        if ![m1, m2, m3].iter().all(u8::is_ascii_alphabetic) {
            return Err(malformed("manufacturer is not three letters"));
        }
        if !is_field_char(baud_char) {
            return Err(malformed("bad baud rate character"));
        }
        let mut capability = String::new();
        let mut rest = rest;
        while let [b'\\', w, tail @ ..] = rest {
            if !is_field_char(*w) {
                return Err(malformed("bad capability character"));
            }
            capability.push(char::from(*w));
            rest = tail;
        }
        Ok(Decoded::Complete(
            Identification {
                manufacturer: String::from_utf8(vec![m1, m2, m3]).expect("ASCII letters"),
                baud_char,
                capability: (!capability.is_empty()).then_some(capability),
                identification: printable(rest, "identification")?,
            },
            used,
        ))
    }
}

/// Y of the option select message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionMode {
    /// `0`: data readout.
    Readout,
    /// `1`: programming mode.
    Programming,
    /// `2`: binary mode (HDLC, IEC 62056-46).
    Binary,
    /// `6`–`9` by the standard; a decoder also puts any other printable
    /// character here, since some devices send non-standard ones.
    Manufacturer(u8),
}

impl OptionMode {
    fn as_byte(self) -> u8 {
        match self {
            Self::Readout => b'0',
            Self::Programming => b'1',
            Self::Binary => b'2',
            Self::Manufacturer(y) => y,
        }
    }

    fn from_byte(y: u8) -> Self {
        match y {
            b'0' => Self::Readout,
            b'1' => Self::Programming,
            b'2' => Self::Binary,
            other => Self::Manufacturer(other),
        }
    }
}

/// The acknowledgement/option select message (mode C): `ACK V Z Y` CR LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSelect {
    /// V: protocol control character, `b'0'` for the normal protocol.
    pub protocol: u8,
    /// Z: the baud character the meter offered, or a lower one.
    pub baud_char: u8,
    pub mode: OptionMode,
}

impl OptionSelect {
    /// Normal protocol (`V = 0`) at the baud rate `baud_char`.
    pub fn new(baud_char: u8, mode: OptionMode) -> Self {
        Self {
            protocol: b'0',
            baud_char,
            mode,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        for (field, byte) in [
            ("protocol character", self.protocol),
            ("baud rate character", self.baud_char),
        ] {
            if !byte.is_ascii_graphic() {
                return Err(EncodeError::new(field, "a printable character"));
            }
        }
        let y = self.mode.as_byte();
        if let OptionMode::Manufacturer(b'0'..=b'2') = self.mode {
            return Err(EncodeError::new("option mode", "0, 1 and 2 have their own variants"));
        }
        if !y.is_ascii_graphic() {
            return Err(EncodeError::new("option mode", "a printable character"));
        }
        Ok(vec![ACK, self.protocol, self.baud_char, y, CR, LF])
    }

    /// Decodes an option select at the front of `buf`, which starts with ACK.
    pub fn parse(buf: &[u8]) -> Result<Decoded<OptionSelect>, FrameError> {
        let Some(&[_, protocol, baud_char, y, cr, lf]) = buf.get(..6) else {
            return Ok(Decoded::Incomplete);
        };
        if [cr, lf] != [CR, LF] {
            return Err(FrameError::Malformed("option select not closed by CR LF".into()));
        }
        if ![protocol, baud_char, y].iter().all(u8::is_ascii_graphic) {
            return Err(FrameError::Malformed("non-printable character in option select".into()));
        }
        Ok(Decoded::Complete(
            OptionSelect {
                protocol,
                baud_char,
                mode: OptionMode::from_byte(y),
            },
            6,
        ))
    }
}

/// A character that may stand alone in the identification's fixed fields.
fn is_field_char(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'/' | b'!' | b'\\')
}

/// The line at the front of `buf` without its CR LF, and the bytes it used.
fn take_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    let window = &buf[..buf.len().min(MAX_LINE_LEN)];
    match window.iter().position(|&b| b == LF) {
        Some(lf) if lf > 0 && buf[lf - 1] == CR => Ok(Some((&buf[..lf - 1], lf + 1))),
        Some(_) => Err(FrameError::Malformed("line ends with LF without CR".into())),
        None if window.len() == MAX_LINE_LEN => Err(FrameError::TooLong),
        None => Ok(None),
    }
}

/// Printable ASCII (space included) as a string.
fn printable(bytes: &[u8], what: &str) -> Result<String, FrameError> {
    if bytes.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) {
        Ok(String::from_utf8(bytes.to_vec()).expect("ASCII"))
    } else {
        Err(FrameError::Malformed(format!("non-printable character in the {what}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identification(line: &[u8]) -> Identification {
        match Identification::parse(line).unwrap() {
            Decoded::Complete(ident, used) => {
                assert_eq!(used, line.len());
                ident
            }
            Decoded::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn sign_on_with_and_without_address() {
        let with = SignOn {
            address: "12345678".into(),
        };
        assert_eq!(with.encode().unwrap(), b"/?12345678!\r\n");
        assert_eq!(SignOn::parse(b"/?12345678!\r\n").unwrap(), Decoded::Complete(with, 13));
        assert_eq!(SignOn::default().encode().unwrap(), b"/?!\r\n");
        assert_eq!(
            SignOn::parse(b"/?!\r\n").unwrap(),
            Decoded::Complete(SignOn::default(), 5)
        );
        assert_eq!(SignOn::parse(b"/?12").unwrap(), Decoded::Incomplete);
        assert!(SignOn::parse(b"/?12\r\n").is_err());
        assert!(SignOn { address: "a!b".into() }.encode().is_err());
        assert!(
            SignOn {
                address: "1".repeat(33)
            }
            .encode()
            .is_err()
        );
    }

    #[test]
    fn iskra_mt174_offers_mode_c_at_9600_with_fast_reaction() {
        let ident = identification(b"/ISk5MT174-0001\r\n");
        assert_eq!(ident.manufacturer, "ISk");
        assert_eq!(ident.baud_char, b'5');
        assert_eq!(ident.capability, None);
        assert_eq!(ident.identification, "MT174-0001");
        assert_eq!(ident.mode(), Mode::C);
        assert_eq!(ident.baud_rate(), 9600);
        assert!(ident.fast_reaction());
        assert_eq!(ident.encode().unwrap(), b"/ISk5MT174-0001\r\n");
    }

    #[test]
    fn landis_gyr_zmd_with_hdlc_capability() {
        let ident = identification(b"/LGZ4\\2ZMD3104100.B33\r\n");
        assert_eq!(ident.manufacturer, "LGZ");
        assert_eq!(ident.capability.as_deref(), Some("2"));
        assert_eq!(ident.identification, "ZMD3104100.B33");
        assert_eq!((ident.mode(), ident.baud_rate()), (Mode::C, 4800));
        assert!(!ident.fast_reaction());
        assert_eq!(ident.encode().unwrap(), b"/LGZ4\\2ZMD3104100.B33\r\n");
    }

    #[test]
    fn baud_characters_select_the_mode() {
        let with = |z: u8| Identification {
            manufacturer: "EMH".into(),
            baud_char: z,
            capability: None,
            identification: String::new(),
        };
        let table = [
            (b'0', Mode::C, 300),
            (b'3', Mode::C, 2400),
            (b'6', Mode::C, 19200),
            (b'A', Mode::B, 600),
            (b'C', Mode::B, 2400),
            (b'F', Mode::B, 19200),
            (b'7', Mode::A, 300),
            (b'G', Mode::A, 300),
            (b'x', Mode::A, 300),
        ];
        for (z, mode, baud) in table {
            assert_eq!((with(z).mode(), with(z).baud_rate()), (mode, baud), "{}", char::from(z));
        }
    }

    #[test]
    fn long_identifications_are_refused_on_encode_and_tolerated_on_parse() {
        let line = b"/EMH5ABCDEFGHIJKLMNOPQRSTU\r\n";
        let ident = identification(line);
        assert_eq!(ident.identification.len(), 21);
        assert!(ident.encode().is_err());
    }

    #[test]
    fn malformed_identifications() {
        assert!(Identification::parse(b"/EM\r\n").is_err());
        assert!(Identification::parse(b"/E1H5X\r\n").is_err());
        assert!(Identification::parse(b"/EMH5X\n").is_err());
        assert_eq!(Identification::parse(b"/EMH5X\r").unwrap(), Decoded::Incomplete);
        assert_eq!(Identification::parse(&[b'/'; 200]), Err(FrameError::TooLong));
    }

    #[test]
    fn option_select_readout_and_programming() {
        // ACK '0' '5' '0' CR LF: normal protocol, 9600 baud, data readout.
        let readout = OptionSelect::new(b'5', OptionMode::Readout);
        assert_eq!(readout.encode().unwrap(), [0x06, 0x30, 0x35, 0x30, 0x0D, 0x0A]);
        let programming = OptionSelect::new(b'5', OptionMode::Programming);
        assert_eq!(programming.encode().unwrap(), [0x06, 0x30, 0x35, 0x31, 0x0D, 0x0A]);
        assert_eq!(
            OptionSelect::parse(&[0x06, 0x30, 0x35, 0x31, 0x0D, 0x0A]).unwrap(),
            Decoded::Complete(programming, 6)
        );
        assert_eq!(OptionSelect::parse(&[0x06, 0x30]).unwrap(), Decoded::Incomplete);
        let vendor = OptionSelect::parse(b"\x06056\r\n").unwrap();
        assert!(matches!(
            vendor,
            Decoded::Complete(
                OptionSelect {
                    mode: OptionMode::Manufacturer(b'6'),
                    ..
                },
                6
            )
        ));
        assert!(
            OptionSelect::new(b'5', OptionMode::Manufacturer(b'1'))
                .encode()
                .is_err()
        );
    }
}
