//! Fuzzing the Modbus decoders: the server's request framing (RTU with its
//! CRC, TCP with its MBAP header, the PDU) and the RTU master's answer
//! framing, fed valid frames from the encoders with bytes flipped, cut,
//! inserted and repeated. Each decoder must answer without panicking; what
//! it accepts must be a frame (its CRC verifies, its lengths agree with its
//! bytes) that encodes back to the bytes it came from. `docs/RELIABILITY.md`.

use proptest::prelude::*;

use super::frame::{
    ModbusFrameError, ModbusRequest, crc16, mbap_frame, parse_mbap, parse_pdu, parse_rtu, read_response, rtu_frame,
    write_multiple_response, write_single_response,
};
use super::rtu_client::{
    Answer, parse_answer, read_holding_request, read_holding_words, write_multiple_request, write_single_request,
};
use crate::protocol::fuzz_support::{config, mutate, mutations};

/// Cases per property in the suite's short run.
const SUITE_CASES: u32 = 4_000;

/// Bytes that matter to the framing: the broadcast unit, the supported
/// function codes, exception bits, byte counts at their limits.
const SPECIAL: &[u8] = &[
    0x00, 0x01, 0x03, 0x06, 0x0F, 0x10, 0x7F, 0x80, 0x83, 0x86, 0x90, 0xF6, 0xFE, 0xFF,
];

/// Whole pieces a noisy line or a confused device adds: a second frame's
/// start, a CRC of nothing, an MBAP header claiming the most bytes.
const TOKENS: &[&[u8]] = &[
    &[0x01, 0x03],
    &[0x01, 0x10, 0x00, 0x00, 0x00, 0x7B, 0xF6],
    &[0xFF, 0xFF],
    &[0x00, 0x00, 0x00, 0x00, 0x00, 0xFE],
    &[0x00, 0x01, 0x00, 0x00, 0x00, 0x01],
    &[0x01, 0x83, 0x02],
];

fn error_names_the_fault(error: &ModbusFrameError) {
    assert!(!error.to_string().is_empty());
    if let ModbusFrameError::Malformed(reason) = error {
        assert!(!reason.is_empty());
    }
}

/// The PDU a master sends for `request`, with the master's own encoders.
fn request_pdu(request: &ModbusRequest) -> Vec<u8> {
    match request {
        ModbusRequest::ReadHolding { start, count } => read_holding_request(*start, *count),
        ModbusRequest::WriteSingle { address, value } => write_single_request(*address, *value),
        ModbusRequest::WriteMultiple { start, values } => write_multiple_request(*start, values),
        ModbusRequest::Unsupported { function } => vec![*function, 0x00, 0x10, 0x00, 0x01],
    }
}

fn request() -> impl Strategy<Value = ModbusRequest> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(start, count)| ModbusRequest::ReadHolding { start, count }),
        (any::<u16>(), any::<u16>()).prop_map(|(address, value)| ModbusRequest::WriteSingle { address, value }),
        // Modbus Application Protocol 6.12: 1-123 registers per write.
        (any::<u16>(), proptest::collection::vec(any::<u16>(), 1..=123))
            .prop_map(|(start, values)| ModbusRequest::WriteMultiple { start, values }),
        // Functions with a fixed four-byte body the server does not serve.
        proptest::sample::select(&[1u8, 2, 4, 5][..]).prop_map(|function| ModbusRequest::Unsupported { function }),
    ]
}

/// An answer a device sends to a request of the returned function code.
fn answer() -> impl Strategy<Value = (u8, Vec<u8>)> {
    prop_oneof![
        proptest::collection::vec(any::<u16>(), 1..=125).prop_map(|words| (3, read_response(&words))),
        (any::<u16>(), any::<u16>()).prop_map(|(address, value)| (6, write_single_response(address, value))),
        (any::<u16>(), 1u16..=123).prop_map(|(start, count)| (16, write_multiple_response(start, count))),
        (proptest::sample::select(&[3u8, 6, 16][..]), 1u8..=11)
            .prop_map(|(function, code)| (function, vec![function | 0x80, code])),
    ]
}

