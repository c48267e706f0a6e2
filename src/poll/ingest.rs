//! Ingest: readings from every bus worker go to PostgreSQL in batches.
//!
//! Workers never wait for the database. When it is unreachable, readings
//! stay in a bounded buffer and the batch is retried with back-off; only
//! when the buffer is full are the oldest readings dropped, and counted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::stats::PollStats;
use crate::device::reading::Reading;
use crate::domain::ids::DeviceId;
use crate::store::readings::insert_readings;

/// Rows written per statement at most.
const BATCH_ROWS: usize = 5_000;
/// How long a reading may wait for companions before it is written.
const BATCH_WAIT: Duration = Duration::from_millis(250);
/// Readings kept in memory while the database is away: about an hour of 100
/// TH40Cs at the default periods (each gives some 530,000 values a day).
const BUFFER_ROWS: usize = 2_000_000;

pub type IngestSender = mpsc::Sender<Vec<(DeviceId, Reading)>>;

/// Starts the ingest task. Once every sender is gone it drains what it
/// holds (trying a few more times if the database is away) and ends.
pub fn spawn_ingest(pool: PgPool, stats: Arc<PollStats>) -> (IngestSender, tokio::task::JoinHandle<()>) {
    let (sender, mut receiver) = mpsc::channel::<Vec<(DeviceId, Reading)>>(1_024);
    let task = tokio::spawn(async move {
        let mut buffer: VecDeque<(DeviceId, Reading)> = VecDeque::new();
        let mut retry_delay = Duration::from_millis(500);
        let mut next_write: Option<Instant> = None;
        let mut open = true;
        let mut failures_after_close = 0;
        loop {
            let deadline = next_write.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                received = receiver.recv(), if open => match received {
                    Some(batch) => {
                        buffer.extend(batch);
                        let overflow = buffer.len().saturating_sub(BUFFER_ROWS);
                        if overflow > 0 {
                            buffer.drain(..overflow);
                            PollStats::add(&stats.readings_dropped, overflow as u64);
                            tracing::error!(dropped = overflow, "ingest buffer full: oldest readings dropped");
                        }
                        if next_write.is_none() {
                            next_write = Some(Instant::now() + BATCH_WAIT);
                        }
                        if buffer.len() >= BATCH_ROWS {
                            next_write = Some(Instant::now());
                        }
                    }
                    None => {
                        open = false;
                        next_write = Some(Instant::now());
                    }
                },
                _ = tokio::time::sleep_until(deadline), if next_write.is_some() => {
                    let take = buffer.len().min(BATCH_ROWS);
                    let batch: Vec<_> = buffer.range(..take).cloned().collect();
                    match insert_readings(&pool, &batch).await {
                        Ok(()) => {
                            buffer.drain(..take);
                            PollStats::add(&stats.readings_stored, take as u64);
                            retry_delay = Duration::from_millis(500);
                            next_write = (!buffer.is_empty()).then(Instant::now);
                        }
                        Err(error) => {
                            PollStats::add(&stats.ingest_failures, 1);
                            tracing::warn!(%error, buffered = buffer.len(), "cannot store readings; will retry");
                            next_write = Some(Instant::now() + retry_delay);
                            retry_delay = (retry_delay * 2).min(Duration::from_secs(30));
                            if !open {
                                failures_after_close += 1;
                                if failures_after_close >= 3 {
                                    tracing::error!(lost = buffer.len(), "stopping with readings the database did not take");
                                    return;
                                }
                            }
                        }
                    }
                },
            }
            if !open && buffer.is_empty() {
                return;
            }
        }
    });
    (sender, task)
}
