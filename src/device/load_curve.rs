//! The Socomec COUNTIS load curve (average P+ per integration period),
//! kept by the meter and read through a pointer (reference: Socomec COUNTIS
//! Modbus table V200.53, load curve):
//!
//! 1. write 0x0001 to 0xF000: the pointer goes to the newest block;
//! 2. read 122 words at 0xF010: a 6-word header (record count, record size,
//!    integration period, unit code, numerator, denominator), then up to 29
//!    records of 4 words (u32 seconds since 2000-01-01, u16 flag: 0 full,
//!    1 incomplete, u16 value in W without the CT ratio);
//! 3. write 0xFFFE to 0xF000 for the next older block, and read again.
//!
//! Pure functions over the words read; the driver does the exchanges. What
//! the table leaves open is decided here, and said in docs/PROFILES.md
//! ("COUNTIS load curve"): the period's unit ([`period_minutes`]), the time
//! stamps taken as the start of their interval in the meter's local time,
//! and the unit code, which is kept but not interpreted.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::profile_interval::Interval;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;

/// The pointer register.
pub const POINTER: u16 = 0xF000;
/// Written to [`POINTER`]: back to the newest block.
pub const NEWEST_BLOCK: u16 = 0x0001;
/// Written to [`POINTER`]: on to the next older block.
pub const OLDER_BLOCK: u16 = 0xFFFE;
/// Where a block is read.
pub const BLOCK: u16 = 0xF010;
/// The words of one block: the header and 29 records.
pub const BLOCK_WORDS: u16 = (HEADER_WORDS + MAX_RECORDS * RECORD_WORDS) as u16;
/// Records a block holds at most.
pub const MAX_RECORDS: usize = 29;
const HEADER_WORDS: usize = 6;
const RECORD_WORDS: usize = 4;

/// The channel the records are stored under: last average active import
/// power (IEC 62056-61 `1.5.0`, the TH40C's load-profile power channel),
/// in kW.
pub const OBIS: &str = "1-1:1.5.0";

/// The meter's status of a full record.
pub const FULL: &str = "full";
/// The meter's status of a record the meter flags incomplete (flag 1).
pub const INCOMPLETE: &str = "incomplete";

/// A block's header, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub count: u16,
    pub record_size: u16,
    pub period: u16,
    pub unit_code: u16,
    pub numerator: u16,
    pub denominator: u16,
}

/// One record, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Seconds since 2000-01-01 00:00 on the meter's clock.
    pub seconds: u32,
    pub flag: u16,
    /// Average power in W over the period, before numerator/denominator
    /// and CT ratio.
    pub value: u16,
}

/// One block of the load curve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: Header,
    pub records: Vec<Record>,
}

/// Why a block's answer cannot be taken: nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("load curve block of {0} words, {BLOCK_WORDS} expected")]
    Length(usize),
    #[error("load curve record size {0}, 4 expected")]
    RecordSize(u16),
    #[error("load curve record count {0}, at most 29 expected")]
    Count(u16),
    #[error("load curve denominator 0")]
    ZeroDenominator,
    #[error("load curve integration period {0} is neither seconds (a multiple of 60 dividing 3600) nor minutes (1-60)")]
    Period(u16),
}

/// Decodes one block read at [`BLOCK`].
pub fn decode_block(words: &[u16]) -> Result<Block, BlockError> {
    if words.len() != usize::from(BLOCK_WORDS) {
        return Err(BlockError::Length(words.len()));
    }
    let header = Header {
        count: words[0],
        record_size: words[1],
        period: words[2],
        unit_code: words[3],
        numerator: words[4],
        denominator: words[5],
    };
    if usize::from(header.record_size) != RECORD_WORDS {
        return Err(BlockError::RecordSize(header.record_size));
    }
    if usize::from(header.count) > MAX_RECORDS {
        return Err(BlockError::Count(header.count));
    }
    if header.denominator == 0 {
        return Err(BlockError::ZeroDenominator);
    }
    if header.count > 0 && period_minutes(header.period).is_none() {
        return Err(BlockError::Period(header.period));
    }
    let records = words[HEADER_WORDS..]
        .chunks_exact(RECORD_WORDS)
        .take(usize::from(header.count))
        .map(|record| Record {
            seconds: (u32::from(record[0]) << 16) | u32::from(record[1]),
            flag: record[2],
            value: record[3],
        })
        .collect();
    Ok(Block { header, records })
}

/// The integration period in minutes. The table does not say whether it
/// counts seconds or minutes (0xE00B, the period setting, is in seconds,
/// 60-3600): a value that is a multiple of 60 and divides 3600 is taken as
/// seconds (60 is one minute), any other value from 1 to 60 as minutes;
/// anything else has no reading and fails the block.
pub fn period_minutes(raw: u16) -> Option<u32> {
    let raw = u32::from(raw);
    if raw >= 60 && raw % 60 == 0 && 3600 % raw == 0 {
        Some(raw / 60)
    } else if (1..=60).contains(&raw) {
        Some(raw)
    } else {
        None
    }
}

/// The meter's clock epoch.
fn epoch() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

impl Record {
    /// The start of its interval: its stamp on the meter's clock in `zone`
    /// (a stamp in a skipped hour has none; one in a repeated hour is
    /// taken as the first).
    pub fn start(&self, zone: Tz) -> Option<DateTime<Utc>> {
        let local = epoch() + TimeDelta::seconds(i64::from(self.seconds));
        zone.from_local_datetime(&local)
            .earliest()
            .map(|at| at.with_timezone(&Utc))
    }
}