/// Checks a request the RTU parser accepted from `bytes`.
fn check_rtu_request(bytes: &[u8], unit: u8, pdu: &[u8], len: usize) {
    assert!(len <= bytes.len(), "used {len} of {} bytes", bytes.len());
    assert_eq!(len, pdu.len() + 3);
    assert_eq!(bytes[0], unit);
    assert_eq!(&bytes[1..len - 2], pdu);
    // A frame followed by its CRC-16/MODBUS, low byte first, has residue 0.
    assert_eq!(crc16(&bytes[..len]), 0, "accepted a frame whose CRC does not verify");
    check_pdu(pdu);
}

/// Checks the PDU parser on `pdu`: a request it accepts encodes back to it.
fn check_pdu(pdu: &[u8]) {
    match parse_pdu(pdu) {
        Ok(ModbusRequest::Unsupported { function }) => {
            assert_eq!(Some(&function), pdu.first());
            assert!(![3, 6, 16].contains(&function));
        }
        Ok(request) => assert_eq!(request_pdu(&request), pdu),
        Err(error) => error_names_the_fault(&error),
    }
}

/// What a simulated device does with its receive buffer: take whole
/// requests off the front, drop a byte after garbage, wait when
/// incomplete. Each step consumes, so the loop ends.
fn resynchronise(mut buffer: &[u8]) {
    while !buffer.is_empty() {
        match parse_rtu(buffer) {
            Ok((unit, pdu, len)) => {
                check_rtu_request(buffer, unit, &pdu, len);
                buffer = &buffer[len..];
            }
            Err(ModbusFrameError::Incomplete) => {
                // Waiting for more never asks for more than the longest frame.
                assert!(buffer.len() < 9 + 255);
                return;
            }
            Err(error) => {
                error_names_the_fault(&error);
                buffer = &buffer[1..];
            }
        }
    }
}

