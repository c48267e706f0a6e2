//! Whole messages in each direction, decoded incrementally from the front
//! of a receive buffer.
//!
//! Noise before a message (wake-up NULs, line glitches after a baud switch,
//! stray CR LF) is skipped: bytes before the first possible start character
//! are counted in the consumed length of the next complete message. A
//! buffer of nothing but noise stays [`Decoded::Incomplete`] until it
//! reaches [`MAX_MESSAGE_LEN`], then the decoder answers
//! [`FrameError::TooLong`].

use super::frame::{ACK, Command, DataBlock, Decoded, EncodeError, FrameError, MAX_MESSAGE_LEN, NAK, SOH, STX};
use super::ident::{Identification, OptionSelect, SignOn};

/// What a meter sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterMessage {
    Identification(Identification),
    Ack,
    Nak,
    /// A readout, an answer to a read command, or an error answer such as
    /// `(ERROR)`.
    Data(DataBlock),
    /// A command from the meter, e.g. the password request `P0`.
    Command(Command),
}

impl MeterMessage {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self {
            Self::Identification(ident) => ident.encode(),
            Self::Ack => Ok(vec![ACK]),
            Self::Nak => Ok(vec![NAK]),
            Self::Data(block) => block.encode(),
            Self::Command(command) => command.encode(),
        }
    }
}

/// What a client (the head-end) sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    SignOn(SignOn),
    OptionSelect(OptionSelect),
    /// Next partial block, or acceptance.
    Ack,
    /// Repeat the last block.
    Nak,
    Command(Command),
}

impl ClientMessage {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self {
            Self::SignOn(sign_on) => sign_on.encode(),
            Self::OptionSelect(select) => select.encode(),
            Self::Ack => Ok(vec![ACK]),
            Self::Nak => Ok(vec![NAK]),
            Self::Command(command) => command.encode(),
        }
    }
}

/// Decodes the first message a meter sent in `buf`.
pub fn decode_from_meter(buf: &[u8]) -> Result<Decoded<MeterMessage>, FrameError> {
    let Some(start) = skip_noise(buf, &[b'/', ACK, NAK, STX, SOH])? else {
        return Ok(Decoded::Incomplete);
    };
    let message = &buf[start..];
    let decoded = match message[0] {
        b'/' => Identification::parse(message)?.map(MeterMessage::Identification),
        ACK => Decoded::Complete(MeterMessage::Ack, 1),
        NAK => Decoded::Complete(MeterMessage::Nak, 1),
        STX => DataBlock::parse(message)?.map(MeterMessage::Data),
        _ => Command::parse(message)?.map(MeterMessage::Command),
    };
    Ok(decoded.offset(start))
}

/// Decodes the first message a client sent in `buf`. A lone ACK (next
/// partial block) and the ACK that opens an option select look alike;
/// `expect_option_select` says which the session is waiting for (true right
/// after a mode C identification).
pub fn decode_from_client(buf: &[u8], expect_option_select: bool) -> Result<Decoded<ClientMessage>, FrameError> {
    let Some(start) = skip_noise(buf, &[b'/', ACK, NAK, SOH])? else {
        return Ok(Decoded::Incomplete);
    };
    let message = &buf[start..];
    let decoded = match message[0] {
        b'/' => SignOn::parse(message)?.map(ClientMessage::SignOn),
        ACK if expect_option_select => OptionSelect::parse(message)?.map(ClientMessage::OptionSelect),
        ACK => Decoded::Complete(ClientMessage::Ack, 1),
        NAK => Decoded::Complete(ClientMessage::Nak, 1),
        _ => Command::parse(message)?.map(ClientMessage::Command),
    };
    Ok(decoded.offset(start))
}

