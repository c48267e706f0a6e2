//! The Modbus driver: register groups read block by block (one request per
//! step), commands written as planned from the profile's `[modbus.commands]`.

use std::time::Duration;

use tokio_modbus::ExceptionCode;

use super::clock::meter_clock;
use super::error::DriverError;
use super::exchange::{Exchange, Outcome};
use super::modbus_link::{Link, LinkError};
use super::read_state::ReadState;
use super::target::{BROADCAST_SENT, CommandDone, ReadOutput, Step, Target};
use crate::device::command_plan::PlannedWrite;
use crate::device::decode::decode_blocks;
use crate::device::meter_identity::from_registers;
use crate::device::profile::RegisterGroup;
use crate::domain::address::UnitAddress;
use crate::domain::clock::Clock;
use crate::domain::transport::Transport;
use crate::protocol::modbus::rtu_client::BROADCAST;

pub struct ModbusDriver {
    link: Link,
}

pub(super) fn exchange<T>(result: &Result<T, LinkError>, took: Duration) -> Exchange {
    Exchange {
        outcome: result.as_ref().err().map_or(Outcome::Answered, LinkError::outcome),
        took,
    }
}

impl ModbusDriver {
    pub(super) fn new(transport: Transport, timeout: Duration) -> ModbusDriver {
        ModbusDriver {
            link: Link::new(transport, timeout),
        }
    }

    pub(super) fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    /// Sends the next request of a read of `group`, and decodes the read
    /// once its last answer is in.
    pub(super) async fn read_step(
        &mut self,
        target: Target<'_>,
        state: &mut ReadState,
        group: RegisterGroup,
        clock: &Clock,
    ) -> (Step, Option<Exchange>) {
        if let Some(step) = self.identity_step(target, state, clock).await {
            return step;
        }
        let blocks = state.blocks.get(&group).map(Vec::as_slice).unwrap_or_default();
        let progress = state.in_progress.entry(group).or_default();
        while progress.next_block < blocks.len() && state.unsupported.contains(&blocks[progress.next_block].start) {
            progress.next_block += 1;
        }
        let mut sent = None;
        if let Some(block) = blocks.get(progress.next_block) {
            let turnaround = Duration::from_millis(target.profile.modbus.turnaround_ms);
            let (result, took) = self
                .link
                .read_holding(target.address, block.start, block.count, turnaround)
                .await;
            sent = Some(exchange(&result, took));
            match result {
                Ok(words) => progress.answers.push((progress.next_block, words)),
                Err(LinkError::Exception {
                    code: ExceptionCode::IllegalDataAddress,
                    ..
                }) if block.optional => {
                    tracing::info!(device = %target.name, start = block.start, "optional registers not supported; not asked again");
                    state.unsupported.insert(block.start);
                }
                Err(error) => {
                    state.in_progress.remove(&group);
                    state.identity.checked_at = None;
                    return (Step::Failed(error.into()), sent);
                }
            }
            progress.next_block += 1;
            if progress.next_block < blocks.len() {
                return (Step::More, sent);
            }
        }
        let progress = state.in_progress.remove(&group).unwrap_or_default();
        let answers: Vec<_> = progress
            .answers
            .iter()
            .map(|(index, words)| (&blocks[*index], words.as_slice()))
            .collect();
        let (readings, invalid) = decode_blocks(target.profile, &answers, clock.now(), target.zone);
        if !invalid.is_empty() {
            tracing::warn!(device = %target.name, registers = ?invalid, "device sent values its registers cannot hold; not stored");
        }
        let output = ReadOutput {
            meter_clock: meter_clock(&readings),
            readings,
            status: None,
            identity: state.identity.found.take(),
        };
        (Step::Done(output), sent)
    }

    /// Reads the next of the profile's `[[identity]]` entries when the
    /// device's identity is due (after a start or a failed read, and
    /// hourly), one request a step, before any block of the read. An entry
    /// the firmware lacks ("illegal data address") is left out of the
    /// identity; any other failure fails the read.
    async fn identity_step(
        &mut self,
        target: Target<'_>,
        state: &mut ReadState,
        clock: &Clock,
    ) -> Option<(Step, Option<Exchange>)> {
        let entries = &target.profile.identity;
        let now = clock.now();
        if entries.is_empty() || !state.identity.due(now) {
            return None;
        }
        let check = &mut state.identity;
        let entry = &entries[check.answers.len().min(entries.len() - 1)];
        let turnaround = Duration::from_millis(target.profile.modbus.turnaround_ms);
        let (result, took) = self
            .link
            .read_holding(target.address, entry.address, entry.count, turnaround)
            .await;
        let sent = Some(exchange(&result, took));
        match result {
            Ok(words) => check.answers.push(Some(words)),
            Err(LinkError::Exception {
                code: ExceptionCode::IllegalDataAddress,
                ..
            }) => check.answers.push(None),
            Err(error) => {
                check.answers.clear();
                return Some((Step::Failed(error.into()), sent));
            }
        }
        if check.answers.len() >= entries.len() {
            check.found = from_registers(entries, &check.answers);
            check.answers.clear();
            check.checked_at = Some(now);
        }
        Some((Step::More, sent))
    }

    /// Reads `count` registers at `start` of unit `unit`, which answers as
    /// `target`'s profile says (its turnaround).
    pub(super) async fn read_registers(
        &mut self,
        target: Target<'_>,
        unit: u8,
        start: u16,
        count: u16,
    ) -> (Result<Vec<u16>, DriverError>, Option<Exchange>) {
        let turnaround = Duration::from_millis(target.profile.modbus.turnaround_ms);
        let (result, took) = self.link.read_holding(unit, start, count, turnaround).await;
        let sent = exchange(&result, took);
        (result.map_err(DriverError::from), Some(sent))
    }

    /// Sends one planned write with `words`. To unit 0 (broadcast) no
    /// answer comes back; an address change is answered from the new
    /// address (TH40C manual, App. E), which the device keeps from then on.
    pub(super) async fn write(
        &mut self,
        target: Target<'_>,
        write: &PlannedWrite,
        words: &[u16],
        new_address: Option<UnitAddress>,
    ) -> (Result<CommandDone, DriverError>, Option<Exchange>) {
        let broadcast = write.broadcast;
        let unit = if broadcast { BROADCAST } else { target.address };
        let new_address = new_address.filter(|_| !broadcast);
        let answer_from = new_address.map_or(unit, UnitAddress::get);
        let turnaround = Duration::from_millis(target.profile.modbus.turnaround_ms);
        let (result, took) = self
            .link
            .write_answered_by(unit, answer_from, write.function, write.address, words, turnaround)
            .await;
        // Nothing answers a broadcast: it says nothing of the device's link.
        let sent = (!broadcast).then(|| exchange(&result, took));
        let done = match result {
            Ok(()) if broadcast => Ok(CommandDone {
                note: Some(BROADCAST_SENT),
                new_address: None,
            }),
            Ok(()) => Ok(CommandDone {
                note: None,
                new_address,
            }),
            Err(error) => Err(error.into()),
        };
        (done, sent)
    }
}
