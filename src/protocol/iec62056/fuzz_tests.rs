//! Fuzzing the IEC 62056-21 decoders: whole messages in both directions
//! (identification, sign-on, option select, data blocks and commands with
//! their BCC), the data sets `C.D.E(value*unit)` of a readout, and EMH-style
//! load profile answers and requests. Inputs are valid messages from the
//! encoders and from real meters' bytes, damaged, or text built from the
//! grammar's pieces put together wrongly (odd spacing, huge numbers, long
//! values, missing brackets, non-ASCII). Each decoder must answer without
//! panicking; what it accepts must encode back to the bytes it came from
//! and stay within bounds set by its input. `docs/RELIABILITY.md`.

use proptest::prelude::*;

use super::dataset::{
    DataSet, DataSetError, DataValue, MAX_ADDRESS_LEN, MAX_UNIT_LEN, MAX_VALUE_LEN, format_data_sets, parse_data_sets,
    parse_timestamp,
};
use super::frame::{ACK, CR, Command, CommandKind, DataBlock, Decoded, EOT, ETX, FrameError, LF, NAK, SOH, STX};
use super::ident::{Identification, OptionMode, OptionSelect, SignOn};
use super::message::{ClientMessage, MeterMessage, decode_from_client, decode_from_meter};
use super::profile_block::{LoadProfileBlock, ProfileError, ProfileRequest, format_load_profile, parse_load_profile};
use crate::protocol::fuzz_support::{config, mutate, mutations};

/// Cases per property in the suite's short run.
const SUITE_CASES: u32 = 3_000;

/// Bytes that matter to the framing and the grammar.
const SPECIAL: &[u8] = &[
    SOH, STX, ETX, EOT, ACK, NAK, CR, LF, 0x00, 0x7F, 0x80, 0xFF, b'/', b'?', b'!', b'\\', b'(', b')', b'*', b'&',
    b';', b'.', b':', b'-', b' ', b'\t', b'0', b'9',
];

/// Pieces of the grammar and what breaks it: huge numbers, values and
/// addresses past the standard's lengths, non-ASCII text, exponents.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"!\r\n",
    b"/?!\r\n",
    b"(",
    b")",
    b"()",
    b"*kWh",
    b"(ERROR)",
    b"(#0001)",
    b"1-1:1.8.0*101",
    b"P.01",
    b"(02211221500)",
    b"999999999999999999999999999999999999999999999999999999999999",
    // More digits than an f64 holds: 10^400.
    b"1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
      0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    b"4294967295",
    b"-0.00000000000000000000000000001",
    b"1e308",
    b"inf",
    b"NaN",
    b"   ",
    "é".as_bytes(),
    "Ω∞".as_bytes(),
    b"0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
    &[SOH, b'B', b'0', ETX, 0x71],
    &[STX, ETX, ETX],
];

/// Identification lines as meters send them: an Iskra MT174, a Landis+Gyr
/// ZMD with the HDLC capability, an EMH LZQJ, the simulated TH40C.
const IDENTIFICATIONS: &[&[u8]] = &[
    b"/ISk5MT174-0001\r\n",
    b"/LGZ4\\2ZMD3104100.B33\r\n",
    b"/EMH5\\2LZQJL0011F\r\n",
    b"/THM5TH40C\r\n",
];

/// Readout texts in the forms real meters write.
const READOUTS: &[&str] = &[
    "F.F(00000000)\r\nC.1.0(12345678)\r\n0.9.1(153000)\r\n1-1:1.8.0*101(000123.4*kWh)\r\n1.8.0&04(000099.0*kWh)\r\n\
     1.6.0(0012.345*kW)(2211221530)\r\n1.8.1(001.0*kWh)1.8.2(002.0*kWh)\r\nC.90.2()\r\n32.7.0(ERROR)\r\n!\r\n",
    "0.0.0(1)\r\n!\r\n",
    "P.01(1)\n(0.5)(1.5)\n",
];

