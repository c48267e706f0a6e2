//! The master side of Modbus RTU, on any byte stream (a serial port, a TCP
//! connection to a transparent gateway, a pseudo-terminal).
//!
//! Written here rather than taken from tokio-modbus because a head-end must
//! see what that client hides: it resynchronises silently over a garbled
//! answer (we count CRC errors per device), and it waits for an answer to a
//! broadcast (unit 0), which by the Modbus serial line specification never
//! comes. Framing: Modbus over serial line v1.02, 2.5.1; answer lengths:
//! FC03 = 5 + byte count, FC06/FC16 = 8, exception = 5 (all with CRC).
//!
//! What is not this answer is set aside, not taken for it: bytes left on
//! the line from an earlier exchange are discarded before a request goes
//! out; noise before the answer (bytes that cannot start it) is skipped;
//! a whole frame from another unit (a late answer of a device that timed
//! out, or two devices on one address) is skipped and the wait goes on.
//! What was set aside is kept ([`Heard`]), so a call that ends without
//! its answer says why: only noise, a cut frame, another unit's answer.

use std::time::Duration;

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

/// What a call heard that was not its answer, for the error of a call
/// that ends without one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Heard {
    /// Bytes skipped as noise.
    pub noise: usize,
    /// The unit of a whole, valid frame from another unit, if one came.
    pub other_unit: Option<u8>,
    /// Bytes of a frame begun but not finished when the call ended.
    pub partial: usize,
}

impl Heard {
    /// Why no answer came, when something did come: `None` if the line
    /// stayed silent.
    pub(crate) fn describe(&self, asked: u8) -> Option<String> {
        if let Some(got) = self.other_unit {
            return Some(format!("only an answer from unit {got} came, asked unit {asked}"));
        }
        match (self.noise, self.partial) {
            (0, 0) => None,
            (0, partial) => Some(format!("the answer stopped after {partial} bytes")),
            (noise, 0) => Some(format!("{noise} bytes of noise and no answer")),
            (noise, partial) => Some(format!(
                "{noise} bytes of noise, then an answer that stopped after {partial} bytes"
            )),
        }
    }
}

/// Most bytes discarded before a request: more than a line can hold
/// between two exchanges means a device that never stops talking, and the
/// request goes out anyway (its answer will be looked for among the noise).
const MAX_STALE: usize = 4096;

/// A Modbus RTU master on a byte stream. One request at a time; the caller
/// bounds each call with a timeout and keeps the line's silent intervals.
pub(crate) struct RtuClient<T> {
    io: T,
    buffer: Vec<u8>,
    heard: Heard,
}

impl<T: AsyncRead + AsyncWrite + Unpin> RtuClient<T> {
    pub(crate) fn new(io: T) -> RtuClient<T> {
        RtuClient {
            io,
            buffer: Vec::with_capacity(256),
            heard: Heard::default(),
        }
    }

    /// What the last call heard that was not its answer (read after a
    /// call that timed out).
    pub(crate) fn heard(&self) -> Heard {
        // After noise, a byte too few to start a frame is more noise.
        if self.heard.noise > 0 && self.buffer.len() < 2 {
            return Heard {
                noise: self.heard.noise + self.buffer.len(),
                partial: 0,
                ..self.heard
            };
        }
        Heard {
            partial: self.buffer.len(),
            ..self.heard
        }
    }

