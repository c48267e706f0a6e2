//! The outbox: everything the bus workers produce (readings, device
//! statuses, events, load-profile intervals, job progress and outcomes)
//! goes to PostgreSQL from one task, in the order it was produced, so a
//! worker never waits for the database: it hands a record over and moves
//! on to its next exchange.
//!
//! Readings go in batches, each into the series by one binary `COPY`; the
//! latest values follow as they change, when no batch is left to write and
//! at most every `store::readings_writer::LATEST_EVERY` while batches keep
//! coming (`store::readings_writer`). When the database is unreachable (or does not
//! answer within [`WRITE_TIMEOUT`]), records stay in a bounded buffer and
//! the record at its head is retried with back-off; only when the buffer is
//! full are the oldest dropped, and counted. A record the database refuses
//! for another reason is logged and dropped, as it would be refused again.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use super::spill::{Replayed, Spill};
use super::stats::PollStats;
use crate::device::iec_logbook::LogbookEvent;
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
use crate::store::identity::{insert_held_readings, record_identity_seen};
use crate::store::jobs::{update_job_awaiting, update_job_finished, update_job_progress, update_job_started};
use crate::store::load_profile::{insert_meter_intervals, update_profile_read_at};
use crate::store::load_profile_backfill::{Backfill, upsert_backfill};
use crate::store::logbook::{delete_logbook_refusal, insert_logbook_entries, insert_logbook_refusal};
use crate::store::readings_writer::ReadingsWriter;

/// Rows written per statement at most.
const BATCH_ROWS: usize = 20_000;
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
    /// Readings of a device in quarantine (another meter answers at its
    /// address): kept aside until an engineer confirms the replacement.
    HeldReadings(Vec<(DeviceId, Reading)>),
    /// The identity a read of the device found (see `store::identity`).
    IdentitySeen {
        device: DeviceId,
        name: String,
        identity: String,
        at: DateTime<Utc>,
    },
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
    /// it will not fill); `backfill`, the progress of a first backfill,
    /// recorded once the intervals are.
    Intervals {
        device: DeviceId,
        intervals: Vec<Interval>,
        read_through: Option<DateTime<Utc>>,
        backfill: Option<Backfill>,
    },
    /// Entries of a meter's event logbook: each stored once, with its
    /// event at the meter's time (see `store::logbook`).
    LogbookEntries {
        device: DeviceId,
        name: String,
        entries: Vec<LogbookEvent>,
    },
    /// The meter refused logbook `profile` whole at `at`: recorded, with
    /// its `meter_logbook_unsupported` event the first time; a refusal
    /// that repeats only moves `refused_at`.
    LogbookRefused {
        device: DeviceId,
        profile: u8,
        message: String,
        at: DateTime<Utc>,
    },
    /// The meter answered for logbook `profile`, refused before: its
    /// refusal is removed.
    LogbookAnswered {
        device: DeviceId,
        profile: u8,
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

/// Readings a record carries (held ones included): what counts towards
/// the buffer's bound and goes to the spill file.
fn rows_of(record: &Record) -> usize {
    match record {
        Record::Readings(batch) | Record::HeldReadings(batch) => batch.len(),
        _ => 0,
    }
}

/// The records a write takes from the head of the buffer: consecutive
/// readings as one batch (up to [`BATCH_ROWS`]), or the one record there.
fn head_records(buffer: &VecDeque<(u64, Record)>) -> (Vec<Record>, u64) {
    let mut entries = buffer.iter();
    let Some((seq, first)) = entries.next() else {
        return (Vec::new(), 0);
    };
    let mut taken = vec![first.clone()];
    let mut last = *seq;
    if let Record::Readings(first_rows) = first {
        let mut rows = first_rows.len();
        for (seq, record) in entries {
            match record {
                Record::Readings(readings) if rows + readings.len() <= BATCH_ROWS => {
                    rows += readings.len();
                    taken.push(record.clone());
                    last = *seq;
                }
                _ => break,
            }
        }
    }
    (taken, last)
}

/// Writes records taken by [`head_records`] at the time `clock` gives,
/// readings through `writer`. Returns how many readings went in.
async fn write(
    pool: &PgPool,
    clock: &Clock,
    writer: &Mutex<ReadingsWriter>,
    records: &[Record],
) -> Result<usize, StoreError> {
    let Some(head) = records.first() else { return Ok(0) };
    match head {
        Record::Readings(_) => {
            let batch: Vec<(DeviceId, Reading)> = records
                .iter()
                .flat_map(|record| match record {
                    Record::Readings(readings) => readings.as_slice(),
                    _ => &[],
                })
                .cloned()
                .collect();
            writer.lock().await.write(pool, &batch, clock.now()).await?;
            return Ok(batch.len());
        }
        Record::HeldReadings(batch) => insert_held_readings(pool, batch).await?,
        Record::IdentitySeen {
            device,
            name,
            identity,
            at,
        } => record_identity_seen(pool, *device, name, identity, *at).await?,
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
            backfill,
        } => {
            insert_meter_intervals(pool, *device, intervals, clock.now()).await?;
            if let Some(at) = read_through {
                update_profile_read_at(pool, *device, *at).await?;
            }
            if let Some(backfill) = backfill {
                upsert_backfill(pool, *device, backfill).await?;
            }
        }
        Record::LogbookEntries { device, name, entries } => {
            let new = insert_logbook_entries(pool, *device, name, entries).await?;
            tracing::debug!(device = %device, new, "logbook entries stored");
        }
        Record::LogbookRefused {
            device,
            profile,
            message,
            at,
        } => insert_logbook_refusal(pool, *device, *profile, message, *at).await?,
        Record::LogbookAnswered { device, profile } => delete_logbook_refusal(pool, *device, *profile).await?,
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

/// How the outbox keeps what the database cannot take yet.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Where readings go while the database is away (`OHMNIBUS_SPILL_DIR`);
    /// `None` keeps them in memory only, up to [`BUFFER_ROWS`].
    pub spill_dir: Option<PathBuf>,
    /// Readings kept in memory while the database is away before they are
    /// spilled.
    pub memory_rows: usize,
    /// How long a reading stays in memory while the database is away (or a
    /// write hangs) before it is spilled: about what a process killed
    /// outright can lose.
    pub spill_after: Duration,
}

/// [`OutboxSettings::memory_rows`] unless told otherwise.
pub const MEMORY_ROWS: usize = 100_000;
/// [`OutboxSettings::spill_after`] unless told otherwise.
pub const SPILL_AFTER: Duration = Duration::from_millis(500);
/// How long the outbox goes on writing once told to stop, before it spills
/// what is left and ends.
pub const CLOSE_GRACE: Duration = Duration::from_secs(8);
/// The longest wait between two tries while the database is away.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(8);

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            spill_dir: None,
            memory_rows: MEMORY_ROWS,
            spill_after: SPILL_AFTER,
        }
    }
}

