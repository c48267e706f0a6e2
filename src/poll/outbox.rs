//! The outbox: everything the bus workers produce (readings, device
//! statuses, events, load-profile intervals, job progress and outcomes)
//! goes to PostgreSQL from one task, in the order it was produced, so a
//! worker never waits for the database: it hands a record over and moves
//! on to its next exchange.
//!
//! Readings go in batches. When the database is unreachable (or does not
//! answer within [`WRITE_TIMEOUT`]), records stay in a bounded buffer and
//! the record at its head is retried with back-off; only when the buffer is
//! full are the oldest dropped, and counted. A record the database refuses
//! for another reason is logged and dropped, as it would be refused again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::stats::PollStats;
use crate::device::profile_interval::Interval;
use crate::device::reading::Reading;
use crate::domain::address::UnitAddress;
use crate::domain::clock::Clock;
use crate::domain::event::{EventCode, EventKind};
use crate::domain::ids::DeviceId;
use crate::domain::job::JobErrorCode;
use crate::store::StoreError;
use crate::store::device_secrets::update_password_refused;
use crate::store::devices::{DeviceStatus, update_device_address, update_device_status};
use crate::store::events::{insert_event_span, update_event_cleared};
use crate::store::jobs::{update_job_awaiting, update_job_finished, update_job_progress, update_job_started};
use crate::store::load_profile::{insert_meter_intervals, update_profile_read_at};
use crate::store::readings::insert_readings;

/// Rows written per statement at most.
const BATCH_ROWS: usize = 5_000;
/// How long a reading may wait for companions before it is written.
const BATCH_WAIT: Duration = Duration::from_millis(250);
/// Readings kept in memory while the database is away: about an hour of 100
/// TH40Cs at the default periods (each gives some 530,000 values a day).
const BUFFER_ROWS: usize = 2_000_000;
/// Other records kept in memory while the database is away.
const BUFFER_RECORDS: usize = 200_000;
/// How long one write may take before the database counts as away.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Something for the database.
#[derive(Debug, Clone)]
pub enum Record {
    Readings(Vec<(DeviceId, Reading)>),
    Status {
        device: DeviceId,
        status: DeviceStatus,
    },
    /// Opens an event (unless one of its code is open for the device), or
    /// records one already over (`cleared_at`).
    Event {
        device: DeviceId,
        kind: EventKind,
        message: String,
        started_at: DateTime<Utc>,
        cleared_at: Option<DateTime<Utc>>,
    },
    /// Clears the device's open event of `code`, if any.
    EventCleared {
        device: DeviceId,
        code: EventCode,
        at: DateTime<Utc>,
    },
    /// The meter refused the password set at `tried` (`None`: its
    /// profile's): locks the device's programming-mode work and opens a
    /// `password_refused` event, unless the password was set again since.
    PasswordRefused {
        device: DeviceId,
        tried: Option<DateTime<Utc>>,
        message: String,
        at: DateTime<Utc>,
    },
    /// Load-profile intervals the meter recorded; `read_through` when the
    /// read reached the present (what the meter lacks up to then is a gap
    /// it will not fill).
    Intervals {
        device: DeviceId,
        intervals: Vec<Interval>,
        read_through: Option<DateTime<Utc>>,
    },
    JobStarted {
        job: i64,
        progress: Option<Value>,
    },
    JobProgress {
        job: i64,
        progress: Value,
    },
    JobFinished {
        job: i64,
        outcome: Result<Value, (JobErrorCode, String)>,
    },
    /// A command put back to wait for field programming (see
    /// `store::jobs::update_job_awaiting`).
    JobAwaiting {
        job: i64,
        instructions: String,
        next_try_at: DateTime<Utc>,
        deadline: DateTime<Utc>,
    },
    /// A command that moved the device to `address`: the stored device
    /// follows, then the job succeeds (or fails, if the address cannot be
    /// stored).
    AddressChanged {
        job: i64,
        device: DeviceId,
        address: UnitAddress,
        result: Value,
    },
}

