//! Block framing: control characters, the block check character (BCC),
//! command messages (`SOH C D STX data ETX BCC`) and data messages
//! (`STX data ETX|EOT BCC`). IEC 62056-21:2002, 6.3 (message formats) and
//! 6.3.14 (command message identifiers); facts in `docs/PROTOCOLS.md`.

/// Start of header: opens a command message.
pub(crate) const SOH: u8 = 0x01;
/// Start of text: opens the data part of a block.
pub(crate) const STX: u8 = 0x02;
/// End of text: closes the last (or only) block.
pub(crate) const ETX: u8 = 0x03;
/// End of transmission: closes a partial block; more blocks follow.
pub(crate) const EOT: u8 = 0x04;
/// Acknowledge.
pub(crate) const ACK: u8 = 0x06;
/// Negative acknowledge: repeat the last block.
pub(crate) const NAK: u8 = 0x15;
/// Carriage return.
pub(crate) const CR: u8 = b'\r';
/// Line feed.
pub(crate) const LF: u8 = b'\n';

/// The most bytes a decoder looks at for one message before giving up with
/// [`FrameError::TooLong`], so a line of garbage never grows a buffer
/// forever. Larger than a readout needs because an EMH-style load profile
/// answer comes in one block: a month of 15-minute rows for four channels is
/// about 115 KB.
pub(crate) const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// Block check character: XOR of `bytes`, 7 bits (the line is 7E1; the
/// eighth bit on the wire is parity). Pass the bytes after the opening SOH
/// (or STX when there is no SOH) up to and including ETX or EOT.
pub fn bcc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, byte| acc ^ byte) & 0x7F
}

/// The answer of an incremental decoder. Not enough bytes yet is a normal
/// answer, not an error: read more and call again with the longer buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    Incomplete,
    /// The message and how many bytes of the buffer it used (including
    /// any noise skipped before it).
    Complete(T, usize),
}

impl<T> Decoded<T> {
    pub(super) fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        match self {
            Decoded::Incomplete => Decoded::Incomplete,
            Decoded::Complete(value, used) => Decoded::Complete(f(value), used),
        }
    }

    pub(super) fn offset(self, skipped: usize) -> Decoded<T> {
        match self {
            Decoded::Incomplete => Decoded::Incomplete,
            Decoded::Complete(value, used) => Decoded::Complete(value, used + skipped),
        }
    }
}

/// Why received bytes are not a message. The line is half duplex: after a
/// bad message nothing valid follows until we answer, so the caller drops
/// what it has buffered (and, for a bad BCC, asks for a repeat with NAK).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("block check character {found:#04x} does not match the computed {expected:#04x}")]
    BadBcc { expected: u8, found: u8 },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("no complete message within {MAX_MESSAGE_LEN} bytes")]
    TooLong,
}

/// Why a value of ours cannot be put on the wire. Encoders enforce the
/// standard's character sets and lengths; decoders are more tolerant of what
/// real meters send, as long as the framing stays unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {field}: {reason}")]
pub struct EncodeError {
    pub field: &'static str,
    pub reason: String,
}

impl EncodeError {
    pub(super) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Command message identifier and type (IEC 62056-21, 6.3.14 and 6.3.15):
/// two ASCII characters after SOH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// Meter to client: operand for the secure algorithm (password request).
    P0,
    /// Password in clear.
    P1,
    /// Result of the secure algorithm (encrypted password; verify per meter).
    P2,
    /// Read, ASCII coded.
    R1,
    /// Read, formatted.
    R2,
    /// Read, ASCII coded, answer in partial blocks.
    R3,
    /// Read, formatted, answer in partial blocks.
    R4,
    /// Manufacturer specific read (EMH-style: by OBIS code, load profile).
    R5,
    /// Manufacturer specific read, answer in partial blocks.
    R6,
    /// Write, ASCII coded.
    W1,
    /// Write, formatted.
    W2,
    /// Write, ASCII coded, partial block.
    W3,
    /// Write, formatted, partial block.
    W4,
    /// Manufacturer specific write (EMH-style: by OBIS code).
    W5,
    /// Execute, formatted.
    E2,
    /// Break: complete sign-off.
    B0,
}

impl CommandKind {
    /// Every kind, in wire order of the standard's table.
    pub const ALL: [CommandKind; 16] = [
        Self::P0,
        Self::P1,
        Self::P2,
        Self::R1,
        Self::R2,
        Self::R3,
        Self::R4,
        Self::R5,
        Self::R6,
        Self::W1,
        Self::W2,
        Self::W3,
        Self::W4,
        Self::W5,
        Self::E2,
        Self::B0,
    ];