/// EMH-style load profile answers.
const LOAD_PROFILES: &[&str] = &[
    "P.01(0221122150000)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n(0.120)(0.000)\r\n()(0.000)\r\n\
     P.01(1230326030000)(08)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n(1.5)(-0.25)\r\n",
    "P.01(0240101000000)(00)(60)(1)(1-1:1.29.0)(kWh)\r\n(12.5)\r\n(7)\r\n!\r\n",
];

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "1.8.0",
                "F.F",
                "C.1.0",
                "0.9.1",
                "1-1:1.8.0*101",
                "1.8.0&04",
                "32.7.0",
                ""
            ][..]
        )
        .prop_map(String::from),
        "[0-9]-[0-9]:[0-9C]{1,2}\\.[0-9]{1,2}\\.[0-9](\\*[0-9]{1,3})?",
    ]
}

fn value() -> impl Strategy<Value = DataValue> {
    (
        prop_oneof![
            "[0-9]{1,8}\\.[0-9]{1,4}",
            "[0-9A-Za-z.:, #-]{0,32}",
            Just("ERROR".to_string()),
        ],
        proptest::option::of(prop_oneof![
            proptest::sample::select(&["kWh", "kW", "V", "A", "kvarh", "Hz"][..]).prop_map(String::from),
            "[A-Za-z0-9]{0,16}",
        ]),
    )
        .prop_map(|(value, unit)| DataValue { value, unit })
}

fn data_sets() -> impl Strategy<Value = Vec<DataSet>> {
    proptest::collection::vec(
        (address(), proptest::collection::vec(value(), 1..4)).prop_map(|(address, values)| DataSet { address, values }),
        0..8,
    )
}

/// Text assembled from the grammar's pieces in any order.
fn grammar_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => address().prop_map(String::into_bytes),
        4 => value().prop_map(|v| match v.unit {
            Some(unit) => format!("({}*{unit})", v.value).into_bytes(),
            None => format!("({})", v.value).into_bytes(),
        }),
        6 => proptest::sample::select(TOKENS).prop_map(<[u8]>::to_vec),
        2 => proptest::sample::select(SPECIAL).prop_map(|byte| vec![byte]),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| lossy(&pieces.concat()))
}

/// A readout or load profile text: valid, from fixtures, or assembled.
fn block_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => data_sets().prop_map(|sets| format_data_sets(&sets).expect("generated sets are valid")),
        1 => proptest::sample::select(READOUTS).prop_map(String::from),
        1 => proptest::sample::select(LOAD_PROFILES).prop_map(String::from),
        2 => grammar_text(),
    ]
}

fn identification() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::sample::select(IDENTIFICATIONS).prop_map(<[u8]>::to_vec),
        (
            "[A-Za-z]{3}",
            prop_oneof![b'0'..=b'6', b'A'..=b'F', Just(b'x')],
            proptest::option::of("[0-9A-Z@]{1,2}"),
            "[A-Za-z0-9 .-]{0,16}",
        )
            .prop_map(|(manufacturer, baud_char, capability, identification)| {
                Identification {
                    manufacturer,
                    baud_char,
                    capability,
                    identification,
                }
                .encode()
                .expect("generated identifications are valid")
            }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let data = prop_oneof![
        Just(None),
        proptest::sample::select(
            &[
                "(00000000)",
                "1.8.0()",
                "C.1.0(12345678)",
                "0.9.1(123000)",
                "P.01(02211221500;12306010015)",
                ""
            ][..]
        )
        .prop_map(|data| Some(data.to_string())),
        "[ -~]{0,40}".prop_map(Some),
    ];
    (proptest::sample::select(&CommandKind::ALL[..]), data).prop_map(|(kind, data)| Command { kind, data })
}

