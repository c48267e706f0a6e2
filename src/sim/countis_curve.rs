//! The simulated COUNTIS's load curve and name strings, served outside its
//! profile's register map (reference: Socomec COUNTIS Modbus table
//! V200.53, load curve and identification):
//!
//! - 0xF000: 0x0001 puts the pointer on the newest block, 0xFFFE moves it
//!   one block older; any other value is exception 03;
//! - 0xF010: 122 words, the block under the pointer: header (count, record
//!   size 4, period 900 s, unit code 0, numerator 2, denominator 1), then
//!   up to 29 records newest first, each the average import power (P+, W)
//!   of one 15-minute period on the secondary side of the CT (the measured
//!   power over the configured CT ratio), in counts of 2 W, stamped with
//!   the period's start in seconds since 2000-01-01 on the meter's local
//!   clock. The newest record is the period still running, flagged
//!   incomplete (1), averaged so far; 7 days of closed periods follow;
//!   past them a block has no record;
//! - 0xC37A / 0xC382: vendor "SOCOMEC" and product "COUNTIS E33/E43/E44",
//!   two characters a register.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::countis::{CountisModel, Variant};
use crate::device::identify::{TextEncoding, encode_text};
use crate::protocol::modbus::frame::Exception;

/// The load curve's integration period, seconds.
pub const PERIOD_SECONDS: i64 = 900;
/// Days of closed periods kept.
pub const DAYS_KEPT: i64 = 7;
/// Watts per count of a record's value (the header's numerator; the
/// denominator is 1).
pub const WATTS_PER_COUNT: u16 = 2;
const POINTER: u16 = 0xF000;
const BLOCK: u16 = 0xF010;
const BLOCK_WORDS: u16 = 122;
const RECORDS: i64 = 29;
const VENDOR: u16 = 0xC37A;
const PRODUCT: u16 = 0xC382;
const NAME_WORDS: u16 = 8;

impl CountisModel {
    /// The registers this model serves itself; `None` for the profile's.
    pub(super) fn read_curve_or_names(
        &self,
        start: u16,
        count: u16,
        now: DateTime<Utc>,
    ) -> Option<Result<Vec<u16>, Exception>> {
        let name = |text: &str| {
            Some(Ok(encode_text(text, NAME_WORDS, TextEncoding::HighLow)
                [..usize::from(count)]
                .to_vec()))
        };
        match start {
            VENDOR if count <= NAME_WORDS => name("SOCOMEC"),
            PRODUCT if count <= NAME_WORDS => name(match self.variant {
                Variant::E33 => "COUNTIS E33",
                Variant::E43 => "COUNTIS E43",
                Variant::E44 => "COUNTIS E44",
            }),
            POINTER..=0xF0FF if !self.load_curve => Some(Err(Exception::IllegalDataAddress)),
            BLOCK if (1..=BLOCK_WORDS).contains(&count) => {
                let mut words = self.curve_block(now);
                words.truncate(usize::from(count));
                Some(Ok(words))
            }
            POINTER..=0xF0FF => Some(Err(Exception::IllegalDataAddress)),
            _ => None,
        }
    }

    /// A write this model takes itself; `None` for the profile's commands.
    pub(super) fn write_curve(&mut self, start: u16, values: &[u16]) -> Option<Result<(), Exception>> {
        if start != POINTER {
            return None;
        }
        if !self.load_curve {
            return Some(Err(Exception::IllegalDataAddress));
        }
        Some(match values {
            [0x0001] => {
                self.curve_pointer = 0;
                Ok(())
            }
            [0xFFFE] => {
                self.curve_pointer += 1;
                Ok(())
            }
            _ => Err(Exception::IllegalDataValue),
        })
    }

    /// The ratio the records are divided by: the configured CT ratio, 1 on
    /// a direct meter.
    fn curve_ct_ratio(&self) -> f64 {
        match self.variant {
            Variant::E33 => 1.0,
            Variant::E43 | Variant::E44 => {
                let (primary, secondary) = self.ct();
                f64::from(primary) / f64::from(secondary)
            }
        }
    }

    /// Average import power (kW, primary side) over `[from, to)`, by the
    /// minute as the counters integrate it.
    pub fn average_import_kw(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let mut at = from;
        let mut sum = 0.0;
        while at < to {
            let end = (at + Duration::seconds(60)).min(to);
            let seconds = (end - at).num_milliseconds() as f64 / 1000.0;
            sum += self.phases(at + (end - at) / 2).total_active().max(0.0) * seconds;
            at = end;
        }
        let total = (to - from).num_milliseconds() as f64 / 1000.0;
        if total > 0.0 { sum / total } else { 0.0 }
    }

