//! Modbus frames, server side: requests in, responses out. Pure functions
//! over bytes (Modbus Application Protocol v1.1b3; Modbus over serial line
//! v1.02 for RTU framing and the CRC).

/// Modbus exception codes a server answers with (Modbus application
/// protocol v1.1b3, 7: every code it defines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    IllegalFunction = 0x01,
    IllegalDataAddress = 0x02,
    IllegalDataValue = 0x03,
    /// An unrecoverable error while the server acted on the request.
    ServerDeviceFailure = 0x04,
    /// Accepted, but long to process: the client asks again later.
    Acknowledge = 0x05,
    /// Busy with a long command: the client sends the request again later.
    ServerDeviceBusy = 0x06,
    /// Parity error reading its extended memory (functions 20 and 21).
    MemoryParityError = 0x08,
    /// A gateway found no path to the target device.
    GatewayPathUnavailable = 0x0A,
    /// A gateway got no answer from the target device.
    GatewayTargetFailedToRespond = 0x0B,
}

impl Exception {
    /// Every code, in order.
    pub const ALL: [Exception; 9] = [
        Exception::IllegalFunction,
        Exception::IllegalDataAddress,
        Exception::IllegalDataValue,
        Exception::ServerDeviceFailure,
        Exception::Acknowledge,
        Exception::ServerDeviceBusy,
        Exception::MemoryParityError,
        Exception::GatewayPathUnavailable,
        Exception::GatewayTargetFailedToRespond,
    ];

    /// The exception of `code`, if the protocol defines one.
    pub fn from_code(code: u8) -> Option<Exception> {
        Exception::ALL.into_iter().find(|exception| *exception as u8 == code)
    }
}

/// A request PDU the simulators understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModbusRequest {
    /// FC03: read holding registers.
    ReadHolding { start: u16, count: u16 },
    /// FC06: write one register.
    WriteSingle { address: u16, value: u16 },
    /// FC16: write several registers.
    WriteMultiple { start: u16, values: Vec<u16> },
    /// Any other function code: answered with exception 01.
    Unsupported { function: u8 },
}

/// Why bytes are not a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModbusFrameError {
    #[error("more bytes needed")]
    Incomplete,
    #[error("CRC mismatch")]
    BadCrc,
    #[error("malformed PDU: {0}")]
    Malformed(&'static str),
}

/// CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF), sent low byte first.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