    /// The two characters on the wire, e.g. `*b"R1"`.
    pub fn as_bytes(self) -> [u8; 2] {
        match self {
            Self::P0 => *b"P0",
            Self::P1 => *b"P1",
            Self::P2 => *b"P2",
            Self::R1 => *b"R1",
            Self::R2 => *b"R2",
            Self::R3 => *b"R3",
            Self::R4 => *b"R4",
            Self::R5 => *b"R5",
            Self::R6 => *b"R6",
            Self::W1 => *b"W1",
            Self::W2 => *b"W2",
            Self::W3 => *b"W3",
            Self::W4 => *b"W4",
            Self::W5 => *b"W5",
            Self::E2 => *b"E2",
            Self::B0 => *b"B0",
        }
    }

    /// The kind named by two wire characters; `None` for any other pair.
    pub fn parse(bytes: [u8; 2]) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_bytes() == bytes)
    }
}

/// A command message: `SOH C D STX data ETX BCC`, or `SOH C D ETX BCC`
/// when there is no data part (the break `SOH B0 ETX BCC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub kind: CommandKind,
    /// The data part, e.g. `(password)` or `1.8.0()`; `None` when the
    /// message has no STX at all. `Some("")` is an empty data part.
    pub data: Option<String>,
}

impl Command {
    pub fn new(kind: CommandKind, data: impl Into<String>) -> Self {
        Self {
            kind,
            data: Some(data.into()),
        }
    }

    /// `SOH B0 ETX BCC`: ends the session; the meter returns to 300 baud.
    pub fn break_session() -> Self {
        Self {
            kind: CommandKind::B0,
            data: None,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut frame = vec![SOH];
        frame.extend_from_slice(&self.kind.as_bytes());
        if let Some(data) = &self.data {
            check_block_text("command data", data)?;
            frame.push(STX);
            frame.extend_from_slice(data.as_bytes());
        }
        frame.push(ETX);
        frame.push(bcc(&frame[1..]));
        Ok(frame)
    }

    /// Decodes a command at the front of `buf`, which starts with SOH.
    pub fn parse(buf: &[u8]) -> Result<Decoded<Command>, FrameError> {
        debug_assert_eq!(buf.first(), Some(&SOH));
        let Some(&[c, d]) = buf.get(1..3) else {
            return Ok(Decoded::Incomplete);
        };
        let kind = CommandKind::parse([c, d])
            .ok_or_else(|| FrameError::Malformed(format!("unknown command {:?}", String::from_utf8_lossy(&[c, d]))))?;
        let Some(&after) = buf.get(3) else {
            return Ok(Decoded::Incomplete);
        };
        match after {
            ETX => {
                let Some(&found) = buf.get(4) else {
                    return Ok(Decoded::Incomplete);
                };
                check_bcc(&buf[1..4], found)?;
                Ok(Decoded::Complete(Command { kind, data: None }, 5))
            }
            STX => match decode_block(buf, 4)? {
                Decoded::Incomplete => Ok(Decoded::Incomplete),
                Decoded::Complete((_, false), _) => Err(FrameError::Malformed("command closed with EOT".into())),
                Decoded::Complete((text, true), used) => {
                    Ok(Decoded::Complete(Command { kind, data: Some(text) }, used))
                }
            },
            other => Err(FrameError::Malformed(format!(
                "command {kind:?} followed by {other:#04x}, not STX or ETX"
            ))),
        }
    }
}

/// A data message: `STX text ETX BCC`, or `STX text EOT BCC` for a partial
/// block with more to come (the client asks for the next one with ACK).
/// A full readout's text ends with `!\r\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlock {
    pub text: String,
    /// Closed with ETX (true) rather than EOT.
    pub last: bool,
}

impl DataBlock {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        check_block_text("data block", &self.text)?;
        let mut frame = Vec::with_capacity(self.text.len() + 3);
        frame.push(STX);
        frame.extend_from_slice(self.text.as_bytes());
        frame.push(if self.last { ETX } else { EOT });
        frame.push(bcc(&frame[1..]));
        Ok(frame)
    }

    /// Decodes a data message at the front of `buf`, which starts with STX.
    pub fn parse(buf: &[u8]) -> Result<Decoded<DataBlock>, FrameError> {
        debug_assert_eq!(buf.first(), Some(&STX));
        Ok(decode_block(buf, 1)?.map(|(text, last)| DataBlock { text, last }))
    }
}