    /// The record value (counts of [`WATTS_PER_COUNT`] W, secondary side)
    /// of an average power in kW.
    pub fn curve_counts(&self, kw: f64) -> u16 {
        (kw * 1000.0 / self.curve_ct_ratio() / f64::from(WATTS_PER_COUNT))
            .round()
            .clamp(0.0, 65_535.0) as u16
    }

    fn curve_block(&self, now: DateTime<Utc>) -> Vec<u16> {
        let running =
            DateTime::from_timestamp(now.timestamp().div_euclid(PERIOD_SECONDS) * PERIOD_SECONDS, 0).unwrap_or(now);
        let oldest = running - Duration::days(DAYS_KEPT);
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        let first = self.curve_pointer as i64 * RECORDS;
        let mut records = Vec::new();
        for index in first..first + RECORDS {
            let start = running - Duration::seconds(PERIOD_SECONDS * index);
            if start < oldest {
                break;
            }
            let (end, flag) = if index == 0 {
                (now, 1)
            } else {
                (start + Duration::seconds(PERIOD_SECONDS), 0)
            };
            if end <= start {
                continue;
            }
            let local = start.with_timezone(&self.zone).naive_local();
            let seconds = u32::try_from((local - epoch).num_seconds()).unwrap_or(0);
            let value = self.curve_counts(self.average_import_kw(start, end));
            records.extend([(seconds >> 16) as u16, seconds as u16, flag, value]);
        }
        let count = (records.len() / 4) as u16;
        let size = if self.garbled_block == Some(self.curve_pointer) {
            5
        } else {
            4
        };
        let mut words = vec![count, size, PERIOD_SECONDS as u16, 0, WATTS_PER_COUNT, 1];
        words.extend(records);
        words.resize(usize::from(BLOCK_WORDS), 0);
        words
    }
}

#[cfg(test)]
mod tests {
    use chrono_tz::Tz;

    use super::*;
    use crate::sim::countis::Firmware;
    use crate::sim::model::MeterModel;

    /// A record's stamp, high word first. 2026-11-18 is 9 818 days after
    /// 2000-01-01.
    fn stamp(words: &[u16]) -> u32 {
        (u32::from(words[0]) << 16) | u32::from(words[1])
    }

    #[test]
    fn the_pointer_walks_back_block_by_block_over_seven_days() {
        let now: DateTime<Utc> = "2026-11-18T10:07:30Z".parse().unwrap();
        let mut model = CountisModel::new(Variant::E43, Firmware::V201, 5, Tz::UTC, now);
        let read = |model: &mut CountisModel| model.read_own(BLOCK, BLOCK_WORDS, now).unwrap().unwrap();
        assert_eq!(model.write_own(POINTER, &[0x0001]), Some(Ok(())));
        let newest = read(&mut model);
        assert_eq!(&newest[..6], &[29, 4, 900, 0, 2, 1]);
        // 10:00 (running, incomplete): 9 818 x 86 400 + 36 000 s.
        let ten = 9_818 * 86_400 + 36_000;
        assert_eq!((stamp(&newest[6..]), newest[8]), (ten, 1));
        assert_eq!((stamp(&newest[10..]), newest[12]), (ten - 900, 0));
        assert_eq!(model.write_own(POINTER, &[0xFFFE]), Some(Ok(())));
        let older = read(&mut model);
        assert_eq!(stamp(&older[6..]), ten - 29 * 900);
        // 7 days of closed periods and the running one: 673 records, so
        // the 24th block (index 23) holds 673 - 23 x 29 = 6, the next none.
        for _ in 1..23 {
            model.write_own(POINTER, &[0xFFFE]).unwrap().unwrap();
        }
        assert_eq!(read(&mut model)[0], 6);
        model.write_own(POINTER, &[0xFFFE]).unwrap().unwrap();
        assert_eq!(read(&mut model)[0], 0);
        assert_eq!(
            model.write_own(POINTER, &[0x0002]),
            Some(Err(Exception::IllegalDataValue))
        );
        // Back to the newest.
        model.write_own(POINTER, &[0x0001]).unwrap().unwrap();
        assert_eq!(read(&mut model), newest);
        model.load_curve = false;
        assert_eq!(
            model.write_own(POINTER, &[0x0001]),
            Some(Err(Exception::IllegalDataAddress))
        );
        assert_eq!(
            model.read_own(BLOCK, BLOCK_WORDS, now),
            Some(Err(Exception::IllegalDataAddress))
        );
    }
}