/// Load profile blocks as a meter writes them, the period up to the
/// largest the header's digits can say.
fn load_profile_blocks() -> impl Strategy<Value = Vec<LoadProfileBlock>> {
    let block = (
        0u8..=99,
        0i64..3_000_000_000,
        0u8..=2,
        prop_oneof![Just(15u32), Just(60), Just(1440), any::<u32>()],
        proptest::collection::vec(
            proptest::sample::select(
                &[
                    ("1.5.0", "kW"),
                    ("2.5.0", "kW"),
                    ("1-1:1.29.0", "kWh"),
                    ("5.5.0", "kvar"),
                ][..],
            ),
            1..4,
        ),
        proptest::collection::vec(proptest::option::of(-1_000_000i64..1_000_000), 0..48),
    )
        .prop_map(|(profile, seconds, season, period_minutes, channels, values)| {
            let width = channels.len();
            LoadProfileBlock {
                profile,
                start: chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    + chrono::TimeDelta::seconds(seconds),
                season,
                status: "00".into(),
                period_minutes,
                channels: channels
                    .into_iter()
                    .map(|(obis, unit)| (obis.into(), unit.into()))
                    .collect(),
                rows: values
                    .chunks_exact(width)
                    .map(|row| row.iter().map(|v| v.map(|v| v as f64 / 1000.0)).collect())
                    .collect(),
            }
        });
    proptest::collection::vec(block, 0..3)
}

/// The bytes of something a meter sends.
fn meter_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => identification(),
        1 => Just(vec![ACK]),
        1 => Just(vec![NAK]),
        4 => (block_text(), any::<bool>()).prop_map(|(mut text, last)| {
            // A block carries 7-bit text without framing characters.
            text.retain(|c| c.is_ascii() && !matches!(c as u8, SOH | STX | ETX | EOT));
            DataBlock { text, last }.encode().expect("block text is valid")
        }),
        2 => command().prop_map(|command| command.encode().expect("generated commands are valid")),
    ]
}

/// The bytes of something a client sends, and whether an option select is
/// expected.
fn client_bytes() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let mode = prop_oneof![
        Just(OptionMode::Readout),
        Just(OptionMode::Programming),
        Just(OptionMode::Binary),
        (b'6'..=b'9').prop_map(OptionMode::Manufacturer),
    ];
    prop_oneof![
        "[0-9A-Za-z ]{0,32}".prop_map(|address| (SignOn { address }.encode().expect("valid address"), false)),
        (b'0'..=b'6', mode).prop_map(|(z, mode)| (OptionSelect::new(z, mode).encode().expect("valid select"), true)),
        Just((vec![ACK], false)),
        Just((vec![NAK], false)),
        command().prop_map(|command| (command.encode().expect("generated commands are valid"), false)),
    ]
}

/// Wake-up NULs, line noise after a baud switch, stray line ends.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![Just(0u8), Just(0x7F), Just(CR), Just(LF), Just(0xFF)], 0..4)
}

fn frame_error_names_the_fault(error: &FrameError) {
    assert!(!error.to_string().is_empty());
    if let FrameError::Malformed(reason) = error {
        assert!(!reason.is_empty());
    }
}

/// A message decoded from the front of `bytes`, `used` bytes long, that
/// encodes as `encoded` (when our encoder accepts it): those bytes are its
/// encoding after noise that holds no start character.
fn check_consumed(bytes: &[u8], used: usize, encoded: Option<Vec<u8>>, starts: &[u8]) {
    assert!(used >= 1, "a complete message uses at least one byte");
    assert!(used <= bytes.len(), "used {used} of {} bytes", bytes.len());
    if let Some(encoded) = encoded {
        assert!(
            bytes[..used].ends_with(&encoded),
            "decoded {:?} from {:?}",
            lossy(&encoded),
            lossy(&bytes[..used])
        );
        let noise = &bytes[..used - encoded.len()];
        assert!(!noise.iter().any(|b| starts.contains(b)), "skipped a start character");
    }
}