/// Text inside a block: 7-bit ASCII without the framing characters.
fn check_block_text(field: &'static str, text: &str) -> Result<(), EncodeError> {
    match text
        .bytes()
        .find(|&b| !b.is_ascii() || matches!(b, SOH | STX | ETX | EOT))
    {
        Some(byte) => Err(EncodeError::new(
            field,
            format!("byte {byte:#04x} is not allowed inside a block"),
        )),
        None => Ok(()),
    }
}

fn check_bcc(covered: &[u8], found: u8) -> Result<(), FrameError> {
    let expected = bcc(covered);
    if expected == found {
        Ok(())
    } else {
        Err(FrameError::BadBcc { expected, found })
    }
}

/// Decodes the text of a block whose first byte (SOH or STX) is `buf[0]`
/// and whose text starts at `buf[text_start]`; the BCC covers `buf[1..]` up
/// to the closing ETX/EOT. Returns the text and whether ETX closed it.
fn decode_block(buf: &[u8], text_start: usize) -> Result<Decoded<(String, bool)>, FrameError> {
    // A message is at most MAX_MESSAGE_LEN bytes, the closing character
    // being the last but one.
    let window = &buf[..buf.len().min(MAX_MESSAGE_LEN - 1)];
    let Some(end) = window[text_start..]
        .iter()
        .position(|&b| b == ETX || b == EOT)
        .map(|at| at + text_start)
    else {
        return if window.len() == MAX_MESSAGE_LEN - 1 {
            Err(FrameError::TooLong)
        } else {
            Ok(Decoded::Incomplete)
        };
    };
    let Some(&found) = buf.get(end + 1) else {
        return Ok(Decoded::Incomplete);
    };
    check_bcc(&buf[1..=end], found)?;
    let text = &buf[text_start..end];
    if let Some(byte) = text.iter().find(|&&b| !b.is_ascii() || b == SOH || b == STX) {
        return Err(FrameError::Malformed(format!("byte {byte:#04x} inside a block")));
    }
    let text = String::from_utf8(text.to_vec()).expect("7-bit ASCII is UTF-8");
    Ok(Decoded::Complete((text, buf[end] == ETX), end + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_of_the_break_is_0x71() {
        // 'B' 0x42 ^ '0' 0x30 = 0x72; ^ ETX 0x03 = 0x71.
        assert_eq!(bcc(&[b'B', b'0', ETX]), 0x71);
        assert_eq!(Command::break_session().encode().unwrap(), [SOH, b'B', b'0', ETX, 0x71]);
    }

    #[test]
    fn bcc_drops_the_eighth_bit() {
        // 0x80 ^ 0x01 = 0x81, masked to 0x01.
        assert_eq!(bcc(&[0x80, 0x01]), 0x01);
        assert_eq!(bcc(&[]), 0);
    }

    #[test]
    fn password_command_matches_a_hand_computed_frame() {
        // SOH P1 STX (00000000) ETX BCC. XOR of 'P' 0x50 ^ '1' 0x31 = 0x61;
        // ^ STX = 0x63; '(' 0x28 ^ ')' 0x29 = 0x01, eight '0' cancel out,
        // so 0x62; ^ ETX = 0x61.
        let command = Command::new(CommandKind::P1, "(00000000)");
        let mut expected = vec![SOH, b'P', b'1', STX];
        expected.extend_from_slice(b"(00000000)");
        expected.extend_from_slice(&[ETX, 0x61]);
        assert_eq!(command.encode().unwrap(), expected);
        assert_eq!(
            Command::parse(&expected).unwrap(),
            Decoded::Complete(command, expected.len())
        );
    }

    #[test]
    fn password_request_from_the_meter() {
        // SOH P0 STX (1234567) ETX BCC. 'P'^'0' = 0x60, ^STX = 0x62,
        // '('^')' = 0x01 -> 0x63; '1'..'7' XOR to 0x30 (seven high nibbles
        // 0x30 leave 0x30; 1^2^..^7 = 0) -> 0x53; ^ETX = 0x50.
        let mut frame = vec![SOH, b'P', b'0', STX];
        frame.extend_from_slice(b"(1234567)");
        frame.extend_from_slice(&[ETX, 0x50]);
        let Decoded::Complete(command, used) = Command::parse(&frame).unwrap() else {
            panic!("incomplete");
        };
        assert_eq!(used, frame.len());
        assert_eq!(command.kind, CommandKind::P0);
        assert_eq!(command.data.as_deref(), Some("(1234567)"));
    }

    #[test]
    fn every_prefix_of_a_command_is_incomplete() {
        let frame = Command::new(CommandKind::R1, "1.8.0()").encode().unwrap();
        for len in 1..frame.len() {
            assert_eq!(Command::parse(&frame[..len]).unwrap(), Decoded::Incomplete, "{len}");
        }
    }

    #[test]
    fn a_flipped_bit_is_a_bad_bcc() {
        let mut frame = Command::new(CommandKind::W1, "C.1.0(12345678)").encode().unwrap();
        frame[6] ^= 0x01;
        assert!(matches!(Command::parse(&frame), Err(FrameError::BadBcc { .. })));
    }

    #[test]
    fn unknown_commands_and_eot_closed_commands_are_malformed() {
        assert!(matches!(
            Command::parse(&[SOH, b'X', b'9', ETX]),
            Err(FrameError::Malformed(_))
        ));
        // SOH R1 STX EOT BCC: 'R'^'1' = 0x63, ^STX = 0x61, ^EOT = 0x65.
        assert!(matches!(
            Command::parse(&[SOH, b'R', b'1', STX, EOT, 0x65]),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn readout_block_with_hand_computed_bcc() {
        // STX "0.0.0(1)\r\n!\r\n" ETX BCC.
        // '0'^'.'^'0'^'.'^'0' = '0' 0x30; ^'(' 0x28 = 0x18; ^'1' 0x31 = 0x29;
        // ^')' 0x29 = 0x00; CR^LF = 0x07; '!' 0x21 -> 0x26; CR^LF -> 0x21;
        // ^ETX -> 0x22.
        let text = "0.0.0(1)\r\n!\r\n";
        let mut frame = vec![STX];
        frame.extend_from_slice(text.as_bytes());
        frame.extend_from_slice(&[ETX, 0x22]);
        let block = DataBlock {
            text: text.into(),
            last: true,
        };
        assert_eq!(block.encode().unwrap(), frame);
        assert_eq!(DataBlock::parse(&frame).unwrap(), Decoded::Complete(block, frame.len()));
    }

    #[test]
    fn partial_block_ends_with_eot() {
        // STX "1.8.0(5)" EOT BCC: '1'^'.'^'8'^'.'^'0' = 0x39; ^'(' = 0x11;
        // ^'5' 0x35 = 0x24; ^')' = 0x0D; ^EOT = 0x09.
        let frame = [&[STX][..], b"1.8.0(5)", &[EOT, 0x09]].concat();
        let Decoded::Complete(block, used) = DataBlock::parse(&frame).unwrap() else {
            panic!("incomplete");
        };
        assert_eq!(
            (block.text.as_str(), block.last, used),
            ("1.8.0(5)", false, frame.len())
        );
        // The BCC byte may itself be a control character: for an empty
        // last block it is ETX (XOR of ETX alone), and must not be taken
        // for the end of the next block.
        let stream = [STX, ETX, ETX, STX, EOT, EOT];
        let empty_last = DataBlock {
            text: String::new(),
            last: true,
        };
        assert_eq!(DataBlock::parse(&stream).unwrap(), Decoded::Complete(empty_last, 3));
        assert!(matches!(DataBlock::parse(&stream[3..]).unwrap(), Decoded::Complete(b, 3) if !b.last));
    }

    #[test]
    fn framing_characters_cannot_be_encoded_inside_a_block() {
        let block = DataBlock {
            text: "a\u{3}b".into(),
            last: true,
        };
        assert!(block.encode().is_err());
        assert!(Command::new(CommandKind::W5, "é").encode().is_err());
    }

    #[test]
    fn an_endless_block_is_too_long() {
        let mut buf = vec![b'x'; MAX_MESSAGE_LEN + 10];
        buf[0] = STX;
        assert_eq!(DataBlock::parse(&buf), Err(FrameError::TooLong));
        assert_eq!(DataBlock::parse(&buf[..1000]), Ok(Decoded::Incomplete));
    }

    #[test]
    fn command_kinds_round_trip_through_their_characters() {
        for kind in CommandKind::ALL {
            assert_eq!(CommandKind::parse(kind.as_bytes()), Some(kind));
        }
        assert_eq!(CommandKind::parse(*b"B0"), Some(CommandKind::B0));
        assert_eq!(CommandKind::parse(*b"R7"), None);
    }
}
