//! What a command sends over IEC 62056-21, worked out without sending it:
//! the values of its writes (a clock from the time given, in the device's
//! zone) and every frame of the session, byte for byte, for a dry run.
//! The run itself (`iec_program.rs`) sends the same frames in the same
//! order: sign-on, option select (programming), the password `P1`, a read
//! before each write (`R1`), the writes (`W1`), a read after each, the
//! break `B0` (`docs/PROTOCOLS.md`, "Programming mode").

use chrono::{DateTime, NaiveDateTime, Utc};

use super::iec_session_config::session_config;
use super::program::ProgramError;
use super::target::Target;
use crate::device::iec_commands::{IecCommand, IecWrite};
use crate::device::profile::Profile;
use crate::domain::transport::Transport;
use crate::protocol::iec62056::frame::{ACK, CR, ETX, LF, SOH, STX};
use crate::protocol::iec62056::{
    Command, CommandKind, DataSet, DataValue, EncodeError, OptionMode, OptionSelect, SignOn, format_data_set,
};

/// How a dry run shows the password: always eight stars, whatever its
/// length, so the frame says nothing of it.
pub const MASKED_PASSWORD: &str = "********";

/// One frame the head-end sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFrame {
    /// What it does: `sign-on`, `option select`, `password`,
    /// `read before 0.9.1`, `write 0.9.1`, `read after 0.9.1`, `break`.
    pub step: String,
    pub bytes: Vec<u8>,
}

impl PlannedFrame {
    /// The frame as text: control characters named (`<SOH>`), the block
    /// check of a command as `<BCC 0x61>`.
    pub fn text(&self) -> String {
        let (body, bcc) = match self.bytes.split_last() {
            Some((bcc, body)) if self.bytes.first() == Some(&SOH) => (body, Some(*bcc)),
            _ => (&self.bytes[..], None),
        };
        let mut text: String = body
            .iter()
            .map(|&byte| match byte {
                SOH => "<SOH>".to_owned(),
                STX => "<STX>".to_owned(),
                ETX => "<ETX>".to_owned(),
                ACK => "<ACK>".to_owned(),
                CR => "<CR>".to_owned(),
                LF => "<LF>".to_owned(),
                other if other.is_ascii_graphic() || other == b' ' => char::from(other).to_string(),
                other => format!("<0x{other:02X}>"),
            })
            .collect();
        if let Some(bcc) = bcc {
            text.push_str(&format!("<BCC 0x{bcc:02X}>"));
        }
        text
    }
}

/// A command of a profile with the values its writes take.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    pub kind: &'a str,
    pub command: &'a IecCommand,
    /// One per write, in order.
    pub values: Vec<String>,
}

impl Plan<'_> {
    pub(crate) fn writes(&self) -> impl Iterator<Item = (&IecWrite, &String)> {
        self.command.writes.iter().zip(&self.values)
    }
}

/// The command `kind` of `profile`, its clock values taken from the meter's
/// local time `local`.
pub(crate) fn plan<'a>(profile: &'a Profile, kind: &'a str, local: NaiveDateTime) -> Result<Plan<'a>, ProgramError> {
    let command = profile
        .iec62056
        .as_ref()
        .and_then(|iec| iec.commands.get(kind))
        .ok_or_else(|| {
            ProgramError::Unsupported(format!(
                "profile {} has no [iec62056.commands.{kind}]: the meter type takes no {kind} over IEC 62056-21",
                profile.name
            ))
        })?;
    let values = command.writes.iter().map(|write| write.value_at(local)).collect();
    Ok(Plan { kind, command, values })
}

/// The read request of a write's read-back: `address()`.
pub(crate) fn read_request(write: &IecWrite) -> String {
    format!("{}()", write.read_address())
}

fn invalid(error: EncodeError) -> ProgramError {
    ProgramError::Invalid(format!("cannot be sent: {error}"))
}

/// Mode C baud character of the highest rate at most `baud`.
fn baud_char(baud: u32) -> u8 {
    (b'0'..=b'6')
        .rev()
        .find(|&z| 300u32 << (z - b'0') <= baud)
        .unwrap_or(b'0')
}

/// Every frame of the session, `password` as given.
pub(crate) fn frames(
    plan: &Plan<'_>,
    iec_address: &str,
    password: &str,
    baud_char: u8,
) -> Result<Vec<PlannedFrame>, ProgramError> {
    let frame = |step: String, bytes: Result<Vec<u8>, EncodeError>| bytes.map(|bytes| PlannedFrame { step, bytes });
    let mut frames = vec![
        frame(
            "sign-on".into(),
            SignOn {
                address: iec_address.into(),
            }
            .encode(),
        )
        .map_err(invalid)?,
        frame(
            "option select".into(),
            OptionSelect::new(baud_char, OptionMode::Programming).encode(),
        )
        .map_err(invalid)?,
        frame(
            "password".into(),
            Command::new(CommandKind::P1, format!("({password})")).encode(),
        )
        .map_err(invalid)?,
    ];
    let read = |write: &IecWrite, when: &str| {
        let kind = if write.vendor { CommandKind::R5 } else { CommandKind::R1 };
        frame(
            format!("read {when} {}", write.read_address()),
            Command::new(kind, read_request(write)).encode(),
        )
        .map_err(invalid)
    };
    for write in &plan.command.writes {
        frames.push(read(write, "before")?);
    }
    for (write, value) in plan.writes() {
        let kind = if write.vendor { CommandKind::W5 } else { CommandKind::W1 };
        let data = format_data_set(&DataSet {
            address: write.address.clone(),
            values: vec![DataValue::new(value.clone())],
        })
        .map_err(|error| ProgramError::Invalid(format!("cannot write {}: {error}", write.address)))?;
        frames.push(frame(format!("write {}", write.address), Command::new(kind, data).encode()).map_err(invalid)?);
    }
    for write in &plan.command.writes {
        frames.push(read(write, "after")?);
    }
    frames.push(frame("break".into(), Command::break_session().encode()).map_err(invalid)?);
    Ok(frames)
}

/// The frames command `kind` would send to `target` on a bus of
/// `transport` at `now`, the password shown as [`MASKED_PASSWORD`] (its
/// block check computed over the stars). The option select assumes the
/// meter offers the rate its profile's `max_baud` says, capped by the
/// line's; the acknowledgements a long answer may need are not listed.
pub fn program_frames(
    target: Target<'_>,
    transport: &Transport,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<Vec<PlannedFrame>, ProgramError> {
    let local = now.with_timezone(&target.zone).naive_local();
    let plan = plan(target.profile, kind, local)?;
    frames(
        &plan,
        target.iec_address,
        MASKED_PASSWORD,
        line_baud_char(target.profile, transport),
    )
}

/// The baud character the head-end acknowledges with, the meter offering
/// its profile's `max_baud`.
pub(crate) fn line_baud_char(profile: &Profile, transport: &Transport) -> u8 {
    let line = session_config(transport, std::time::Duration::ZERO).max_baud;
    let meter = profile.iec62056.as_ref().map_or(line, |iec| iec.max_baud);
    baud_char(line.min(meter))
}