/// A write on its way to the database.
type Flight = Pin<Box<dyn Future<Output = Landed> + Send>>;

/// What a write was, and how it went.
struct Landed {
    what: Flying,
    result: Result<usize, StoreError>,
}

enum Flying {
    /// Records from the head of the buffer, up to this sequence number.
    Buffer { last: u64 },
    /// A batch read back from the spill file.
    Replay(Replayed),
    /// The latest values waiting in the writer.
    Latest,
}

/// The outbox task's state.
struct Ingest {
    pool: PgPool,
    /// The server's: what it stamps in the future when written is stored
    /// flagged (see `store::readings::insert_series`).
    clock: Clock,
    /// Writes the readings, and the latest values as they change.
    writer: Arc<Mutex<ReadingsWriter>>,
    stats: Arc<PollStats>,
    /// Records in the order they came, each with its sequence number.
    buffer: VecDeque<(u64, Record)>,
    next_seq: u64,
    /// Readings in `buffer`, held ones included.
    rows: usize,
    spill: Option<Spill>,
    /// The spill file refused a write (logged once until it takes one again).
    spill_failing: bool,
    /// A write failed because the database is away; cleared by the next
    /// write that lands.
    away: bool,
    retry_delay: Duration,
    /// Readings spilled and replayed in this outage (for the log).
    spilled: u64,
    replayed: u64,
}

