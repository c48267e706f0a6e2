//! The master side of Modbus RTU, on any byte stream (a serial port, a TCP
//! connection to a transparent gateway, a pseudo-terminal).
//!
//! Written here rather than taken from tokio-modbus because a head-end must
//! see what that client hides: it resynchronises silently over a garbled
//! answer (we count CRC errors per device), and it waits for an answer to a
//! broadcast (unit 0), which by the Modbus serial line specification never
//! comes. Framing: Modbus over serial line v1.02, 2.5.1; answer lengths:
//! FC03 = 5 + byte count, FC06/FC16 = 8, exception = 5 (all with CRC).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frame::{ModbusFrameError, crc16, rtu_frame};

/// The broadcast unit address: every device acts, none answers.
pub(crate) const BROADCAST: u8 = 0;

/// What came back for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The response PDU (function code first).
    Pdu(Vec<u8>),
    /// An exception response: the exception code.
    Exception(u8),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RtuError {
    #[error("link failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("answer with a bad CRC")]
    Crc,
    #[error("answer from unit {got}, asked unit {asked}")]
    WrongUnit { asked: u8, got: u8 },
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
}

/// FC03 request PDU.
pub(crate) fn read_holding_request(start: u16, count: u16) -> Vec<u8> {
    let mut pdu = vec![3];
    pdu.extend_from_slice(&start.to_be_bytes());
    pdu.extend_from_slice(&count.to_be_bytes());
    pdu
}

/// FC16 request PDU.
pub(crate) fn write_multiple_request(start: u16, values: &[u16]) -> Vec<u8> {
    let mut pdu = vec![16];
    pdu.extend_from_slice(&start.to_be_bytes());
    pdu.extend_from_slice(&(values.len() as u16).to_be_bytes());
    pdu.push((values.len() * 2) as u8);
    for value in values {
        pdu.extend_from_slice(&value.to_be_bytes());
    }
    pdu
}

/// FC06 request PDU.
pub(crate) fn write_single_request(address: u16, value: u16) -> Vec<u8> {
    let mut pdu = vec![6];
    pdu.extend_from_slice(&address.to_be_bytes());
    pdu.extend_from_slice(&value.to_be_bytes());
    pdu
}

/// Checks the front of `bytes` for a whole answer to a request of
/// `function`: the unit, the answer and the frame's length.
pub(crate) fn parse_answer(bytes: &[u8], function: u8) -> Result<(u8, Answer, usize), ModbusFrameError> {
    let Some(&answered) = bytes.get(1) else {
        return Err(ModbusFrameError::Incomplete);
    };
    let len = if answered == function | 0x80 {
        5
    } else if answered != function {
        return Err(ModbusFrameError::Malformed("answer to another function"));
    } else {
        match function {
            1..=4 => 5 + usize::from(*bytes.get(2).ok_or(ModbusFrameError::Incomplete)?),
            5 | 6 | 15 | 16 => 8,
            _ => return Err(ModbusFrameError::Malformed("unsupported function")),
        }
    };
    if bytes.len() < len {
        return Err(ModbusFrameError::Incomplete);
    }
    let (frame, crc) = bytes[..len].split_at(len - 2);
    if crc16(frame) != u16::from_le_bytes([crc[0], crc[1]]) {
        return Err(ModbusFrameError::BadCrc);
    }
    let answer = if answered & 0x80 != 0 {
        Answer::Exception(frame[2])
    } else {
        Answer::Pdu(frame[1..].to_vec())
    };
    Ok((frame[0], answer, len))
}