/// Where workers hand their records; never waits.
#[derive(Debug, Clone)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<Record>,
    stats: Arc<PollStats>,
}

impl Outbox {
    /// Hands a record over. Records are lost only once the outbox has stopped.
    pub fn send(&self, record: Record) {
        if let Record::Readings(batch) = &record {
            PollStats::add(&self.stats.readings_queued, batch.len() as u64);
        }
        if self.sender.send(record).is_err() {
            tracing::error!("the outbox has stopped; a record is lost");
        }
    }

    fn channel(stats: Arc<PollStats>) -> (Outbox, mpsc::UnboundedReceiver<Record>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Outbox { sender, stats }, receiver)
    }
}

/// Whether a failure says the database is away (try again) rather than
/// that it refuses the record.
fn is_transient(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Database(
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
        )
    )
}

/// Writes one record (readings: those at the head of `buffer`, as one
/// batch) at the time `clock` gives. Returns how many readings went in.
async fn write(pool: &PgPool, clock: &Clock, buffer: &VecDeque<Record>) -> Result<usize, StoreError> {
    let Some(head) = buffer.front() else { return Ok(0) };
    match head {
        Record::Readings(_) => {
            let mut batch = Vec::new();
            for record in buffer {
                match record {
                    Record::Readings(readings) if batch.is_empty() || batch.len() + readings.len() <= BATCH_ROWS => {
                        batch.extend(readings.iter().cloned());
                    }
                    _ => break,
                }
            }
            insert_readings(pool, &batch, clock.now()).await?;
            return Ok(batch.len());
        }
        Record::Status { device, status } => update_device_status(pool, *device, status).await?,
        Record::Event {
            device,
            kind,
            message,
            started_at,
            cleared_at,
        } => insert_event_span(pool, *device, kind, message, *started_at, *cleared_at).await?,
        Record::EventCleared { device, code, at } => update_event_cleared(pool, *device, code, *at).await?,
        Record::PasswordRefused {
            device,
            tried,
            message,
            at,
        } => {
            if !update_password_refused(pool, *device, *tried, message, *at).await? {
                tracing::info!(device = %device, "a refusal of a password set again since is not stored");
            }
        }
        Record::Intervals {
            device,
            intervals,
            read_through,
        } => {
            insert_meter_intervals(pool, *device, intervals, clock.now()).await?;
            if let Some(at) = read_through {
                update_profile_read_at(pool, *device, *at).await?;
            }
        }
        Record::JobStarted { job, progress } => update_job_started(pool, *job, progress.as_ref()).await?,
        Record::JobProgress { job, progress } => update_job_progress(pool, *job, progress).await?,
        Record::JobAwaiting {
            job,
            instructions,
            next_try_at,
            deadline,
        } => update_job_awaiting(pool, *job, instructions, *next_try_at, *deadline).await?,
        Record::JobFinished { job, outcome } => {
            let outcome = match outcome {
                Ok(result) => Ok(result),
                Err((code, message)) => Err((*code, message.as_str())),
            };
            update_job_finished(pool, *job, outcome).await?;
        }
        Record::AddressChanged {
            job,
            device,
            address,
            result,
        } => {
            let outcome = match update_device_address(pool, *device, *address).await {
                Err(error) if is_transient(&error) => return Err(error),
                Err(error) => Err(format!(
                    "the device took address {address}, but it could not be stored: {error}"
                )),
                Ok(()) => Ok(()),
            };
            match &outcome {
                Ok(()) => update_job_finished(pool, *job, Ok(result)).await?,
                Err(message) => update_job_finished(pool, *job, Err((JobErrorCode::Store, message))).await?,
            }
        }
    }
    Ok(0)
}

/// How many records (readings: batches) a write took off the buffer.
fn taken(buffer: &VecDeque<Record>, readings: usize) -> usize {
    if readings == 0 {
        return 1;
    }
    let mut rows = 0;
    let mut records = 0;
    for record in buffer {
        match record {
            Record::Readings(batch) if rows < readings => {
                rows += batch.len();
                records += 1;
            }
            _ => break,
        }
    }
    records
}