impl Ingest {
    fn new(pool: PgPool, clock: Clock, stats: Arc<PollStats>, settings: &OutboxSettings) -> Ingest {
        let spill = settings.spill_dir.as_deref().and_then(|dir| match Spill::open(dir) {
            Ok(spill) => {
                if spill.is_pending() {
                    tracing::warn!(
                        file = %spill.path().display(),
                        bytes = spill.pending_bytes(),
                        "readings spilled by an earlier run are to be replayed"
                    );
                }
                Some(spill)
            }
            Err(error) => {
                tracing::error!(%error, "cannot spill readings; while the database is away they stay in memory");
                None
            }
        });
        Ingest {
            pool,
            clock,
            writer: Arc::new(Mutex::new(ReadingsWriter::default())),
            stats,
            buffer: VecDeque::new(),
            next_seq: 0,
            rows: 0,
            spill,
            spill_failing: false,
            away: false,
            retry_delay: Duration::from_millis(500),
            spilled: 0,
            replayed: 0,
        }
    }

    fn push(&mut self, record: Record) {
        self.rows += rows_of(&record);
        self.buffer.push_back((self.next_seq, record));
        self.next_seq += 1;
    }

    fn replay_pending(&self) -> bool {
        self.spill.as_ref().is_some_and(Spill::is_pending)
    }

    /// Whether latest values wait to be written (never while a write is
    /// in flight, which holds the writer).
    fn latest_pending(&self) -> bool {
        self.writer.try_lock().is_ok_and(|writer| writer.has_pending())
    }

    /// A write of the latest values waiting.
    fn write_latest(&self) -> Flight {
        let (pool, now, writer) = (self.pool.clone(), self.clock.now(), Arc::clone(&self.writer));
        Box::pin(async move {
            let result = match tokio::time::timeout(WRITE_TIMEOUT, async {
                writer.lock().await.flush(&pool, now).await
            })
            .await
            {
                Ok(result) => result.map(|()| 0),
                Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
            };
            Landed {
                what: Flying::Latest,
                result,
            }
        })
    }