    /// Discards what the line already holds: the rest of an abandoned
    /// answer, a late one. Reads only what is there now, never waits.
    async fn discard_stale(&mut self) -> Result<(), RtuError> {
        let mut chunk = [0u8; 256];
        let mut discarded = 0;
        while discarded < MAX_STALE {
            match tokio::time::timeout(Duration::ZERO, self.io.read(&mut chunk)).await {
                Ok(Ok(0)) => return Err(RtuError::Io(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(Ok(n)) => discarded += n,
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => break,
            }
        }
        if discarded > 0 {
            tracing::debug!(discarded, "stale bytes on the line before a request");
        }
        Ok(())
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
        self.heard = Heard::default();
        self.discard_stale().await?;
        self.io.write_all(&rtu_frame(unit, pdu)).await?;
        self.io.flush().await?;
        if unit == BROADCAST {
            return Ok(None);
        }
        let mut chunk = [0u8; 256];
        loop {
            match parse_answer(&self.buffer, pdu[0]) {
                Ok((answered, answer, len)) if answered == unit || answered == or_from => {
                    self.buffer.drain(..len);
                    return Ok(Some(answer));
                }
                Ok((answered, _, len)) => {
                    tracing::debug!(asked = unit, got = answered, "answer from another unit skipped");
                    self.heard.other_unit = Some(answered);
                    self.buffer.drain(..len);
                    continue;
                }
                Err(ModbusFrameError::Incomplete) => {}
                // Right after noise, a head that fails its CRC is more noise
                // that happened to look like a head: the answer may follow.
                Err(ModbusFrameError::BadCrc) if self.heard.noise == 0 => return Err(RtuError::Crc),
                Err(ModbusFrameError::BadCrc | ModbusFrameError::Malformed(_)) => {
                    // Not the start of an answer to this request: noise.
                    self.heard.noise += 1;
                    self.buffer.remove(0);
                    continue;
                }
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

    #[tokio::test]
    async fn stale_bytes_noise_and_another_units_answer_are_set_aside() {
        let (near, mut far) = tokio::io::duplex(512);
        let mut client = RtuClient::new(near);
        // The rest of an abandoned answer, already on the line.
        far.write_all(&rtu_frame(7, &[0x03, 0x02, 0xDE, 0xAD])).await.unwrap();
        let meter = tokio::spawn(async move {
            let mut request = [0u8; 8];
            far.read_exact(&mut request).await.unwrap();
            // Noise, a late answer from unit 2, then unit 7's answer.
            far.write_all(&[0x55, 0xAA, 0x55]).await.unwrap();
            far.write_all(&rtu_frame(2, &[0x03, 0x02, 0x99, 0x99])).await.unwrap();
            far.write_all(&rtu_frame(7, &[0x03, 0x02, 0x12, 0x34])).await.unwrap();
            far
        });
        let answer = client.call(7, &read_holding_request(0x1000, 1)).await.unwrap();
        assert_eq!(answer, Some(Answer::Pdu(vec![0x03, 0x02, 0x12, 0x34])));
        // 55 AA 55 skipped a byte at a time; 02 03 … whole.
        assert_eq!(
            client.heard(),
            Heard {
                noise: 3,
                other_unit: Some(2),
                partial: 0
            }
        );
        let _far = meter.await.unwrap();
    }

    #[tokio::test]
    async fn noise_that_looks_like_the_head_of_an_answer_is_skipped_too() {
        let (near, mut far) = tokio::io::duplex(512);
        let mut client = RtuClient::new(near);
        let meter = tokio::spawn(async move {
            let mut request = [0u8; 8];
            far.read_exact(&mut request).await.unwrap();
            // Unit 3's answer behind AA: "AA 03 03 …" reads as a head from
            // unit 0xAA of 5 + 3 bytes whose CRC fails.
            far.write_all(&[0x55, 0xAA]).await.unwrap();
            far.write_all(&rtu_frame(3, &[0x03, 0x02, 0x12, 0x34])).await.unwrap();
            far
        });
        let answer = client.call(3, &read_holding_request(0x1000, 1)).await.unwrap();
        assert_eq!(answer, Some(Answer::Pdu(vec![0x03, 0x02, 0x12, 0x34])));
        assert_eq!(client.heard().noise, 2);
        let _far = meter.await.unwrap();
    }

    #[tokio::test]
    async fn a_call_without_its_answer_says_what_it_heard() {
        let (near, mut far) = tokio::io::duplex(512);
        let mut client = RtuClient::new(near);
        let meter = tokio::spawn(async move {
            let mut request = [0u8; 8];
            far.read_exact(&mut request).await.unwrap();
            // The first four of the answer's seven bytes.
            far.write_all(&rtu_frame(7, &[0x03, 0x02, 0x12, 0x34])[..4])
                .await
                .unwrap();
            far
        });
        let request = read_holding_request(0x1000, 1);
        let call = client.call(7, &request);
        assert!(tokio::time::timeout(Duration::from_millis(200), call).await.is_err());
        assert_eq!(
            client.heard().describe(7).as_deref(),
            Some("the answer stopped after 4 bytes")
        );
        let _far = meter.await.unwrap();
        assert_eq!(
            Heard::default().describe(7),
            None,
            "silence is no answer, not a garbled one"
        );
        let other = Heard {
            other_unit: Some(9),
            ..Heard::default()
        };
        assert_eq!(
            other.describe(7).as_deref(),
            Some("only an answer from unit 9 came, asked unit 7")
        );
    }

    proptest::proptest! {
        #[test]
        fn the_answer_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), function in 0u8..=255) {
            let _ = parse_answer(&bytes, function);
        }
    }
}