/// Decodes a receive buffer as the session does: a whole message off the
/// front, the buffer dropped after an error, a wait when incomplete.
fn check_meter_stream(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match decode_from_meter(bytes) {
            Ok(Decoded::Complete(message, used)) => {
                check_consumed(bytes, used, message.encode().ok(), &[b'/', ACK, NAK, STX, SOH]);
                if let MeterMessage::Data(block) = &message {
                    check_data_sets(&block.text);
                    check_load_profile(&block.text);
                }
                if let MeterMessage::Command(Command { data: Some(data), .. }) = &message {
                    check_profile_request(data);
                }
                bytes = &bytes[used..];
            }
            Ok(Decoded::Incomplete) => return,
            Err(error) => return frame_error_names_the_fault(&error),
        }
    }
}

fn check_client_stream(mut bytes: &[u8], expect_option_select: bool) {
    while !bytes.is_empty() {
        match decode_from_client(bytes, expect_option_select) {
            Ok(Decoded::Complete(message, used)) => {
                check_consumed(bytes, used, message.encode().ok(), &[b'/', ACK, NAK, SOH]);
                if let ClientMessage::Command(Command { data: Some(data), .. }) = &message {
                    check_data_sets(data);
                    check_profile_request(data);
                }
                bytes = &bytes[used..];
            }
            Ok(Decoded::Incomplete) => return,
            Err(error) => return frame_error_names_the_fault(&error),
        }
    }
}

/// Data sets accepted from `text` keep the standard's limits, number at
/// most one per two characters (each has a bracket pair) and format back to
/// text that decodes to them.
fn check_data_sets(text: &str) {
    match parse_data_sets(text) {
        Ok(sets) => {
            assert!(
                sets.len() <= text.len() / 2,
                "{} sets from {} bytes",
                sets.len(),
                text.len()
            );
            for set in &sets {
                assert!(set.address.len() <= MAX_ADDRESS_LEN);
                assert!(!set.values.is_empty());
                for value in &set.values {
                    assert!(value.value.len() <= MAX_VALUE_LEN);
                    assert!(value.unit.as_ref().is_none_or(|unit| unit.len() <= MAX_UNIT_LEN));
                    if let Some(number) = value.number() {
                        assert!(number.is_finite(), "{:?} read as {number}", value.value);
                    }
                    let _ = parse_timestamp(&value.value);
                    let _ = value.is_error();
                }
            }
            let again = format_data_sets(&sets).expect("decoded data sets format");
            assert_eq!(parse_data_sets(&again).expect("formatted data sets decode"), sets);
        }
        Err(DataSetError::Line { line, reason }) => {
            assert!((1..=text.split('\n').count()).contains(&line), "line {line}");
            assert!(!reason.is_empty());
        }
        Err(error @ DataSetError::Invalid { .. }) => panic!("decoding answered an encoding error: {error}"),
    }
}

/// Blocks accepted from `text` hold one header or row per line, rows as
/// wide as their header, finite values, a stamp for every row, and format
/// back (when they can be written) to text that decodes to them.
fn check_load_profile(text: &str) {
    match parse_load_profile(text) {
        Ok(blocks) => {
            let lines = text.split('\n').count();
            let rows: usize = blocks.iter().map(|block| block.rows.len()).sum();
            assert!(blocks.len() + rows <= lines);
            for block in &blocks {
                assert!(!block.channels.is_empty());
                assert!(block.channels.len() <= text.len() / 4);
                assert!(block.season <= 9 && block.profile <= 99);
                for (index, row) in block.rows.iter().enumerate() {
                    assert_eq!(row.len(), block.channels.len());
                    assert!(row.iter().flatten().all(|value| value.is_finite()), "{row:?}");
                    let _ = block.row_time(index);
                }
            }
            if let Ok(again) = format_load_profile(&blocks) {
                assert_eq!(parse_load_profile(&again).expect("formatted blocks decode"), blocks);
            }
        }
        Err(ProfileError::Line { line, reason }) => {
            assert!((1..=text.split('\n').count()).contains(&line), "line {line}");
            assert!(!reason.is_empty());
        }
        Err(ProfileError::Refused(answer)) => assert!(!answer.is_empty()),
        Err(error) => panic!("decoding answered an encoding error: {error}"),
    }
}