    /// A write of the buffer's head.
    fn write_head(&self) -> Flight {
        let (records, last) = head_records(&self.buffer);
        let (pool, clock, writer) = (self.pool.clone(), self.clock.clone(), Arc::clone(&self.writer));
        Box::pin(async move {
            let result = match tokio::time::timeout(WRITE_TIMEOUT, write(&pool, &clock, &writer, &records)).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
            };
            Landed {
                what: Flying::Buffer { last },
                result,
            }
        })
    }

    /// A write of the next batch of the spill file, if it has one.
    fn replay_next(&mut self) -> Option<Flight> {
        let spill = self.spill.as_mut()?;
        let batch = match spill.next_batch(BATCH_ROWS) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "cannot replay spilled readings");
                return None;
            }
        };
        let (pool, now, writer) = (self.pool.clone(), self.clock.now(), Arc::clone(&self.writer));
        Some(Box::pin(async move {
            // Held readings are keyed as the others: a batch stored again
            // after a lost acknowledgement adds nothing.
            let write = async {
                writer.lock().await.write(&pool, &batch.readings, now).await?;
                insert_held_readings(&pool, &batch.held).await
            };
            let result = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(result) => result.map(|()| batch.readings.len()),
                Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
            };
            Landed {
                what: Flying::Replay(batch),
                result,
            }
        }))
    }

    /// Takes a landed write into account.
    fn landed(&mut self, landed: Landed) {
        let Landed { what, result } = landed;
        let replay = matches!(what, Flying::Replay(_));
        let latest = matches!(what, Flying::Latest);
        match result {
            Ok(stored) => {
                match what {
                    Flying::Buffer { last } => {
                        while self.buffer.front().is_some_and(|(seq, _)| *seq <= last) {
                            if let Some((_, record)) = self.buffer.pop_front() {
                                self.rows -= rows_of(&record);
                            }
                        }
                    }
                    Flying::Latest => {}
                    Flying::Replay(batch) => {
                        if let Some(spill) = self.spill.as_mut() {
                            if let Err(error) = spill.stored(&batch) {
                                tracing::error!(%error, "spilled readings were stored but the file cannot be moved past them; they will be stored again, which changes nothing");
                            }
                            // `stored` counts the ordinary readings only, as
                            // `readings_stored` does while the database is up.
                            let replayed = (stored + batch.held.len()) as u64;
                            PollStats::add(&self.stats.readings_replayed, replayed);
                            PollStats::add(&self.stats.spill_lines_unreadable, batch.unreadable);
                            self.replayed += replayed;
                            if !spill.is_pending() {
                                tracing::warn!(replayed = self.replayed, file = %spill.path().display(), "every spilled reading is stored");
                                self.replayed = 0;
                            }
                        }
                    }
                }
                PollStats::add(&self.stats.readings_stored, stored as u64);
                if self.away {
                    tracing::warn!(
                        buffered = self.buffer.len(),
                        spilled = self.spilled,
                        "the database takes writes again"
                    );
                    self.spilled = 0;
                }
                self.set_away(false);
                self.retry_delay = Duration::from_millis(500);
            }
            Err(error)
                if replay
                    || is_transient(&error)
                    || (!latest && matches!(self.buffer.front(), Some((_, Record::Readings(_))))) =>
            {
                PollStats::add(&self.stats.ingest_failures, 1);
                if !self.away {
                    tracing::warn!(%error, buffered = self.buffer.len(), "the database is away: readings wait in memory, then in the spill file");
                } else {
                    tracing::debug!(%error, "the database is still away");
                }
                self.set_away(true);
            }
            Err(error) => {
                let Flying::Buffer { last } = what else {
                    tracing::warn!(%error, "the database refused the latest values; the next read of each is written");
                    return;
                };
                tracing::warn!(%error, record = ?self.buffer.front(), "the database refused a record; dropped");
                if self.buffer.front().is_some_and(|(seq, _)| *seq <= last) {
                    if let Some((_, record)) = self.buffer.pop_front() {
                        self.rows -= rows_of(&record);
                    }
                }
            }
        }
    }

    fn set_away(&mut self, away: bool) {
        self.away = away;
        self.stats
            .database_away
            .store(away, std::sync::atomic::Ordering::Relaxed);
    }

    /// The wait before the next try, doubling up to [`MAX_RETRY_DELAY`].
    fn next_retry(&mut self) -> Duration {
        let delay = self.retry_delay;
        self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY_DELAY);
        delay
    }

    /// Moves every reading in memory (held ones included, marked) to the
    /// spill file. Returns whether it did (nothing to spill counts as
    /// done). Identity records stay in memory: the next read repeats them.
    fn spill_buffer(&mut self) -> bool {
        let Some(spill) = self.spill.as_mut() else { return false };
        let mut readings: Vec<(DeviceId, Reading)> = Vec::new();
        let mut held: Vec<(DeviceId, Reading)> = Vec::new();
        for (_, record) in &self.buffer {
            match record {
                Record::Readings(batch) => readings.extend_from_slice(batch),
                Record::HeldReadings(batch) => held.extend_from_slice(batch),
                _ => {}
            }
        }
        let count = readings.len() + held.len();
        if count == 0 {
            return true;
        }
        match spill.append(&readings, &held) {
            Ok(()) => {
                if self.spilled == 0 || self.spill_failing {
                    tracing::warn!(readings = count, held = held.len(), file = %spill.path().display(), "spilling readings the database cannot take to disk");
                }
                self.spill_failing = false;
                self.spilled += count as u64;
                PollStats::add(&self.stats.readings_spilled, count as u64);
                self.buffer
                    .retain(|(_, record)| !matches!(record, Record::Readings(_) | Record::HeldReadings(_)));
                self.rows = 0;
                true
            }
            Err(error) => {
                if !self.spill_failing {
                    tracing::error!(%error, "cannot spill readings; they stay in memory");
                }
                self.spill_failing = true;
                false
            }
        }
    }

    /// Drops the oldest records while the buffer holds more than it may.
    fn trim(&mut self) {
        while self.rows > BUFFER_ROWS || self.buffer.len() > BUFFER_RECORDS {
            let Some((_, record)) = self.buffer.pop_front() else {
                return;
            };
            let rows = rows_of(&record);
            if rows > 0 {
                self.rows -= rows;
                PollStats::add(&self.stats.readings_dropped, rows as u64);
                tracing::error!(dropped = rows, "outbox full: oldest readings dropped");
            } else {
                tracing::error!("outbox full: oldest record dropped");
            }
        }
    }

    /// What is left when the outbox stops: readings to the spill file, the
    /// rest named in the log.
    fn stop(mut self) {
        if !self.buffer.is_empty() {
            let spilled = self.spill_buffer();
            let readings = if spilled { 0 } else { self.rows };
            let others = self.buffer.iter().filter(|(_, record)| rows_of(record) == 0).count();
            if readings > 0 || others > 0 {
                tracing::error!(
                    readings,
                    others,
                    "stopping with records the database did not take; they are lost"
                );
            }
        }
        self.set_away(false);
    }
}