fn word(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// Parses a request PDU (function code first).
pub fn parse_pdu(pdu: &[u8]) -> Result<ModbusRequest, ModbusFrameError> {
    let (&function, body) = pdu.split_first().ok_or(ModbusFrameError::Malformed("empty PDU"))?;
    match function {
        3 | 6 => {
            if body.len() != 4 {
                return Err(ModbusFrameError::Malformed("function 3 and 6 carry four bytes"));
            }
            let (a, b) = (word(body, 0), word(body, 2));
            Ok(if function == 3 {
                ModbusRequest::ReadHolding { start: a, count: b }
            } else {
                ModbusRequest::WriteSingle { address: a, value: b }
            })
        }
        16 => {
            if body.len() < 5 {
                return Err(ModbusFrameError::Malformed("function 16 header is five bytes"));
            }
            let (start, count, byte_count) = (word(body, 0), word(body, 2), usize::from(body[4]));
            if byte_count != usize::from(count) * 2 || body.len() != 5 + byte_count {
                return Err(ModbusFrameError::Malformed(
                    "function 16 byte count disagrees with register count",
                ));
            }
            let values = body[5..]
                .chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            Ok(ModbusRequest::WriteMultiple { start, values })
        }
        function => Ok(ModbusRequest::Unsupported { function }),
    }
}

/// Length of the RTU request starting at `bytes[0]` (unit), if known yet.
fn rtu_request_len(bytes: &[u8]) -> Result<usize, ModbusFrameError> {
    let function = *bytes.get(1).ok_or(ModbusFrameError::Incomplete)?;
    match function {
        // unit, function, 4 bytes, CRC
        1..=6 => Ok(8),
        15 | 16 => {
            let byte_count = *bytes.get(6).ok_or(ModbusFrameError::Incomplete)?;
            Ok(9 + usize::from(byte_count))
        }
        _ => Err(ModbusFrameError::Malformed("unknown function code")),
    }
}

/// Checks the front of an RTU byte stream for one whole request. Returns the
/// unit, the PDU and the frame's length. `Incomplete` asks for more bytes;
/// other errors tell the caller to drop a byte and look again (resync), as a
/// device does after a garbled frame.
pub fn parse_rtu(bytes: &[u8]) -> Result<(u8, Vec<u8>, usize), ModbusFrameError> {
    let len = rtu_request_len(bytes)?;
    if bytes.len() < len {
        return Err(ModbusFrameError::Incomplete);
    }
    let (frame, crc) = bytes[..len].split_at(len - 2);
    if crc16(frame) != u16::from_le_bytes([crc[0], crc[1]]) {
        return Err(ModbusFrameError::BadCrc);
    }
    Ok((frame[0], frame[1..].to_vec(), len))
}

/// Builds an RTU frame: unit, PDU, CRC low byte first.
pub fn rtu_frame(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(pdu.len() + 3);
    frame.push(unit);
    frame.extend_from_slice(pdu);
    let crc = crc16(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame
}

/// Parses one Modbus TCP ADU: (transaction id, unit, PDU, length).
pub fn parse_mbap(bytes: &[u8]) -> Result<(u16, u8, Vec<u8>, usize), ModbusFrameError> {
    if bytes.len() < 7 {
        return Err(ModbusFrameError::Incomplete);
    }
    let (transaction, protocol, length) = (word(bytes, 0), word(bytes, 2), usize::from(word(bytes, 4)));
    if protocol != 0 || !(2..=254).contains(&length) {
        return Err(ModbusFrameError::Malformed("not a Modbus TCP header"));
    }
    if bytes.len() < 6 + length {
        return Err(ModbusFrameError::Incomplete);
    }
    Ok((transaction, bytes[6], bytes[7..6 + length].to_vec(), 6 + length))
}

/// Builds a Modbus TCP ADU.
pub fn mbap_frame(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(pdu.len() + 7);
    frame.extend_from_slice(&transaction.to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
    frame.push(unit);
    frame.extend_from_slice(pdu);
    frame
}

/// The PDU answering a read with `words`.
pub fn read_response(words: &[u16]) -> Vec<u8> {
    let mut pdu = vec![3, (words.len() * 2) as u8];
    for value in words {
        pdu.extend_from_slice(&value.to_be_bytes());
    }
    pdu
}

/// The PDU answering FC06 (an echo of the request).
pub fn write_single_response(address: u16, value: u16) -> Vec<u8> {
    let mut pdu = vec![6];
    pdu.extend_from_slice(&address.to_be_bytes());
    pdu.extend_from_slice(&value.to_be_bytes());
    pdu
}

/// The PDU answering FC16.
pub fn write_multiple_response(start: u16, count: u16) -> Vec<u8> {
    let mut pdu = vec![16];
    pdu.extend_from_slice(&start.to_be_bytes());
    pdu.extend_from_slice(&count.to_be_bytes());
    pdu
}

/// An exception PDU: function code with the high bit set, then the code.
pub fn exception_response(function: u8, exception: Exception) -> Vec<u8> {
    vec![function | 0x80, exception as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TH40C manual, App. E: reading 0x8010 from unit 1.
    #[test]
    fn parses_the_manual_read_request() {
        let frame = rtu_frame(1, &[0x03, 0x80, 0x10, 0x00, 0x02]);
        assert_eq!(frame, vec![0x01, 0x03, 0x80, 0x10, 0x00, 0x02, 0xEC, 0x0E]);
        let (unit, pdu, len) = parse_rtu(&frame).unwrap();
        assert_eq!((unit, len), (1, 8));
        assert_eq!(
            parse_pdu(&pdu).unwrap(),
            ModbusRequest::ReadHolding {
                start: 0x8010,
                count: 2
            }
        );
    }

    /// The manual's text prints the request as `01 03 80 10 00 02 EC` and the
    /// answer as `01 03 04 3E C7 AE 14 3A 0E 49`: the request's CRC is EC 0E
    /// and the answer's 3A 49, the 0E having slipped into the wrong example.
    #[test]
    fn builds_the_manual_read_answer() {
        let frame = rtu_frame(1, &read_response(&[0x3EC7, 0xAE14]));
        assert_eq!(frame, vec![0x01, 0x03, 0x04, 0x3E, 0xC7, 0xAE, 0x14, 0x3A, 0x49]);
    }

    /// App. E: change the address of meter 1 to 2: `01 06 C0 35 00 02 24 05`.
    #[test]
    fn parses_the_manual_address_change() {
        let bytes = [0x01, 0x06, 0xC0, 0x35, 0x00, 0x02, 0x24, 0x05];
        let (unit, pdu, _) = parse_rtu(&bytes).unwrap();
        assert_eq!(unit, 1);
        assert_eq!(
            parse_pdu(&pdu).unwrap(),
            ModbusRequest::WriteSingle {
                address: 0xC035,
                value: 2
            }
        );
    }

    /// App. E prints the answer to that change as `02 06 C0 24 36 35 00 02`:
    /// the bytes of `02 06 C0 35 00 02` with its CRC, 24 36, shifted into the
    /// middle by the text extraction. The manual's request CRC (24 05) agrees
    /// with CRC-16/MODBUS.
    #[test]
    fn builds_the_manual_address_change_answer_from_the_new_address() {
        assert_eq!(crc16(&[0x01, 0x06, 0xC0, 0x35, 0x00, 0x02]).to_le_bytes(), [0x24, 0x05]);
        let frame = rtu_frame(2, &write_single_response(0xC035, 2));
        assert_eq!(frame, vec![0x02, 0x06, 0xC0, 0x35, 0x00, 0x02, 0x24, 0x36]);
    }

    #[test]
    fn unknown_functions_and_bad_byte_counts() {
        assert_eq!(
            parse_pdu(&[0x04, 0x80, 0x10, 0x00, 0x02]),
            Ok(ModbusRequest::Unsupported { function: 4 })
        );
        assert!(matches!(
            parse_pdu(&[0x10, 0x70, 0x00, 0x00, 0x03, 0x04, 0, 0, 0, 0]),
            Err(ModbusFrameError::Malformed(_))
        ));
        assert!(matches!(parse_pdu(&[0x03, 0x80]), Err(ModbusFrameError::Malformed(_))));
        assert!(matches!(
            parse_rtu(&[0x01, 0x41, 0, 0, 0, 0, 0, 0]),
            Err(ModbusFrameError::Malformed(_))
        ));
        assert_eq!(
            parse_rtu(&[0x01, 0x10, 0x70, 0x00, 0x00, 0x03]),
            Err(ModbusFrameError::Incomplete)
        );
        assert_eq!(parse_mbap(&[0, 1, 0, 0, 0, 6, 1, 3]), Err(ModbusFrameError::Incomplete));
        assert!(matches!(
            parse_mbap(&[0, 1, 0, 9, 0, 6, 1, 3, 0, 0, 0, 1]),
            Err(ModbusFrameError::Malformed(_))
        ));
    }

    /// The broadcast clock set of App. E, bytes as printed:
    /// `00 10 70 00 00 03 06 05 07 14 0F 0A 28 C8 18`.
    #[test]
    fn parses_the_manual_broadcast_clock_set() {
        let frame = [
            0x00, 0x10, 0x70, 0x00, 0x00, 0x03, 0x06, 0x05, 0x07, 0x14, 0x0F, 0x0A, 0x28, 0xC8, 0x18,
        ];
        let (unit, pdu, len) = parse_rtu(&frame).unwrap();
        assert_eq!((unit, len), (0, 15));
        assert_eq!(
            parse_pdu(&pdu).unwrap(),
            ModbusRequest::WriteMultiple {
                start: 0x7000,
                values: vec![0x0507, 0x140F, 0x0A28]
            }
        );
    }

    #[test]
    fn crc_matches_the_specification_example() {
        // Modbus over serial line v1.02, Appendix B: 02 07 has CRC 0x1241 (sent 41 12).
        assert_eq!(crc16(&[0x02, 0x07]), 0x1241);
    }

    #[test]
    fn garbled_and_short_frames() {
        let mut frame = rtu_frame(1, &[0x03, 0x80, 0x10, 0x00, 0x02]);
        assert_eq!(parse_rtu(&frame[..5]), Err(ModbusFrameError::Incomplete));
        frame[3] ^= 0xFF;
        assert_eq!(parse_rtu(&frame), Err(ModbusFrameError::BadCrc));
    }

    #[test]
    fn modbus_tcp_round_trip() {
        let frame = mbap_frame(7, 1, &[0x03, 0x80, 0x10, 0x00, 0x02]);
        let (transaction, unit, pdu, len) = parse_mbap(&frame).unwrap();
        assert_eq!((transaction, unit, len), (7, 1, frame.len()));
        assert_eq!(
            parse_pdu(&pdu).unwrap(),
            ModbusRequest::ReadHolding {
                start: 0x8010,
                count: 2
            }
        );
        assert_eq!(exception_response(3, Exception::IllegalDataAddress), vec![0x83, 0x02]);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_rtu(&bytes);
            let _ = parse_mbap(&bytes);
            let _ = parse_pdu(&bytes);
        }
    }
}