/// Starts the outbox task. Once every sender is gone it drains what it
/// holds (trying a few more times if the database is away) and ends.
/// `clock` is the server's: what is stamped in the future by it when
/// written is stored flagged (see `store::readings::insert_readings`).
pub fn spawn_outbox(pool: PgPool, stats: Arc<PollStats>, clock: Clock) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (outbox, mut receiver) = Outbox::channel(Arc::clone(&stats));
    let task = tokio::spawn(async move {
        let mut buffer: VecDeque<Record> = VecDeque::new();
        let mut rows = 0usize;
        let mut retry_delay = Duration::from_millis(500);
        let mut next_write: Option<Instant> = None;
        let mut open = true;
        let mut failures_after_close = 0;
        let mut retrying = false;
        loop {
            let deadline = next_write.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                received = receiver.recv(), if open => match received {
                    Some(record) => {
                        let readings = matches!(record, Record::Readings(_));
                        if let Record::Readings(batch) = &record {
                            rows += batch.len();
                        }
                        buffer.push_back(record);
                        trim(&mut buffer, &mut rows, &stats);
                        // Readings wait for companions, anything else goes at
                        // once; while the database is away, the retry waits.
                        if !retrying {
                            let wait = if readings && rows < BATCH_ROWS { BATCH_WAIT } else { Duration::ZERO };
                            let wanted = Instant::now() + wait;
                            next_write = Some(next_write.map_or(wanted, |at| at.min(wanted)));
                        }
                    }
                    None => {
                        open = false;
                        next_write = Some(Instant::now());
                    }
                },
                _ = tokio::time::sleep_until(deadline), if next_write.is_some() => {
                    let result = match tokio::time::timeout(WRITE_TIMEOUT, write(&pool, &clock, &buffer)).await {
                        Ok(result) => result,
                        Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
                    };
                    match result {
                        Ok(stored) => {
                            for record in buffer.drain(..taken(&buffer, stored).min(buffer.len())) {
                                if let Record::Readings(batch) = record {
                                    rows -= batch.len();
                                }
                            }
                            if stored > 0 {
                                PollStats::add(&stats.readings_stored, stored as u64);
                            }
                            if retrying {
                                tracing::warn!(stored, buffered = buffer.len(), "the database takes writes again");
                            }
                            retry_delay = Duration::from_millis(500);
                            retrying = false;
                            next_write = (!buffer.is_empty()).then(Instant::now);
                        }
                        Err(error) if is_transient(&error) || matches!(buffer.front(), Some(Record::Readings(_))) => {
                            PollStats::add(&stats.ingest_failures, 1);
                            tracing::warn!(%error, buffered = buffer.len(), "cannot write to the database; will retry");
                            retrying = true;
                            next_write = Some(Instant::now() + retry_delay);
                            retry_delay = (retry_delay * 2).min(Duration::from_secs(30));
                            if !open {
                                failures_after_close += 1;
                                if failures_after_close >= 3 {
                                    tracing::error!(lost = buffer.len(), "stopping with records the database did not take");
                                    return;
                                }
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, record = ?buffer.front(), "the database refused a record; dropped");
                            if let Some(Record::Readings(batch)) = buffer.pop_front() {
                                rows -= batch.len();
                            }
                            next_write = (!buffer.is_empty()).then(Instant::now);
                        }
                    }
                },
            }
            if !open && buffer.is_empty() {
                return;
            }
        }
    });
    (outbox, task)
}

/// Drops the oldest records while the buffer holds more than it may.
fn trim(buffer: &mut VecDeque<Record>, rows: &mut usize, stats: &PollStats) {
    while *rows > BUFFER_ROWS || buffer.len() > BUFFER_RECORDS {
        let Some(record) = buffer.pop_front() else { return };
        if let Record::Readings(batch) = record {
            *rows -= batch.len();
            PollStats::add(&stats.readings_dropped, batch.len() as u64);
            tracing::error!(dropped = batch.len(), "outbox full: oldest readings dropped");
        } else {
            tracing::error!("outbox full: oldest record dropped");
        }
    }
}