/// Starts the outbox task. Once every sender is gone it writes what it
/// holds (for up to [`CLOSE_GRACE`]), spills the readings still left and
/// ends. `clock` is the server's: what is stamped in the future by it when
/// written is stored flagged (see `store::readings::insert_series`).
pub fn spawn_outbox(
    pool: PgPool,
    stats: Arc<PollStats>,
    clock: Clock,
    settings: OutboxSettings,
) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (outbox, mut receiver) = Outbox::channel(Arc::clone(&stats));
    let task = tokio::spawn(async move {
        let OutboxSettings {
            spill_after,
            memory_rows,
            ..
        } = settings;
        let mut ingest = Ingest::new(pool, clock, stats, &settings);
        let mut flight: Option<Flight> = None;
        let mut flight_started = Instant::now();
        // When the buffer's head is to be written (readings wait a little
        // for companions); while the database is away, when to try again.
        let mut next_write: Option<Instant> = None;
        let mut retry_at: Option<Instant> = None;
        let mut close_by: Option<Instant> = None;
        let mut spill_tick = tokio::time::interval(spill_after);
        spill_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now = Instant::now();
            if flight.is_none() && retry_at.is_none_or(|at| at <= now) {
                let head_due = ingest.away || close_by.is_some() || next_write.is_some_and(|at| at <= now);
                if !ingest.buffer.is_empty() && head_due {
                    flight = Some(ingest.write_head());
                    next_write = None;
                } else if close_by.is_none() && ingest.replay_pending() {
                    flight = ingest.replay_next();
                } else if ingest.buffer.is_empty() && ingest.latest_pending() {
                    flight = Some(ingest.write_latest());
                }
                if flight.is_some() {
                    flight_started = now;
                    retry_at = None;
                }
            }
            if close_by.is_some()
                && flight.is_none()
                && (ingest.away || (ingest.buffer.is_empty() && !ingest.latest_pending()))
            {
                break;
            }
            let stalled = ingest.away || (flight.is_some() && now.duration_since(flight_started) >= spill_after);
            let wake = if flight.is_some() {
                None
            } else {
                match (retry_at, next_write) {
                    (Some(retry), _) => Some(retry),
                    (None, write) => write,
                }
            };
            tokio::select! {
                received = receiver.recv(), if close_by.is_none() => match received {
                    Some(record) => {
                        let readings = matches!(record, Record::Readings(_));
                        ingest.push(record);
                        // Readings wait for companions, anything else goes at once.
                        let wait = if readings && ingest.rows < BATCH_ROWS { BATCH_WAIT } else { Duration::ZERO };
                        let wanted = Instant::now() + wait;
                        next_write = Some(next_write.map_or(wanted, |at| at.min(wanted)));
                    }
                    None => close_by = Some(Instant::now() + CLOSE_GRACE),
                },
                landed = async { flight.as_mut().expect("guarded").await }, if flight.is_some() => {
                    flight = None;
                    ingest.landed(landed);
                    if ingest.away {
                        retry_at = Some(Instant::now() + ingest.next_retry());
                    } else if !ingest.buffer.is_empty() && next_write.is_none() {
                        next_write = Some(Instant::now());
                    }
                },
                () = sleep_until_some(wake) => {},
                _ = spill_tick.tick(), if stalled => {
                    ingest.spill_buffer();
                },
                () = sleep_until_some(close_by) => break,
            }
            if (ingest.away || flight.is_some()) && ingest.rows > memory_rows {
                ingest.spill_buffer();
            }
            ingest.trim();
        }
        ingest.stop();
    });
    (outbox, task)
}

/// Sleeps until `at`; never returns when there is none.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