impl Block {
    /// The records as intervals of average power in kW: value x numerator
    /// / denominator (W), x `ct_ratio` (the meter's CT primary over
    /// secondary; 1 for a direct meter). A record the meter flags
    /// incomplete keeps that status; a stamp with no instant in `zone` is
    /// left out.
    pub fn intervals(&self, zone: Tz, ct_ratio: f64) -> Vec<Interval> {
        let Some(minutes) = period_minutes(self.header.period) else {
            return Vec::new();
        };
        let Ok(obis) = OBIS.parse::<ObisCode>() else {
            return Vec::new();
        };
        let scale = f64::from(self.header.numerator) / f64::from(self.header.denominator) * ct_ratio / 1000.0;
        self.records
            .iter()
            .filter_map(|record| {
                Some(Interval {
                    obis: obis.clone(),
                    start: record.start(zone)?,
                    minutes,
                    value: f64::from(record.value) * scale,
                    unit: Unit::KW,
                    meter_status: match record.flag {
                        0 => FULL.to_owned(),
                        1 => INCOMPLETE.to_owned(),
                        other => format!("flag {other}"),
                    },
                    quality: Quality::GOOD,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block laid out by hand from the table: header words, then records
    /// of (stamp high, stamp low, flag, value).
    fn block(header: [u16; 6], records: &[[u16; 4]]) -> Vec<u16> {
        let mut words = header.to_vec();
        for record in records {
            words.extend_from_slice(record);
        }
        words.resize(122, 0);
        words
    }

    #[test]
    fn a_block_decodes_to_scaled_intervals_with_their_status() {
        // 2026-12-06 10:00:00 is 849 866 400 s after 2000-01-01 00:00
        // (9 836 days x 86 400 + 36 000) = 0x32A7_EEA0; 10:15 is 900 s later,
        // 0x32A7_F224. Period 900 (seconds, 15 min), unit code 0x0017 kept
        // as sent, numerator 2, denominator 1 (each count is 2 W).
        let words = block(
            [2, 4, 900, 0x0017, 2, 1],
            &[
                [0x32A7, 0xEEA0, 0, 1500],   // full: 1500 x 2 = 3000 W
                [0x32A7, 0xF224, 1, 0x0100], // incomplete: 256 x 2 = 512 W
            ],
        );
        let block = decode_block(&words).unwrap();
        assert_eq!(block.header.unit_code, 0x0017);
        // Behind a 800/5 CT: x 160.
        let intervals = block.intervals(Tz::UTC, 160.0);
        assert_eq!(intervals.len(), 2);
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(intervals[0].start, at("2026-12-06T10:00:00Z"));
        assert_eq!(intervals[1].start, at("2026-12-06T10:15:00Z"));
        assert_eq!(intervals[0].minutes, 15);
        assert!((intervals[0].value - 480.0).abs() < 1e-9, "{}", intervals[0].value);
        assert!((intervals[1].value - 81.92).abs() < 1e-9, "{}", intervals[1].value);
        assert_eq!(intervals[0].unit, Unit::KW);
        assert_eq!(intervals[0].obis.to_string(), "1-1:1.5.0");
        assert_eq!(
            (intervals[0].meter_status.as_str(), intervals[1].meter_status.as_str()),
            (FULL, INCOMPLETE)
        );
        // In the meter's zone: 10:00 in Paris (winter, UTC+1) is 09:00 UTC.
        let paris = block.intervals(chrono_tz::Europe::Paris, 1.0);
        assert_eq!(paris[0].start, at("2026-12-06T09:00:00Z"));
    }

    #[test]
    fn records_past_the_count_are_not_read() {
        let words = block([0, 4, 15, 0, 1, 1], &[[0x32A7, 0xEEA0, 0, 1500]]);
        assert!(decode_block(&words).unwrap().records.is_empty());
    }

    #[test]
    fn a_garbled_header_is_refused() {
        let record = [[0x32A7, 0xEEA0, 0, 1500]];
        assert_eq!(
            decode_block(&block([1, 5, 900, 0, 1, 1], &record)),
            Err(BlockError::RecordSize(5))
        );
        assert_eq!(
            decode_block(&block([30, 4, 900, 0, 1, 1], &record)),
            Err(BlockError::Count(30))
        );
        assert_eq!(
            decode_block(&block([1, 4, 900, 0, 1, 0], &record)),
            Err(BlockError::ZeroDenominator)
        );
        assert_eq!(
            decode_block(&block([1, 4, 90, 0, 1, 1], &record)),
            Err(BlockError::Period(90))
        );
        assert_eq!(decode_block(&[0; 6]), Err(BlockError::Length(6)));
    }

    #[test]
    fn the_period_is_seconds_when_it_divides_an_hour_in_whole_minutes_else_minutes() {
        assert_eq!(period_minutes(900), Some(15));
        assert_eq!(period_minutes(3600), Some(60));
        assert_eq!(period_minutes(60), Some(1));
        assert_eq!(period_minutes(15), Some(15));
        assert_eq!(period_minutes(10), Some(10));
        assert_eq!(period_minutes(0), None);
        assert_eq!(period_minutes(90), None);
        assert_eq!(period_minutes(7200), None);
    }
}
