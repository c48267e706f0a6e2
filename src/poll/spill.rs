//! The spill file: readings the database could not take yet, kept on local
//! disk until it can.
//!
//! One append-only file, `readings.spill`, in the spill directory
//! (`OHMNIBUS_SPILL_DIR`). Each line is one reading as JSON, written whole
//! and synced to disk before the readings leave memory. The outbox replays
//! the file from the start once the database answers again, in batches, and
//! empties it when every line is stored. Storing is idempotent (a reading
//! is keyed by device, code and time), so a replay cut short by a crash and
//! started again from the top stores nothing twice.
//!
//! Readings of a device in quarantine (another meter answers at its
//! address) are spilled too, their lines marked `"held":true`, and go back
//! to `held_readings`, keyed the same way. A line without the mark (all
//! lines of a file written before it existed) is an ordinary reading.
//!
//! A line that cannot be read back (the tail of a write cut short by a
//! power loss, an edit by hand) is skipped and counted, with its line
//! number in the log: one bad line never holds up the rest.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::device::reading::Reading;
use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;

/// The file's name inside the spill directory.
pub const SPILL_FILE: &str = "readings.spill";

/// One line of the file: a reading and its device.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    device: DeviceId,
    obis: ObisCode,
    value: f64,
    unit: Unit,
    read_at: DateTime<Utc>,
    captured_at: Option<DateTime<Utc>>,
    quality: Quality,
    /// A reading of a quarantined device, for `held_readings`; written only
    /// when set, so an ordinary line reads as before.
    #[serde(default, skip_serializing_if = "is_false")]
    held: bool,
}

fn is_false(held: &bool) -> bool {
    !held
}

impl Line {
    fn of(device: DeviceId, reading: &Reading, held: bool) -> Line {
        Line {
            device,
            obis: reading.obis.clone(),
            value: reading.value,
            unit: reading.unit,
            read_at: reading.read_at,
            captured_at: reading.captured_at,
            quality: reading.quality,
            held,
        }
    }

    fn into_reading(self) -> (DeviceId, Reading) {
        let reading = Reading {
            obis: self.obis,
            value: self.value,
            unit: self.unit,
            read_at: self.read_at,
            captured_at: self.captured_at,
            quality: self.quality,
        };
        (self.device, reading)
    }
}

/// What went wrong with the spill file, naming it.
#[derive(Debug, thiserror::Error)]
#[error("spill file {path}: {action}: {source}")]
pub struct SpillError {
    path: PathBuf,
    action: &'static str,
    source: io::Error,
}

/// A batch read back from the file, to be stored, then confirmed with
/// [`Spill::stored`].
#[derive(Debug)]
pub struct Replayed {
    pub readings: Vec<(DeviceId, Reading)>,
    /// Readings of quarantined devices, for `held_readings`.
    pub held: Vec<(DeviceId, Reading)>,
    /// Where the next batch starts.
    end: u64,
    /// Lines it took (for the line number of a bad one).
    lines: u64,
    /// Lines in it that could not be read (skipped).
    pub unreadable: u64,
}

/// The open spill file.
#[derive(Debug)]
pub struct Spill {
    path: PathBuf,
    file: File,
    /// How far the replay has stored (bytes from the start).
    stored_to: u64,
    /// Lines read back so far (for the line number of a bad one).
    lines_read: u64,
    /// Bytes in the file.
    len: u64,
}

