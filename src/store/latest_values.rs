//! The latest value of every device and code (`latest_readings`), kept
//! beside the time series for the dashboards and `/registers`, and what the
//! ingest path knows of it: the values it wrote, so that a value that has
//! not changed costs no write, and the newer ones waiting to be written.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use super::error::StoreError;
use super::reading_columns::ReadingColumns;
use crate::device::reading::Reading;
use crate::domain::clock::{future_limit, is_future};
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;

/// How far an unchanged latest value's `read_at` may lag the newest read
/// before its row is rewritten anyway: `latest_readings.read_at` is the
/// newest read of the value to within this (a changed value, unit, quality
/// or capture time is written with the next flush). Most registers of a
/// full poll, history above all, repeat their last value.
pub const LATEST_REFRESH_SECONDS: f64 = 60.0;

/// Values remembered as written at most: past this the memory is
/// forgotten (about 100 MB), and the next value of each code is written
/// again, which changes nothing but the time of its row.
const MAX_REMEMBERED: usize = 1_000_000;

type Key = (DeviceId, ObisCode);

/// The latest values one writer (the outbox) has written and has yet to
/// write. Values written by another path (readings released from
/// quarantine, `store::identity`) are not known here: an unchanged value
/// may then stay behind one of those for up to [`LATEST_REFRESH_SECONDS`].
#[derive(Debug, Default)]
pub struct LatestValues {
    written: HashMap<Key, Reading>,
    pending: HashMap<Key, Reading>,
}

impl LatestValues {
    /// Takes the newest value of each code in `batch` (stored in the series
    /// at server time `now`) as pending where it is newer than what was
    /// written and changed, or where the written one is
    /// [`LATEST_REFRESH_SECONDS`] old. A value stamped in the future is not
    /// taken; a written one in the future gives way to any that is not.
    pub fn take(&mut self, batch: &[(DeviceId, Reading)], now: DateTime<Utc>) {
        let refresh = TimeDelta::milliseconds((LATEST_REFRESH_SECONDS * 1000.0) as i64);
        for (device, reading) in batch {
            if is_future(reading.read_at, now) {
                continue;
            }
            let key = (*device, reading.obis.clone());
            if let Some(waiting) = self.pending.get_mut(&key) {
                if waiting.read_at <= reading.read_at {
                    *waiting = reading.clone();
                }
                continue;
            }
            let wanted = match self.written.get(&key) {
                None => true,
                Some(written) if is_future(written.read_at, now) => true,
                Some(written) if written.read_at > reading.read_at => false,
                Some(written) => !same(written, reading) || reading.read_at >= written.read_at + refresh,
            };
            if wanted {
                self.pending.insert(key, reading.clone());
            }
        }
    }

    /// Values waiting to be written.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes the pending values in one statement at server time `now`
    /// (rows of devices deleted meanwhile are skipped; a stored value newer
    /// than a pending one stays). Returns how many were sent. Cancelled
    /// half way, or refused because the database is away, it leaves them
    /// pending; refused for another reason, they are dropped (they would be
    /// refused again), and the next values of their codes are taken as any are.
    pub async fn flush(&mut self, pool: &PgPool, now: DateTime<Utc>) -> Result<usize, StoreError> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(DeviceId, Reading)> = self
            .pending
            .iter()
            .map(|((device, _), reading)| (*device, reading.clone()))
            .collect();
        match upsert_latest(pool, &rows, now).await {
            Ok(()) => {
                if self.written.len() + self.pending.len() > MAX_REMEMBERED {
                    self.written.clear();
                }
                self.written.extend(self.pending.drain());
                Ok(rows.len())
            }
            Err(error) => {
                let away = matches!(
                    &error,
                    StoreError::Database(
                        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
                    )
                );
                if !away {
                    // The stored rows are still the written ones.
                    self.pending.clear();
                }
                Err(error)
            }
        }
    }
}

/// Whether a new read repeats the written one (same value, unit, quality
/// and capture time).
fn same(written: &Reading, new: &Reading) -> bool {
    written.value.to_bits() == new.value.to_bits()
        && written.unit == new.unit
        && written.quality == new.quality
        && written.captured_at == new.captured_at
}

