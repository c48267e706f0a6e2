//! A command to an IEC 62056-21 meter in programming mode: the password,
//! a read of each write's read-back register, the writes, the reads again,
//! and always the break. Frames as [`super::iec_program_plan`] lists them;
//! facts in `docs/PROTOCOLS.md`, "Programming mode".
//!
//! A meter that answers a write with an error message (`(ERROR)`, `#nnnn`)
//! or NAKs every repeat refuses it. For a command the profile marks
//! `field_programming` (A1000 manual 2.2.1, TH40C §4.1: programming only
//! while the meter shows "PRG"), a refusal of the first write means PRG is
//! not on: the head-end cannot see the display, and the meter says no more.

use chrono::{Duration, NaiveDateTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::iec_program_plan::{Plan, read_request};
use super::program::{ProgramDone, ProgramError, WriteDone};
use crate::device::iec_commands::{Check, IecWrite};
use crate::protocol::iec62056::LineSpeed;
use crate::protocol::iec62056::session::{Session, SessionError};

/// Runs `plan` on `session` with `password`, the meter's local time being
/// `local` when the command started (what the clock values hold).
pub(crate) async fn run_program<S: AsyncRead + AsyncWrite + LineSpeed + Unpin + Send>(
    session: &mut Session<S>,
    address: &str,
    password: &str,
    plan: &Plan<'_>,
    local: NaiveDateTime,
) -> Result<ProgramDone, ProgramError> {
    match session.open_programming(address, password).await {
        Ok(()) => {}
        Err(SessionError::PasswordRefused) => return Err(ProgramError::PasswordRefused),
        Err(error) => {
            return Err(ProgramError::Link {
                error,
                done: Vec::new(),
            });
        }
    }
    let result = steps(session, plan, local).await;
    if let Err(error) = session.close().await {
        tracing::warn!(%error, "the break after a command failed");
    }
    result
}

async fn steps<S: AsyncRead + AsyncWrite + LineSpeed + Unpin + Send>(
    session: &mut Session<S>,
    plan: &Plan<'_>,
    local: NaiveDateTime,
) -> Result<ProgramDone, ProgramError> {
    let link = |error: SessionError, done: &[WriteDone]| ProgramError::Link {
        error,
        done: done.to_vec(),
    };
    let mut before = Vec::new();
    for write in &plan.command.writes {
        before.push(read_back(session, write).await.map_err(|error| link(error, &[]))?);
    }
    let mut done: Vec<WriteDone> = Vec::new();
    let mut written_at = Vec::new();
    for (index, (write, value)) in plan.writes().enumerate() {
        let sent = if write.vendor {
            session.write_vendor(&write.address, value).await
        } else {
            session.write(&write.address, value).await
        };
        let answer = match sent {
            Ok(()) => {
                written_at.push(Instant::now());
                done.push(WriteDone {
                    address: write.address.clone(),
                    read: write.read_address().to_owned(),
                    before: before[index].clone(),
                    written: value.clone(),
                    after: None,
                });
                continue;
            }
            Err(SessionError::MeterError(answer)) => answer,
            Err(SessionError::Nak { .. }) => "NAK".to_owned(),
            Err(error) => return Err(link(error, &done)),
        };
        let address = write.address.clone();
        return Err(if index == 0 && plan.command.field_programming {
            ProgramError::NotInFieldProgramming { address, answer }
        } else {
            ProgramError::WriteRefused { address, answer, done }
        });
    }
    let mut verified = true;
    let mut matched = true;
    for (index, write) in plan.command.writes.iter().enumerate() {
        let after = read_back(session, write).await.map_err(|error| link(error, &done))?;
        let elapsed = Duration::from_std(written_at[index].elapsed()).unwrap_or_default();
        let entry = &mut done[index];
        entry.after = after;
        if write.check() == Check::None {
            verified = false;
        } else if !write.verifies(
            entry.before.as_deref(),
            &entry.written,
            entry.after.as_deref(),
            local + elapsed,
        ) {
            matched = false;
        }
    }
    let outcome = ProgramDone {
        kind: plan.kind.to_owned(),
        writes: done,
        verified: verified && matched,
    };
    if matched {
        Ok(outcome)
    } else {
        Err(ProgramError::NotVerified(outcome))
    }
}

/// The first value the meter shows at a write's read-back address; `None`
/// when it refuses the read.
async fn read_back<S: AsyncRead + AsyncWrite + LineSpeed + Unpin + Send>(
    session: &mut Session<S>,
    write: &IecWrite,
) -> Result<Option<String>, SessionError> {
    let request = read_request(write);
    let read = if write.vendor {
        session.read_vendor(&request).await
    } else {
        session.read(&request).await
    };
    match read {
        Ok(sets) => Ok(sets
            .first()
            .and_then(|set| set.values.first())
            .map(|value| value.value.clone())),
        Err(SessionError::MeterError(_) | SessionError::Nak { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}