/// Index of the first byte that can start a message, if any.
fn skip_noise(buf: &[u8], starts: &[u8]) -> Result<Option<usize>, FrameError> {
    match buf.iter().take(MAX_MESSAGE_LEN).position(|b| starts.contains(b)) {
        Some(start) => Ok(Some(start)),
        None if buf.len() >= MAX_MESSAGE_LEN => Err(FrameError::TooLong),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::iec62056::frame::{CommandKind, EOT, ETX};
    use crate::protocol::iec62056::ident::OptionMode;

    fn complete<T: std::fmt::Debug>(decoded: Result<Decoded<T>, FrameError>) -> (T, usize) {
        match decoded {
            Ok(Decoded::Complete(value, used)) => (value, used),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn a_mode_c_readout_conversation_from_the_meter_side() {
        // Identification, then a readout whose BCC is worked out by hand:
        // "1.8.0(012345.67*kWh)\r\n!\r\n":
        // '1'^'.'^'8'^'.'^'0' = 0x39; ^'(' = 0x11; "012345" = 0x30^0x31^..^0x35
        // = 0x01 (six 0x30 cancel; 0^1^2^3^4^5 = 1) -> 0x10; '.' 0x2E -> 0x3E;
        // '6' 0x36 -> 0x08; '7' 0x37 -> 0x3F; '*' 0x2A -> 0x15; 'k' 0x6B ->
        // 0x7E; 'W' 0x57 -> 0x29; 'h' 0x68 -> 0x41; ')' 0x29 -> 0x68;
        // CR LF 0x07 -> 0x6F; '!' 0x21 -> 0x4E; CR LF -> 0x49; ETX -> 0x4A.
        let mut stream = b"/EMH5\\2LZQJL0011F\r\n".to_vec();
        stream.push(STX);
        stream.extend_from_slice(b"1.8.0(012345.67*kWh)\r\n!\r\n");
        stream.extend_from_slice(&[ETX, 0x4A]);

        let (ident, used) = complete(decode_from_meter(&stream));
        let MeterMessage::Identification(ident) = ident else {
            panic!("not an identification");
        };
        assert_eq!((ident.manufacturer.as_str(), ident.baud_rate()), ("EMH", 9600));
        let (data, rest) = complete(decode_from_meter(&stream[used..]));
        assert_eq!(used + rest, stream.len());
        assert_eq!(
            data,
            MeterMessage::Data(DataBlock {
                text: "1.8.0(012345.67*kWh)\r\n!\r\n".into(),
                last: true,
            })
        );
    }

    #[test]
    fn noise_before_a_message_is_consumed_with_it() {
        // Two NULs, a stray LF, then ACK.
        assert_eq!(
            decode_from_meter(&[0, 0, b'\n', ACK]).unwrap(),
            Decoded::Complete(MeterMessage::Ack, 4)
        );
        assert_eq!(decode_from_meter(&[0, 0x7F, 0]).unwrap(), Decoded::Incomplete);
        assert_eq!(decode_from_meter(&vec![0; MAX_MESSAGE_LEN]), Err(FrameError::TooLong));
        // Battery-meter wake-up: NULs before the sign-on.
        let mut wake = vec![0u8; 40];
        wake.extend_from_slice(b"/?!\r\n");
        assert_eq!(
            decode_from_client(&wake, false).unwrap(),
            Decoded::Complete(ClientMessage::SignOn(SignOn::default()), 45)
        );
    }

    #[test]
    fn lone_ack_versus_option_select() {
        let select = [ACK, b'0', b'5', b'1', b'\r', b'\n'];
        assert_eq!(
            decode_from_client(&select, false).unwrap(),
            Decoded::Complete(ClientMessage::Ack, 1)
        );
        assert_eq!(
            decode_from_client(&select, true).unwrap(),
            Decoded::Complete(
                ClientMessage::OptionSelect(OptionSelect::new(b'5', OptionMode::Programming)),
                6
            )
        );
        assert_eq!(decode_from_client(&[ACK], true).unwrap(), Decoded::Incomplete);
    }

    #[test]
    fn break_and_partial_blocks() {
        assert_eq!(
            decode_from_client(&[SOH, b'B', b'0', ETX, 0x71], false).unwrap(),
            Decoded::Complete(ClientMessage::Command(Command::break_session()), 5)
        );
        // STX "(1)" EOT BCC: '('^'1'^')' = 0x30; ^EOT = 0x34.
        let (partial, _) = complete(decode_from_meter(&[STX, b'(', b'1', b')', EOT, 0x34]));
        assert!(matches!(partial, MeterMessage::Data(DataBlock { last: false, .. })));
    }

    fn field(chars: &'static str, len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[{chars}]{{{},{}}}", len.start(), len.end())).unwrap()
    }

    fn block_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![4 => 0x20u8..0x7F, 1 => Just(b'\r'), 1 => Just(b'\n'), 1 => Just(ACK), 1 => Just(0u8)],
            0..80,
        )
        .prop_map(|bytes| String::from_utf8(bytes).unwrap())
    }

    fn command() -> impl Strategy<Value = Command> {
        (
            proptest::sample::select(CommandKind::ALL.to_vec()),
            proptest::option::of(block_text()),
        )
            .prop_map(|(kind, data)| Command { kind, data })
    }

    fn identification() -> impl Strategy<Value = Identification> {
        (
            field("A-Za-z", 3..=3),
            field("0-9A-Za-z", 1..=1),
            proptest::option::of(field("0-9A-Z", 1..=2)),
            field("A-Za-z0-9 .-", 0..=16),
        )
            .prop_map(|(manufacturer, z, capability, identification)| Identification {
                manufacturer,
                baud_char: z.as_bytes()[0],
                capability,
                identification,
            })
    }

    fn meter_message() -> impl Strategy<Value = MeterMessage> {
        prop_oneof![
            identification().prop_map(MeterMessage::Identification),
            Just(MeterMessage::Ack),
            Just(MeterMessage::Nak),
            (block_text(), any::<bool>()).prop_map(|(text, last)| MeterMessage::Data(DataBlock { text, last })),
            command().prop_map(MeterMessage::Command),
        ]
    }

    fn client_message() -> impl Strategy<Value = ClientMessage> {
        let mode = prop_oneof![
            Just(OptionMode::Readout),
            Just(OptionMode::Programming),
            Just(OptionMode::Binary),
            (b'6'..=b'9').prop_map(OptionMode::Manufacturer),
        ];
        prop_oneof![
            field("0-9A-Za-z ", 0..=32).prop_map(|address| ClientMessage::SignOn(SignOn { address })),
            (b'0'..=b'6', mode).prop_map(|(z, mode)| ClientMessage::OptionSelect(OptionSelect::new(z, mode))),
            Just(ClientMessage::Ack),
            Just(ClientMessage::Nak),
            command().prop_map(ClientMessage::Command),
        ]
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), flag in any::<bool>()) {
            let _ = decode_from_meter(&bytes);
            let _ = decode_from_client(&bytes, flag);
        }

        #[test]
        fn decoders_never_panic_on_plausible_bytes(
            bytes in proptest::collection::vec(
                prop_oneof![Just(SOH), Just(STX), Just(ETX), Just(EOT), Just(ACK), Just(b'/'), Just(b'\r'),
                            Just(b'\n'), Just(b'\\'), b'0'..=b'9', b'A'..=b'Z'],
                0..60),
            flag in any::<bool>(),
        ) {
            let _ = decode_from_meter(&bytes);
            let _ = decode_from_client(&bytes, flag);
        }

        #[test]
        fn meter_messages_round_trip(message in meter_message(), noise in proptest::collection::vec(0u8..=0, 0..3)) {
            let mut bytes = noise.clone();
            bytes.extend(message.encode().unwrap());
            prop_assert_eq!(decode_from_meter(&bytes).unwrap(), Decoded::Complete(message.clone(), bytes.len()));
            for len in 0..bytes.len() {
                prop_assert_eq!(decode_from_meter(&bytes[..len]).unwrap(), Decoded::Incomplete);
            }
        }

        #[test]
        fn client_messages_round_trip(message in client_message()) {
            let bytes = message.encode().unwrap();
            let select = matches!(message, ClientMessage::OptionSelect(_));
            prop_assert_eq!(
                decode_from_client(&bytes, select).unwrap(),
                Decoded::Complete(message.clone(), bytes.len())
            );
        }
    }
}