/// Writes `rows` (at most one per device and code) into the latest values,
/// at server time `now`: a row replaces the stored one when it is not
/// older and it changed, or the stored one's read is
/// [`LATEST_REFRESH_SECONDS`] old, or the stored one is in the future (past
/// `domain::clock::future_limit`). Rows of devices that no longer exist
/// are skipped.
pub(super) async fn upsert_latest(
    pool: &PgPool,
    rows: &[(DeviceId, Reading)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let columns = ReadingColumns::new(rows, |reading| reading.quality);
    let statement = sqlx::query(
        "INSERT INTO latest_readings (device_id, obis, read_at, value, unit, captured_at, quality) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[], \
                              $6::timestamptz[], $7::int[]) \
             AS x(device_id, obis, read_at, value, unit, captured_at, quality) \
         WHERE EXISTS (SELECT 1 FROM devices WHERE devices.id = x.device_id) \
         ON CONFLICT (device_id, obis) DO UPDATE SET read_at = EXCLUDED.read_at, value = EXCLUDED.value, \
             unit = EXCLUDED.unit, captured_at = EXCLUDED.captured_at, quality = EXCLUDED.quality \
         WHERE (latest_readings.read_at <= EXCLUDED.read_at \
                AND (latest_readings.value IS DISTINCT FROM EXCLUDED.value \
                     OR latest_readings.unit <> EXCLUDED.unit \
                     OR latest_readings.quality <> EXCLUDED.quality \
                     OR latest_readings.captured_at IS DISTINCT FROM EXCLUDED.captured_at \
                     OR EXCLUDED.read_at >= latest_readings.read_at + make_interval(secs => $9))) \
            OR latest_readings.read_at > $8",
    );
    columns
        .bind(statement)
        .bind(future_limit(now))
        .bind(LATEST_REFRESH_SECONDS)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::quality::Quality;
    use crate::domain::unit::Unit;

    fn read(code: &str, value: f64, second: i64) -> (DeviceId, Reading) {
        let start = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let reading = Reading {
            obis: code.parse().unwrap(),
            value,
            unit: Unit::KWh,
            read_at: start + TimeDelta::seconds(second),
            captured_at: None,
            quality: Quality::GOOD,
        };
        (DeviceId(1), reading)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 13, 0, 0).unwrap()
    }

    /// As a successful flush leaves it, without a database.
    fn written(latest: &mut LatestValues) {
        let pending: Vec<_> = latest.pending.drain().collect();
        latest.written.extend(pending);
    }

    #[test]
    fn the_newest_of_a_batch_waits_and_an_older_one_never_replaces_it() {
        let mut latest = LatestValues::default();
        latest.take(&[read("1-0:1.8.0", 2.0, 10), read("1-0:1.8.0", 1.0, 0)], now());
        assert_eq!(latest.pending(), 1);
        assert_eq!(latest.pending.values().next().unwrap().value, 2.0);
        written(&mut latest);
        latest.take(&[read("1-0:1.8.0", 3.0, 5)], now());
        assert_eq!(latest.pending(), 0, "older than the written value");
    }

    #[test]
    fn an_unchanged_value_waits_only_once_the_written_one_is_a_minute_old() {
        let mut latest = LatestValues::default();
        latest.take(&[read("1-0:1.8.0", 2.0, 0)], now());
        written(&mut latest);
        latest.take(&[read("1-0:1.8.0", 2.0, 59)], now());
        assert_eq!(latest.pending(), 0);
        latest.take(&[read("1-0:1.8.0", 2.5, 59)], now());
        assert_eq!(latest.pending(), 1, "a changed value waits at once");
        latest.pending.clear();
        latest.take(&[read("1-0:1.8.0", 2.0, 60)], now());
        assert_eq!(latest.pending(), 1, "60 s after the written read");
    }

    #[test]
    fn a_future_stamp_is_not_taken_and_a_written_one_gives_way() {
        let mut latest = LatestValues::default();
        // 2 hours after 12:00 is an hour ahead of the server's 13:00.
        latest.take(&[read("1-0:1.8.0", 9.0, 7_200)], now());
        assert_eq!(latest.pending(), 0);
        latest.written.insert(
            (DeviceId(1), "1-0:1.8.0".parse().unwrap()),
            read("1-0:1.8.0", 9.0, 7_200).1,
        );
        latest.take(&[read("1-0:1.8.0", 9.0, 0)], now());
        assert_eq!(latest.pending(), 1);
    }
}
