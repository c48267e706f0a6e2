//! Faults a simulated Modbus device can be told to show, one at a time,
//! switched while it serves: what a head-end meets on a real line (a dead
//! or slow meter, noise, a garbled or cut answer, a second device on the
//! same address, every exception the protocol defines). A test holds the
//! device's [`FaultSwitch`] and flips it; `ohmnibus simulate --fault`
//! sets one from the start.
//!
//! [`SimBus`](super::bus::SimBus) applies the faults that change what the
//! device answers (none, an exception); the servers apply those that
//! change the bytes on the wire ([`shape_rtu`], [`shape_mbap`]).

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::protocol::modbus::frame::{Exception, mbap_frame, rtu_frame};

/// Bytes of line noise: none of them starts a frame a master expects
/// (`0x55`/`0xAA` are neither a function code nor an exception), so a
/// master that skips noise finds the answer behind them.
pub const NOISE: [u8; 6] = [0x55, 0xAA, 0x55, 0xAA, 0x55, 0xAA];

/// One fault of a simulated Modbus device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModbusFault {
    /// The device never answers (nor acts on the request).
    NoAnswer,
    /// The answer leaves this much later than usual.
    Slow(Duration),
    /// The answer's CRC is wrong (RTU; Modbus TCP has no CRC, the answer
    /// goes out right).
    BadCrc,
    /// Only the first half of the answer goes out.
    Truncated,
    /// [`NOISE`] goes out before the answer.
    GarbageBefore,
    /// [`NOISE`] goes out instead of the answer.
    GarbageInstead,
    /// The answer comes from this unit address instead of the device's.
    OtherUnit(u8),
    /// Every request is answered with this exception.
    Exception(Exception),
}

/// The fault a device shows now: shared between the device and whoever
/// switches it (`None`: healthy).
pub type FaultSwitch = Arc<Mutex<Option<ModbusFault>>>;

/// The fault `switch` holds now.
pub fn current(switch: &FaultSwitch) -> Option<ModbusFault> {
    *switch.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets (or with `None` clears) the fault of `switch`.
pub fn set(switch: &FaultSwitch, fault: Option<ModbusFault>) {
    *switch.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fault;
}

/// An answer as it goes on the wire: after how much extra delay, which bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaped {
    pub delay: Duration,
    pub bytes: Vec<u8>,
}

/// The RTU frame of `unit`'s answer `pdu`, as `fault` changes it.
pub fn shape_rtu(fault: Option<ModbusFault>, unit: u8, pdu: &[u8]) -> Shaped {
    let mut delay = Duration::ZERO;
    let bytes = match fault {
        Some(ModbusFault::Slow(extra)) => {
            delay = extra;
            rtu_frame(unit, pdu)
        }
        Some(ModbusFault::BadCrc) => {
            let mut frame = rtu_frame(unit, pdu);
            if let Some(crc) = frame.last_mut() {
                *crc ^= 0xFF;
            }
            frame
        }
        Some(ModbusFault::Truncated) => {
            let frame = rtu_frame(unit, pdu);
            frame[..frame.len() / 2].to_vec()
        }
        Some(ModbusFault::GarbageBefore) => [&NOISE[..], &rtu_frame(unit, pdu)].concat(),
        Some(ModbusFault::GarbageInstead) => NOISE.to_vec(),
        Some(ModbusFault::OtherUnit(other)) => rtu_frame(other, pdu),
        Some(ModbusFault::NoAnswer | ModbusFault::Exception(_)) | None => rtu_frame(unit, pdu),
    };
    Shaped { delay, bytes }
}

/// The Modbus TCP ADU of `unit`'s answer `pdu` to `transaction`, as
/// `fault` changes it (a bad CRC does not apply: the ADU goes out right).
pub fn shape_mbap(fault: Option<ModbusFault>, transaction: u16, unit: u8, pdu: &[u8]) -> Shaped {
    let mut delay = Duration::ZERO;
    let bytes = match fault {
        Some(ModbusFault::Slow(extra)) => {
            delay = extra;
            mbap_frame(transaction, unit, pdu)
        }
        Some(ModbusFault::Truncated) => {
            let frame = mbap_frame(transaction, unit, pdu);
            frame[..frame.len() / 2].to_vec()
        }
        Some(ModbusFault::GarbageBefore) => [&NOISE[..], &mbap_frame(transaction, unit, pdu)].concat(),
        Some(ModbusFault::GarbageInstead) => NOISE.to_vec(),
        Some(ModbusFault::OtherUnit(other)) => mbap_frame(transaction, other, pdu),
        Some(ModbusFault::NoAnswer | ModbusFault::BadCrc | ModbusFault::Exception(_)) | None => {
            mbap_frame(transaction, unit, pdu)
        }
    };
    Shaped { delay, bytes }
}