impl Spill {
    /// Opens (creating if need be) the spill file in `dir`; what an earlier
    /// run left in it is replayed first.
    pub fn open(dir: &Path) -> Result<Spill, SpillError> {
        let path = dir.join(SPILL_FILE);
        let fail = |action, source| SpillError {
            path: path.clone(),
            action,
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create its directory", e))?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| fail("cannot open", e))?;
        let len = file.metadata().map_err(|e| fail("cannot read its size", e))?.len();
        Ok(Spill {
            path,
            file,
            stored_to: 0,
            lines_read: 0,
            len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether readings wait in the file.
    pub fn is_pending(&self) -> bool {
        self.stored_to < self.len
    }

    /// Bytes not yet replayed.
    pub fn pending_bytes(&self) -> u64 {
        self.len - self.stored_to
    }

    fn error(&self, action: &'static str, source: io::Error) -> SpillError {
        SpillError {
            path: self.path.clone(),
            action,
            source,
        }
    }

    /// Appends `readings`, and `held` (readings of quarantined devices)
    /// marked as such, and syncs them to disk: once this returns, they
    /// survive the process.
    pub fn append(&mut self, readings: &[(DeviceId, Reading)], held: &[(DeviceId, Reading)]) -> Result<(), SpillError> {
        if readings.is_empty() && held.is_empty() {
            return Ok(());
        }
        let mut text = Vec::with_capacity((readings.len() + held.len()) * 160);
        let lines = readings
            .iter()
            .map(|r| (r, false))
            .chain(held.iter().map(|r| (r, true)));
        for ((device, reading), held) in lines {
            // A reading is numbers, codes and times: it always serializes,
            // except a value that is not finite, which JSON cannot hold.
            match serde_json::to_writer(&mut text, &Line::of(*device, reading, held)) {
                Ok(()) => text.push(b'\n'),
                Err(error) => {
                    tracing::error!(%device, obis = %reading.obis, %error, "a reading cannot be spilled; lost")
                }
            }
        }
        // A torn line left by a crash is completed by the newline first, so
        // the next reading starts a line of its own.
        let torn = self.len > 0 && !self.ends_with_newline()?;
        let mut write = || -> io::Result<()> {
            if torn {
                self.file.write_all(b"\n")?;
            }
            self.file.write_all(&text)?;
            self.file.sync_data()
        };
        write().map_err(|e| self.error("cannot write", e))?;
        self.len += text.len() as u64 + u64::from(torn);
        Ok(())
    }

    fn ends_with_newline(&mut self) -> Result<bool, SpillError> {
        let mut last = [0u8; 1];
        let read = (|| -> io::Result<()> {
            let mut reader = &self.file;
            reader.seek(SeekFrom::Start(self.len - 1))?;
            io::Read::read_exact(&mut reader, &mut last)
        })();
        read.map_err(|e| self.error("cannot read", e))?;
        Ok(last[0] == b'\n')
    }

    /// Reads up to `max` readings (held ones included) from where the replay stands; until the
    /// batch is confirmed [`stored`](Spill::stored), the next call reads
    /// it again. Lines that cannot be read are skipped, logged and counted
    /// in [`Replayed::unreadable`].
    pub fn next_batch(&mut self, max: usize) -> Result<Replayed, SpillError> {
        let path = &self.path;
        let unreadable = |source| SpillError {
            path: path.clone(),
            action: "cannot read",
            source,
        };
        let mut reader = BufReader::new(&self.file);
        let start = self.stored_to;
        reader.seek(SeekFrom::Start(start)).map_err(unreadable)?;
        let mut readings = Vec::new();
        let mut held = Vec::new();
        let mut bad = 0;
        let mut end = start;
        let mut line = Vec::new();
        let mut lines = 0;
        while readings.len() + held.len() < max && end < self.len {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(unreadable)?;
            if read == 0 {
                break;
            }
            end += read as u64;
            lines += 1;
            match serde_json::from_slice::<Line>(&line) {
                Ok(parsed) if line.ends_with(b"\n") => {
                    let aside = if parsed.held { &mut held } else { &mut readings };
                    aside.push(parsed.into_reading());
                }
                Ok(_) | Err(_) => {
                    bad += 1;
                    let text = String::from_utf8_lossy(&line);
                    let shown: String = text.trim_end().chars().take(120).collect();
                    tracing::warn!(file = %path.display(), line = self.lines_read + lines, text = %shown, "a spilled line cannot be read; skipped");
                }
            }
        }
        Ok(Replayed {
            readings,
            held,
            end,
            lines,
            unreadable: bad,
        })
    }

    /// The batch is stored: the replay moves past it, and the file is
    /// emptied once everything in it is.
    pub fn stored(&mut self, batch: &Replayed) -> Result<(), SpillError> {
        if batch.end > self.stored_to {
            self.stored_to = batch.end;
            self.lines_read += batch.lines;
        }
        if self.stored_to >= self.len {
            self.file.set_len(0).map_err(|e| self.error("cannot empty", e))?;
            self.file.sync_data().map_err(|e| self.error("cannot empty", e))?;
            self.len = 0;
            self.stored_to = 0;
            self.lines_read = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn reading(second: u32, value: f64) -> (DeviceId, Reading) {
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, second).unwrap();
        (
            DeviceId(7),
            Reading {
                obis: "1-0:1.8.0".parse().unwrap(),
                value,
                unit: Unit::KWh,
                read_at: at,
                captured_at: (second % 2 == 0).then_some(at),
                quality: Quality::ESTIMATED,
            },
        )
    }

    fn dir() -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ohmnibus-spill-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn what_is_appended_comes_back_in_order_and_survives_a_reopen() {
        let dir = dir();
        let mut spill = Spill::open(&dir).unwrap();
        assert!(!spill.is_pending());
        let first: Vec<_> = (0..3).map(|s| reading(s, 1.5 + f64::from(s))).collect();
        let second: Vec<_> = (3..5).map(|s| reading(s, 1e9 + f64::from(s))).collect();
        spill.append(&first, &[]).unwrap();
        spill.append(&second, &[]).unwrap();
        drop(spill);

        let mut spill = Spill::open(&dir).unwrap();
        assert!(spill.is_pending());
        let batch = spill.next_batch(4).unwrap();
        assert_eq!(batch.unreadable, 0);
        let expected: Vec<_> = first.iter().chain(&second).cloned().collect();
        assert_eq!(batch.readings, expected[..4]);
        spill.stored(&batch).unwrap();
        assert!(spill.is_pending());
        let batch = spill.next_batch(4).unwrap();
        assert_eq!(batch.readings, expected[4..]);
        spill.stored(&batch).unwrap();
        assert!(!spill.is_pending());
        assert_eq!(std::fs::metadata(dir.join(SPILL_FILE)).unwrap().len(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_batch_not_stored_is_read_again() {
        let dir = dir();
        let mut spill = Spill::open(&dir).unwrap();
        spill.append(&[reading(1, 2.0)], &[]).unwrap();
        let batch = spill.next_batch(10).unwrap();
        let again = spill.next_batch(10).unwrap();
        assert_eq!(again.readings, batch.readings);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_or_garbled_line_is_skipped_and_the_rest_kept() {
        let dir = dir();
        // Written by hand: a good line, a garbled one, a good one, and the
        // first half of a line cut short by a crash.
        let good = |s: u32, v: &str| {
            format!(
                "{{\"device\":7,\"obis\":\"1-0:1.8.0\",\"value\":{v},\"unit\":\"kWh\",\"read_at\":\"2026-12-06T03:00:{s:02}Z\",\"captured_at\":null,\"quality\":0}}\n"
            )
        };
        let text = format!(
            "{}not json at all\n{}{{\"device\":7,\"obis\":\"1-0:",
            good(1, "10.5"),
            good(2, "11")
        );
        std::fs::write(dir.join(SPILL_FILE), text).unwrap();
        let mut spill = Spill::open(&dir).unwrap();
        // A reading appended after the crash starts on a line of its own.
        spill.append(&[reading(3, 12.25)], &[]).unwrap();
        let batch = spill.next_batch(100).unwrap();
        assert_eq!(batch.unreadable, 2, "the garbled line and the torn one");
        let values: Vec<f64> = batch.readings.iter().map(|(_, r)| r.value).collect();
        assert_eq!(values, [10.5, 11.0, 12.25]);
        assert_eq!(
            batch.readings[0].1.read_at,
            Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, 1).unwrap()
        );
        assert_eq!(batch.readings[0].1.unit, Unit::KWh);
        assert_eq!(batch.readings[0].1.quality, Quality::GOOD);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_held_reading_comes_back_held_after_a_reopen() {
        let dir = dir();
        let mut spill = Spill::open(&dir).unwrap();
        spill
            .append(&[reading(1, 1.0)], &[reading(2, 2.0), reading(3, 3.0)])
            .unwrap();
        spill.append(&[], &[reading(4, 4.0)]).unwrap();
        drop(spill);
        // Only held lines carry the mark: an ordinary line is as it was.
        let text = std::fs::read_to_string(dir.join(SPILL_FILE)).unwrap();
        let marked: Vec<bool> = text.lines().map(|line| line.contains("\"held\":true")).collect();
        assert_eq!(marked, [false, true, true, true], "{text}");
        assert!(!text.lines().next().unwrap().contains("held"), "{text}");

        let mut spill = Spill::open(&dir).unwrap();
        // A batch counts held readings towards its size.
        let batch = spill.next_batch(3).unwrap();
        assert_eq!(batch.readings, [reading(1, 1.0)]);
        assert_eq!(batch.held, [reading(2, 2.0), reading(3, 3.0)]);
        spill.stored(&batch).unwrap();
        let batch = spill.next_batch(3).unwrap();
        assert!(batch.readings.is_empty());
        assert_eq!(batch.held, [reading(4, 4.0)]);
        spill.stored(&batch).unwrap();
        assert!(!spill.is_pending());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_line_without_the_held_mark_is_an_ordinary_reading() {
        let dir = dir();
        // Written by hand as a file of the version before the mark, then
        // the same reading marked, and marked false.
        let line = |mark: &str| {
            format!(
                "{{\"device\":7,\"obis\":\"1-0:1.8.0\",\"value\":5.5,\"unit\":\"kWh\",\"read_at\":\"2026-12-06T03:00:09Z\",\"captured_at\":null,\"quality\":0{mark}}}\n"
            )
        };
        let text = [line(""), line(",\"held\":true"), line(",\"held\":false")].concat();
        std::fs::write(dir.join(SPILL_FILE), text).unwrap();
        let mut spill = Spill::open(&dir).unwrap();
        let batch = spill.next_batch(100).unwrap();
        assert_eq!(batch.unreadable, 0);
        let values = |rows: &[(DeviceId, Reading)]| rows.iter().map(|(d, r)| (d.0, r.value)).collect::<Vec<_>>();
        assert_eq!(values(&batch.readings), [(7, 5.5), (7, 5.5)]);
        assert_eq!(values(&batch.held), [(7, 5.5)]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_named() {
        let dir = dir();
        let blocker = dir.join("file");
        std::fs::write(&blocker, "x").unwrap();
        let error = Spill::open(&blocker.join("spill")).unwrap_err().to_string();
        assert!(error.contains("file/spill/readings.spill"), "{error}");
        assert!(error.contains("cannot create its directory"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
