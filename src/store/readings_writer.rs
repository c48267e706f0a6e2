//! The ingest path's writer of readings: each batch into the time series
//! (`store::readings::insert_series`), and the latest values
//! (`store::latest_values`) as they change, written once the batches stop
//! coming and at most every [`LATEST_EVERY`] while they keep coming, so a
//! busy ingest rewrites a code's latest row once however often it is read.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::time::Instant;

use super::error::StoreError;
use super::latest_values::LatestValues;
use super::readings::insert_series;
use crate::device::reading::Reading;
use crate::domain::ids::DeviceId;

/// The longest the latest values wait while batches keep coming.
pub const LATEST_EVERY: Duration = Duration::from_secs(2);

/// See the module documentation. One writer per outbox: it remembers what
/// it wrote.
#[derive(Debug)]
pub struct ReadingsWriter {
    latest: LatestValues,
    flushed_at: Instant,
}

impl Default for ReadingsWriter {
    fn default() -> Self {
        ReadingsWriter {
            latest: LatestValues::default(),
            flushed_at: Instant::now(),
        }
    }
}

impl ReadingsWriter {
    /// Stores a batch in the series at server time `now`, and its latest
    /// values when they last went [`LATEST_EVERY`] ago or more. Once the
    /// series took the batch it counts as written: a failure of the latest
    /// values leaves them for the next try ([`ReadingsWriter::flush`]).
    pub async fn write(
        &mut self,
        pool: &PgPool,
        batch: &[(DeviceId, Reading)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_series(pool, batch, now).await?;
        self.latest.take(batch, now);
        if self.flushed_at.elapsed() >= LATEST_EVERY {
            if let Err(error) = self.flush(pool, now).await {
                tracing::debug!(%error, "latest values not written; they wait for the next try");
            }
        }
        Ok(())
    }

    /// Writes the latest values waiting, at server time `now`.
    pub async fn flush(&mut self, pool: &PgPool, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.flushed_at = Instant::now();
        self.latest.flush(pool, now).await.map(|_| ())
    }

    /// Whether latest values wait to be written.
    pub fn has_pending(&self) -> bool {
        self.latest.pending() > 0
    }
}