impl fmt::Display for ModbusFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModbusFault::NoAnswer => f.write_str("no-answer"),
            ModbusFault::Slow(extra) => write!(f, "slow:{}", extra.as_millis()),
            ModbusFault::BadCrc => f.write_str("bad-crc"),
            ModbusFault::Truncated => f.write_str("truncated"),
            ModbusFault::GarbageBefore => f.write_str("garbage-before"),
            ModbusFault::GarbageInstead => f.write_str("garbage"),
            ModbusFault::OtherUnit(unit) => write!(f, "other-unit:{unit}"),
            ModbusFault::Exception(exception) => write!(f, "exception:{:02X}", *exception as u8),
        }
    }
}

/// Why a fault's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "fault {0:?} is not one of no-answer, slow:MS, bad-crc, truncated, garbage-before, garbage, other-unit:N (1-247), exception:HH (01-06, 08, 0A, 0B)"
)]
pub struct BadFault(pub String);

impl FromStr for ModbusFault {
    type Err = BadFault;

    /// The form [`ModbusFault`]'s `Display` writes, e.g. `slow:1500`,
    /// `other-unit:7`, `exception:0B` (the code in hexadecimal).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadFault(text.to_owned());
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (text, None),
        };
        Ok(match (name, argument) {
            ("no-answer", None) => ModbusFault::NoAnswer,
            ("bad-crc", None) => ModbusFault::BadCrc,
            ("truncated", None) => ModbusFault::Truncated,
            ("garbage-before", None) => ModbusFault::GarbageBefore,
            ("garbage", None) => ModbusFault::GarbageInstead,
            ("slow", Some(ms)) => ModbusFault::Slow(Duration::from_millis(ms.parse().map_err(|_| bad())?)),
            ("other-unit", Some(unit)) => {
                let unit: u8 = unit.parse().map_err(|_| bad())?;
                if !(1..=247).contains(&unit) {
                    return Err(bad());
                }
                ModbusFault::OtherUnit(unit)
            }
            ("exception", Some(code)) => {
                let code = u8::from_str_radix(code, 16).map_err(|_| bad())?;
                ModbusFault::Exception(Exception::from_code(code).ok_or_else(bad)?)
            }
            _ => return Err(bad()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TH40C manual, App. E: the answer to the 0x8010 read, 01 03 04 3E C7 AE 14 3A 49.
    const PDU: [u8; 6] = [0x03, 0x04, 0x3E, 0xC7, 0xAE, 0x14];
    const FRAME: [u8; 9] = [0x01, 0x03, 0x04, 0x3E, 0xC7, 0xAE, 0x14, 0x3A, 0x49];

    #[test]
    fn rtu_faults_change_the_manual_answer_as_named() {
        let shaped = |fault| shape_rtu(Some(fault), 1, &PDU).bytes;
        assert_eq!(shape_rtu(None, 1, &PDU).bytes, FRAME);
        // CRC low byte first: 3A 49, the high byte inverted.
        assert_eq!(shaped(ModbusFault::BadCrc)[7..], [0x3A, 0xB6]);
        assert_eq!(shaped(ModbusFault::Truncated), FRAME[..4]);
        assert_eq!(shaped(ModbusFault::GarbageBefore)[..6], NOISE);
        assert_eq!(shaped(ModbusFault::GarbageBefore)[6..], FRAME);
        assert_eq!(shaped(ModbusFault::GarbageInstead), NOISE);
        // From unit 2: 02 03 04 3E C7 AE 14, CRC over those bytes.
        let other = shaped(ModbusFault::OtherUnit(2));
        assert_eq!(other[..7], [0x02, 0x03, 0x04, 0x3E, 0xC7, 0xAE, 0x14]);
        assert_ne!(other[7..], FRAME[7..]);
        let slow = shape_rtu(Some(ModbusFault::Slow(Duration::from_millis(700))), 1, &PDU);
        assert_eq!((slow.delay, slow.bytes), (Duration::from_millis(700), FRAME.to_vec()));
    }

    #[test]
    fn faults_read_back_from_their_text_and_refuse_the_rest() {
        let faults = [
            ModbusFault::NoAnswer,
            ModbusFault::Slow(Duration::from_millis(1500)),
            ModbusFault::BadCrc,
            ModbusFault::Truncated,
            ModbusFault::GarbageBefore,
            ModbusFault::GarbageInstead,
            ModbusFault::OtherUnit(7),
            ModbusFault::Exception(Exception::GatewayTargetFailedToRespond),
        ];
        for fault in faults {
            assert_eq!(fault.to_string().parse::<ModbusFault>(), Ok(fault), "{fault}");
        }
        assert_eq!(
            "exception:0A".parse::<ModbusFault>(),
            Ok(ModbusFault::Exception(Exception::GatewayPathUnavailable))
        );
        for bad in [
            "",
            "slow",
            "slow:x",
            "exception:07",
            "exception:0C",
            "other-unit:0",
            "noise",
        ] {
            assert!(bad.parse::<ModbusFault>().is_err(), "{bad:?}");
        }
    }
}
