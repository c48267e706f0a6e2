//! Faults a simulated IEC 62056-21 meter can be told to show, switched
//! while it serves (the meter's `fault`): what a head-end meets on a real
//! line. A fault acts once the meter is signed on to, so its neighbours on
//! the line keep answering; `ohmnibus simulate --fault` sets one from the
//! start.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::protocol::iec62056::frame::STX;

/// One fault of a simulated IEC 62056-21 meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IecFault {
    /// The meter never answers, not even its identification.
    Silent,
    /// Every answer leaves this much later than the line's reaction time.
    Slow(Duration),
    /// A data message stops halfway, before its ETX and BCC, and the
    /// meter falls silent.
    StopsMidBlock,
    /// A data message never ends: after its text the meter goes on with
    /// data lines, one every [`BABBLE_GAP`], without an ETX, until the
    /// client speaks or leaves.
    NeverStops,
    /// Every data message carries a wrong BCC, its repeats after NAK too.
    BadBcc,
}

/// How often a meter that never stops talking sends another line: well
/// inside the inter-character timeout, so only an overall deadline ends it.
pub const BABBLE_GAP: Duration = Duration::from_millis(20);

/// The line it keeps sending.
pub const BABBLE_LINE: &[u8] = b"1-1:1.8.0(012345.67*kWh)\r\n";

/// What the transport does after it has sent an answer as [`shape`] made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: wait for the client.
    Done,
    /// Keep sending [`BABBLE_LINE`] until the client speaks.
    Babble,
}

/// `answer` (the bytes the meter would send) as `fault` changes them, the
/// extra delay before it goes out, and what follows it.
pub fn shape(fault: Option<IecFault>, mut answer: Vec<u8>) -> (Vec<u8>, Duration, Tail) {
    let data = answer.first() == Some(&STX);
    match fault {
        Some(IecFault::Silent) => (Vec::new(), Duration::ZERO, Tail::Done),
        Some(IecFault::Slow(extra)) => (answer, extra, Tail::Done),
        Some(IecFault::StopsMidBlock) if data => {
            answer.truncate(answer.len() / 2);
            (answer, Duration::ZERO, Tail::Done)
        }
        Some(IecFault::NeverStops) if data => {
            // Its text, without ETX and BCC, then more for ever.
            answer.truncate(answer.len().saturating_sub(2));
            (answer, Duration::ZERO, Tail::Babble)
        }
        Some(IecFault::BadBcc) if data => {
            if let Some(bcc) = answer.last_mut() {
                *bcc ^= 0x01;
            }
            (answer, Duration::ZERO, Tail::Done)
        }
        _ => (answer, Duration::ZERO, Tail::Done),
    }
}

impl fmt::Display for IecFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IecFault::Silent => f.write_str("no-answer"),
            IecFault::Slow(extra) => write!(f, "slow:{}", extra.as_millis()),
            IecFault::StopsMidBlock => f.write_str("stops-mid-block"),
            IecFault::NeverStops => f.write_str("never-stops"),
            IecFault::BadBcc => f.write_str("bad-bcc"),
        }
    }
}

/// Why a fault's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault {0:?} is not one of no-answer, slow:MS, stops-mid-block, never-stops, bad-bcc")]
pub struct BadIecFault(pub String);

impl FromStr for IecFault {
    type Err = BadIecFault;

    /// The form `Display` writes, e.g. `slow:2000`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadIecFault(text.to_owned());
        Ok(match text.split_once(':') {
            Some(("slow", ms)) => IecFault::Slow(Duration::from_millis(ms.parse().map_err(|_| bad())?)),
            Some(_) => return Err(bad()),
            None => match text {
                "no-answer" => IecFault::Silent,
                "stops-mid-block" => IecFault::StopsMidBlock,
                "never-stops" => IecFault::NeverStops,
                "bad-bcc" => IecFault::BadBcc,
                _ => return Err(bad()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::iec62056::DataBlock;
    use crate::protocol::iec62056::frame::ETX;

    fn readout() -> Vec<u8> {
        DataBlock {
            text: "1-1:1.8.0(012345.67*kWh)\r\n!\r\n".into(),
            last: true,
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn data_messages_are_cut_spoiled_or_left_open() {
        let whole = readout();
        // STX, 29 characters of text (9 + 15 + 2 + 3), ETX, BCC: 32 bytes.
        assert_eq!(whole.len(), 32);
        assert_eq!(whole[30], ETX);
        let (cut, _, tail) = shape(Some(IecFault::StopsMidBlock), whole.clone());
        assert_eq!((cut.as_slice(), tail), (&whole[..16], Tail::Done));
        let (open, _, tail) = shape(Some(IecFault::NeverStops), whole.clone());
        assert_eq!((open.as_slice(), tail), (&whole[..30], Tail::Babble));
        let (spoiled, _, _) = shape(Some(IecFault::BadBcc), whole.clone());
        assert_eq!(spoiled[..31], whole[..31]);
        assert_eq!(spoiled[31], whole[31] ^ 0x01);
        assert_eq!(shape(Some(IecFault::Silent), whole.clone()).0, Vec::<u8>::new());
        // Not a data message (an identification): only silence and delay apply.
        let identification = b"/XXX5A1000\r\n".to_vec();
        let (sent, _, tail) = shape(Some(IecFault::NeverStops), identification.clone());
        assert_eq!((sent, tail), (identification, Tail::Done));
        assert!(!BABBLE_LINE.contains(&ETX), "a babble never ends itself");
    }

    #[test]
    fn faults_read_back_from_their_text() {
        for fault in [
            IecFault::Silent,
            IecFault::Slow(Duration::from_millis(2000)),
            IecFault::StopsMidBlock,
            IecFault::NeverStops,
            IecFault::BadBcc,
        ] {
            assert_eq!(fault.to_string().parse::<IecFault>(), Ok(fault));
        }
        for bad in ["", "slow", "slow:x", "babble", "bad-crc"] {
            assert!(bad.parse::<IecFault>().is_err(), "{bad:?}");
        }
    }
}
