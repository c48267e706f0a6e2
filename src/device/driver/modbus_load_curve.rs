//! A Modbus meter's own load curve, read block by block through its
//! pointer (`device::load_curve`; reference: Socomec COUNTIS Modbus table
//! V200.53, load curve), newest first, back to what is stored already.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_modbus::ExceptionCode;

use super::error::DriverError;
use super::exchange::Exchange;
use super::modbus::{ModbusDriver, exchange};
use super::modbus_link::LinkError;
use super::read_state::ReadState;
use super::target::Target;
use crate::device::load_curve::{
    BLOCK, BLOCK_WORDS, BlockError, INCOMPLETE, NEWEST_BLOCK, OLDER_BLOCK, POINTER, decode_block,
};
use crate::device::profile::LoadCurveSettings;
use crate::device::profile_interval::Interval;

/// Blocks read at most in one read: 7 days (what the meter keeps) of
/// 1-minute records are 348 blocks; a pointer that never runs out stops
/// here.
const MAX_BLOCKS: usize = 400;

/// What a read of the load curve gave.
#[derive(Debug, Default)]
pub struct LoadCurveRead {
    /// Intervals after the newest one stored, oldest first.
    pub intervals: Vec<Interval>,
    /// Blocks read.
    pub blocks: usize,
    /// How the read ended.
    pub end: LoadCurveEnd,
}

/// How a read of the load curve ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum LoadCurveEnd {
    /// It reached what is stored, or the meter's oldest record.
    #[default]
    Done,
    /// The meter answered exception 02 (illegal data address) to the
    /// pointer or the block: its firmware keeps no load curve. Not asked
    /// again while the worker keeps the device.
    Unsupported,
    /// Found unsupported before: nothing was asked.
    NotAsked,
    /// A block's header made no sense; what came before it is kept.
    Garbled(BlockError),
}

fn illegal_address(error: &LinkError) -> bool {
    matches!(
        error,
        LinkError::Exception {
            code: ExceptionCode::IllegalDataAddress,
            ..
        }
    )
}

impl ModbusDriver {
    /// Reads the load curve from its newest block back to `stored` (the
    /// start of the newest interval stored; everything the meter keeps when
    /// `None`). The newest record, when the meter flags it incomplete, may
    /// be the period still running: it is left for the next read, which
    /// finds it closed. Older incomplete records are kept, flagged.
    pub(super) async fn load_curve(
        &mut self,
        target: Target<'_>,
        state: &mut ReadState,
        settings: &LoadCurveSettings,
        stored: Option<DateTime<Utc>>,
        exchanges: &mut Vec<Exchange>,
    ) -> Result<LoadCurveRead, DriverError> {
        if state.unsupported.contains(&POINTER) {
            return Ok(LoadCurveRead {
                end: LoadCurveEnd::NotAsked,
                ..LoadCurveRead::default()
            });
        }
        let turnaround = Duration::from_millis(target.profile.modbus.turnaround_ms);
        let ct_ratio = match settings.ct_registers {
            Some([primary, secondary]) => {
                let primary = self.read_word(target.address, primary, turnaround, exchanges).await?;
                let secondary = self.read_word(target.address, secondary, turnaround, exchanges).await?;
                if secondary == 0 {
                    return Err(DriverError::Profile(
                        "CT secondary reads 0: load curve not scaled".into(),
                    ));
                }
                f64::from(primary) / f64::from(secondary)
            }
            None => 1.0,
        };
        let mut read = LoadCurveRead::default();
        let mut oldest: Option<DateTime<Utc>> = None;
        while read.blocks < MAX_BLOCKS {
            let pointer = if read.blocks == 0 { NEWEST_BLOCK } else { OLDER_BLOCK };
            let (written, took) = self
                .link()
                .write_answered_by(target.address, target.address, 6, POINTER, &[pointer], turnaround)
                .await;
            exchanges.push(exchange(&written, took));
            let words = match written {
                Ok(()) => {
                    let (words, took) = self
                        .link()
                        .read_holding(target.address, BLOCK, BLOCK_WORDS, turnaround)
                        .await;
                    exchanges.push(exchange(&words, took));
                    words
                }
                Err(error) => Err(error),
            };
            let words = match words {
                Ok(words) => words,
                Err(error) if illegal_address(&error) && read.blocks == 0 => {
                    state.unsupported.insert(POINTER);
                    read.end = LoadCurveEnd::Unsupported;
                    return Ok(read);
                }
                // Past the oldest block: what was read stands.
                Err(error) if illegal_address(&error) => break,
                Err(error) => return Err(error.into()),
            };
            read.blocks += 1;
            let block = match decode_block(&words) {
                Ok(block) => block,
                Err(error) => {
                    read.end = LoadCurveEnd::Garbled(error);
                    break;
                }
            };
            let intervals = block.intervals(target.zone, ct_ratio);
            let block_oldest = intervals.iter().map(|i| i.start).min();
            let reached = intervals
                .iter()
                .any(|interval| stored.is_some_and(|stored| interval.start <= stored));
            let moved = match (block_oldest, oldest) {
                (Some(new), Some(before)) => new < before,
                (Some(_), None) => true,
                (None, _) => false,
            };
            read.intervals.extend(
                intervals
                    .into_iter()
                    .filter(|interval| stored.is_none_or(|stored| interval.start > stored)),
            );
            if reached || !moved {
                break;
            }
            oldest = block_oldest;
        }
        read.intervals.sort_by_key(|interval| interval.start);
        read.intervals.dedup_by_key(|interval| interval.start);
        if read
            .intervals
            .last()
            .is_some_and(|newest| newest.meter_status == INCOMPLETE)
        {
            read.intervals.pop();
        }
        Ok(read)
    }

    async fn read_word(
        &mut self,
        unit: u8,
        address: u16,
        turnaround: Duration,
        exchanges: &mut Vec<Exchange>,
    ) -> Result<u16, DriverError> {
        let (result, took) = self.link().read_holding(unit, address, 1, turnaround).await;
        exchanges.push(exchange(&result, took));
        let words = result?;
        words
            .first()
            .copied()
            .ok_or_else(|| DriverError::Profile(format!("no word at 0x{address:04X}")))
    }
}