/// A load profile request accepted from `data` is exactly what we would
/// send for it.
fn check_profile_request(data: &str) {
    match ProfileRequest::parse(data) {
        Ok(request) => assert_eq!(request.encode().expect("decoded requests encode"), data),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}

proptest! {
    #![proptest_config(config(SUITE_CASES))]

    /// Messages from a meter, after noise, damaged.
    #[test]
    fn meter_messages_survive_damage(
        noise in noise(),
        message in meter_bytes(),
        changes in mutations(SPECIAL, TOKENS, 4),
    ) {
        let bytes = mutate([noise.as_slice(), &message].concat(), &changes);
        check_meter_stream(&bytes);
        if changes.is_empty() {
            let Ok(Decoded::Complete(_, used)) = decode_from_meter(&bytes) else {
                panic!("a valid message did not decode: {:?}", lossy(&bytes));
            };
            prop_assert_eq!(used, bytes.len());
        }
    }

    /// A meter's whole conversation (identification, readout, answers)
    /// back to back, damaged.
    #[test]
    fn meter_streams_survive_damage(
        messages in proptest::collection::vec(meter_bytes(), 1..4),
        changes in mutations(SPECIAL, TOKENS, 6),
    ) {
        check_meter_stream(&mutate(messages.concat(), &changes));
    }

    /// Messages from a client, damaged, decoded with and without an option
    /// select expected.
    #[test]
    fn client_messages_survive_damage(
        noise in noise(),
        (message, select) in client_bytes(),
        changes in mutations(SPECIAL, TOKENS, 4),
        flip_expectation in any::<bool>(),
    ) {
        let bytes = mutate([noise.as_slice(), &message].concat(), &changes);
        check_client_stream(&bytes, select != flip_expectation);
        if changes.is_empty() && !flip_expectation {
            let Ok(Decoded::Complete(_, used)) = decode_from_client(&bytes, select) else {
                panic!("a valid message did not decode: {:?}", lossy(&bytes));
            };
            prop_assert_eq!(used, bytes.len());
        }
    }

    /// Readout text, valid or assembled, damaged, as data sets.
    #[test]
    fn data_set_text_survives_damage(text in block_text(), changes in mutations(SPECIAL, TOKENS, 4)) {
        check_data_sets(&lossy(&mutate(text.into_bytes(), &changes)));
    }

    /// Load profile answers, valid or assembled, damaged.
    #[test]
    fn load_profile_text_survives_damage(
        text in prop_oneof![
            2 => load_profile_blocks().prop_map(|blocks| format_load_profile(&blocks).expect("generated blocks are valid")),
            1 => proptest::sample::select(LOAD_PROFILES).prop_map(String::from),
            1 => block_text(),
        ],
        changes in mutations(SPECIAL, TOKENS, 4),
    ) {
        check_load_profile(&lossy(&mutate(text.into_bytes(), &changes)));
    }

    /// Load profile requests, damaged.
    #[test]
    fn profile_requests_survive_damage(
        request in prop_oneof![
            Just("P.01(02211221500;12306010015)"),
            Just("P.98(;)"),
            Just("P.02(02402291200;)"),
        ],
        changes in mutations(SPECIAL, TOKENS, 3),
    ) {
        check_profile_request(&lossy(&mutate(request.as_bytes().to_vec(), &changes)));
    }
}

proptest! {
    // Each case runs every decoder over the whole input, a byte at a time
    // where a device resynchronises: a quarter of the cases in the suite.
    #![proptest_config(config(SUITE_CASES / 4))]

    /// Bytes with no structure at all, through every decoder.
    #[test]
    fn raw_bytes_never_panic(
        bytes in proptest::collection::vec(
            prop_oneof![any::<u8>(), proptest::sample::select(SPECIAL)], 0..200),
        expect_option_select in any::<bool>(),
    ) {
        check_meter_stream(&bytes);
        check_client_stream(&bytes, expect_option_select);
        let text = lossy(&bytes);
        check_data_sets(&text);
        check_load_profile(&text);
        check_profile_request(&text);
    }
}