/// The registers of an FC03 answer PDU.
pub(crate) fn read_holding_words(pdu: &[u8], count: u16) -> Result<Vec<u16>, RtuError> {
    let data = pdu.get(2..).ok_or(RtuError::Malformed("short read answer"))?;
    if usize::from(pdu[1]) != data.len() || data.len() != usize::from(count) * 2 {
        return Err(RtuError::Malformed("byte count disagrees with the registers asked"));
    }
    Ok(data
        .chunks(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect())
}

/// A Modbus RTU master on a byte stream. One request at a time; the caller
/// bounds each call with a timeout and keeps the line's silent intervals.
pub(crate) struct RtuClient<T> {
    io: T,
    buffer: Vec<u8>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> RtuClient<T> {
    pub(crate) fn new(io: T) -> RtuClient<T> {
        RtuClient {
            io,
            buffer: Vec::with_capacity(256),
        }
    }

    /// Sends `pdu` to `unit` and waits for its answer. A broadcast returns
    /// `None` as soon as it is sent.
    #[cfg(test)]
    pub(crate) async fn call(&mut self, unit: u8, pdu: &[u8]) -> Result<Option<Answer>, RtuError> {
        self.call_answered_by(unit, unit, pdu).await
    }

    /// [`RtuClient::call`] where the answer may also come from unit
    /// `or_from`: a device changing its address answers from the new one
    /// (TH40C manual, App. E).
    pub(crate) async fn call_answered_by(
        &mut self,
        unit: u8,
        or_from: u8,
        pdu: &[u8],
    ) -> Result<Option<Answer>, RtuError> {
        // Bytes left from an earlier, abandoned exchange are not this answer.
        self.buffer.clear();
        self.io.write_all(&rtu_frame(unit, pdu)).await?;
        self.io.flush().await?;
        if unit == BROADCAST {
            return Ok(None);
        }
        let mut chunk = [0u8; 256];
        loop {
            match parse_answer(&self.buffer, pdu[0]) {
                Ok((answered, answer, _)) if answered == unit || answered == or_from => return Ok(Some(answer)),
                Ok((answered, _, _)) => {
                    return Err(RtuError::WrongUnit {
                        asked: unit,
                        got: answered,
                    });
                }
                Err(ModbusFrameError::Incomplete) => {}
                Err(ModbusFrameError::BadCrc) => return Err(RtuError::Crc),
                Err(ModbusFrameError::Malformed(reason)) => return Err(RtuError::Malformed(reason)),
            }
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                return Err(RtuError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::modbus::frame::rtu_frame;

    /// TH40C manual, App. E: the request and answer of the 0x8010 read.
    #[test]
    fn builds_and_parses_the_manual_exchange() {
        assert_eq!(
            rtu_frame(1, &read_holding_request(0x8010, 2)),
            vec![0x01, 0x03, 0x80, 0x10, 0x00, 0x02, 0xEC, 0x0E]
        );
        let answer = [0x01, 0x03, 0x04, 0x3E, 0xC7, 0xAE, 0x14, 0x3A, 0x49];
        let (unit, parsed, len) = parse_answer(&answer, 3).unwrap();
        assert_eq!((unit, len), (1, 9));
        let Answer::Pdu(pdu) = parsed else {
            panic!("not an exception")
        };
        assert_eq!(read_holding_words(&pdu, 2).unwrap(), vec![0x3EC7, 0xAE14]);
    }

    #[test]
    fn recognises_exceptions_garbles_and_short_answers() {
        let exception = rtu_frame(1, &[0x83, 0x02]);
        assert_eq!(parse_answer(&exception, 3).unwrap().1, Answer::Exception(2));
        let mut garbled = rtu_frame(1, &[0x03, 0x02, 0x00, 0x01]);
        garbled[3] ^= 0x40;
        assert_eq!(parse_answer(&garbled, 3), Err(ModbusFrameError::BadCrc));
        assert_eq!(parse_answer(&garbled[..4], 3), Err(ModbusFrameError::Incomplete));
        // App. E's broadcast clock set, as the master sends it.
        let frame = rtu_frame(0, &write_multiple_request(0x7000, &[0x0507, 0x140F, 0x0A28]));
        assert_eq!(
            frame,
            vec![
                0x00, 0x10, 0x70, 0x00, 0x00, 0x03, 0x06, 0x05, 0x07, 0x14, 0x0F, 0x0A, 0x28, 0xC8, 0x18
            ]
        );
        // App. E's address change: 01 06 C0 35 00 02 24 05.
        assert_eq!(
            rtu_frame(1, &write_single_request(0xC035, 2)),
            vec![0x01, 0x06, 0xC0, 0x35, 0x00, 0x02, 0x24, 0x05]
        );
    }

    #[tokio::test]
    async fn a_broadcast_returns_without_waiting_and_a_call_reads_its_answer() {
        let (near, mut far) = tokio::io::duplex(256);
        let mut client = RtuClient::new(near);
        assert_eq!(
            client.call(BROADCAST, &write_single_request(0x9E21, 2)).await.unwrap(),
            None
        );
        let mut sent = [0u8; 8];
        far.read_exact(&mut sent).await.unwrap();
        assert_eq!(sent[0], 0);
        // The answer arrives in two pieces.
        let answer = rtu_frame(7, &[0x03, 0x02, 0x12, 0x34]);
        let call = tokio::spawn(async move { client.call(7, &read_holding_request(0x1000, 1)).await });
        let mut request = [0u8; 8];
        far.read_exact(&mut request).await.unwrap();
        far.write_all(&answer[..3]).await.unwrap();
        far.write_all(&answer[3..]).await.unwrap();
        assert_eq!(
            call.await.unwrap().unwrap(),
            Some(Answer::Pdu(vec![0x03, 0x02, 0x12, 0x34]))
        );
    }

    proptest::proptest! {
        #[test]
        fn the_answer_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), function in 0u8..=255) {
            let _ = parse_answer(&bytes, function);
        }
    }
}