proptest! {
    #![proptest_config(config(SUITE_CASES))]

    /// RTU requests as a master frames them, damaged, decoded by the
    /// device side's framing and PDU parser.
    #[test]
    fn rtu_requests_survive_damage(
        unit in prop_oneof![Just(0u8), 1u8..=247, any::<u8>()],
        request in request(),
        changes in mutations(SPECIAL, TOKENS, 4),
    ) {
        let pdu = request_pdu(&request);
        let frame = rtu_frame(unit, &pdu);
        let bytes = mutate(frame.clone(), &changes);
        match parse_rtu(&bytes) {
            Ok((got_unit, got_pdu, len)) => check_rtu_request(&bytes, got_unit, &got_pdu, len),
            Err(error) => error_names_the_fault(&error),
        }
        if changes.is_empty() {
            prop_assert_eq!(parse_rtu(&bytes), Ok((unit, pdu.clone(), frame.len())));
            prop_assert_eq!(parse_pdu(&pdu), Ok(request));
        }
        resynchronise(&bytes);
    }

    /// Several requests back to back, damaged, through a device's
    /// resynchronising receive loop.
    #[test]
    fn rtu_request_streams_resynchronise(
        frames in proptest::collection::vec((any::<u8>(), request()), 1..4),
        changes in mutations(SPECIAL, TOKENS, 6),
    ) {
        let stream: Vec<u8> = frames.iter().flat_map(|(unit, request)| rtu_frame(*unit, &request_pdu(request))).collect();
        resynchronise(&mutate(stream, &changes));
    }

    /// Modbus TCP requests, damaged, decoded by the MBAP framing.
    #[test]
    fn mbap_requests_survive_damage(
        transaction in any::<u16>(),
        unit in any::<u8>(),
        request in request(),
        changes in mutations(SPECIAL, TOKENS, 4),
    ) {
        let pdu = request_pdu(&request);
        let frame = mbap_frame(transaction, unit, &pdu);
        let bytes = mutate(frame.clone(), &changes);
        match parse_mbap(&bytes) {
            Ok((got_transaction, got_unit, got_pdu, len)) => {
                prop_assert!(len <= bytes.len());
                prop_assert_eq!(len, got_pdu.len() + 7);
                prop_assert!((1..=253).contains(&got_pdu.len()));
                prop_assert_eq!(&mbap_frame(got_transaction, got_unit, &got_pdu)[..], &bytes[..len]);
                check_pdu(&got_pdu);
            }
            Err(ModbusFrameError::Incomplete) => {
                // An MBAP header announces at most 254 bytes after itself.
                prop_assert!(bytes.len() < 6 + 254);
            }
            Err(error) => error_names_the_fault(&error),
        }
        if changes.is_empty() {
            prop_assert_eq!(parse_mbap(&bytes), Ok((transaction, unit, pdu, frame.len())));
        }
    }

    /// Answers as devices frame them, damaged, decoded by the RTU master
    /// for the function it asked with (or another).
    #[test]
    fn rtu_answers_survive_damage(
        unit in any::<u8>(),
        (function, pdu) in answer(),
        asked in prop_oneof![3 => Just(None), 1 => any::<u8>().prop_map(Some)],
        count in prop_oneof![Just(None), (0u16..=130).prop_map(Some)],
        changes in mutations(SPECIAL, TOKENS, 4),
    ) {
        let frame = rtu_frame(unit, &pdu);
        let bytes = mutate(frame.clone(), &changes);
        let asked = asked.unwrap_or(function);
        match parse_answer(&bytes, asked) {
            Ok((got_unit, answer, len)) => {
                prop_assert!(len <= bytes.len());
                prop_assert_eq!(got_unit, bytes[0]);
                prop_assert_eq!(crc16(&bytes[..len]), 0, "accepted an answer whose CRC does not verify");
                match answer {
                    Answer::Exception(code) => {
                        prop_assert_eq!(len, 5);
                        prop_assert_eq!(bytes[1], asked | 0x80);
                        prop_assert_eq!(bytes[2], code);
                    }
                    Answer::Pdu(got) => {
                        prop_assert_eq!(len, got.len() + 3);
                        prop_assert_eq!(&got[..], &bytes[1..len - 2]);
                        prop_assert_eq!(got[0], asked);
                        if asked == 3 {
                            let registers = count.unwrap_or(u16::from(got[1]) / 2);
                            match read_holding_words(&got, registers) {
                                Ok(words) => {
                                    prop_assert_eq!(words.len(), usize::from(registers));
                                    prop_assert_eq!(read_response(&words), got);
                                }
                                Err(error) => prop_assert!(!error.to_string().is_empty()),
                            }
                        }
                    }
                }
            }
            Err(ModbusFrameError::Incomplete) => {
                // The longest answer is an FC03 one: 5 bytes and 255 of data.
                prop_assert!(bytes.len() < 5 + 255);
            }
            Err(error) => error_names_the_fault(&error),
        }
        if changes.is_empty() && asked == function {
            let expected = if pdu[0] & 0x80 != 0 { Answer::Exception(pdu[1]) } else { Answer::Pdu(pdu.clone()) };
            prop_assert_eq!(parse_answer(&bytes, asked), Ok((unit, expected, frame.len())));
        }
    }
}

proptest! {
    // Each case runs every decoder over the whole input, a byte at a time
    // where a device resynchronises: a quarter of the cases in the suite.
    #![proptest_config(config(SUITE_CASES / 4))]

    /// Bytes with no structure at all, through every decoder.
    #[test]
    fn raw_bytes_never_panic(
        bytes in proptest::collection::vec(prop_oneof![any::<u8>(), proptest::sample::select(SPECIAL)], 0..160),
        asked in any::<u8>(),
        count in any::<u16>(),
    ) {
        resynchronise(&bytes);
        if let Err(error) = parse_mbap(&bytes) {
            error_names_the_fault(&error);
        }
        check_pdu(&bytes);
        let _ = parse_answer(&bytes, asked);
        let _ = read_holding_words(&bytes, count);
    }
}
