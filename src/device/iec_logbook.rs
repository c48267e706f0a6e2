//! A meter's event logbook (IEC 62056-21 `P.98`, read in programming mode
//! as the load profile is; `docs/PROTOCOLS.md`, "Event logbook") in the
//! head-end's terms: the request for what is newer than the newest entry
//! stored, and the answer's entries as events at the meter's times.
//!
//! No source we hold gives a logbook's entry codes (the TH40C manual,
//! "Eventi e allarmi", says only that the meter keeps up to 255 events with
//! date and time, and up to 200 programming events): a profile names the
//! codes it knows; any other entry is stored as `meter_logbook` with the
//! meter's status as written.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::iec_time::{instant_of, meter_time};
use crate::domain::event::{EventCode, EventKind};
use crate::domain::severity::Severity;
use crate::protocol::iec62056::{LogbookEntry, ProfileRequest};

/// How long after a refusal of a whole logbook it is asked for again
/// (`poll::logbook`): a meter whose log is empty may refuse it and start
/// logging later, and once a day costs a line nothing worth counting.
pub const LOGBOOK_REASK: TimeDelta = TimeDelta::hours(24);

/// `[iec62056.logbook]` of a profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogbookSettings {
    /// Profile number of the request: 98 reads `P.98`.
    pub profile: u8,
    /// How many entries the meter keeps (TH40C manual, "Eventi e allarmi":
    /// up to 255); more in one answer keeps the newest.
    pub max_entries: u16,
    /// What an entry's status means, by the status as the meter writes it
    /// (`"0040"`), or as a hexadecimal number (`"0x40"`, matching `0040`
    /// and `40`). An entry whose status is not listed is `meter_logbook`.
    #[serde(default)]
    pub codes: BTreeMap<String, LogbookCode>,
}

/// The event an entry's status stands for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogbookCode {
    pub code: EventCode,
    pub severity: Severity,
}

impl LogbookSettings {
    /// Checks the settings of `[iec62056.<section>]`; the error names the
    /// key at fault.
    pub fn check(&self, section: &str) -> Result<(), (String, &'static str)> {
        let key = |name: &str| format!("iec62056.{section}.{name}");
        if !(1..=99).contains(&self.profile) {
            return Err((key("profile"), "must be 1-99"));
        }
        if self.max_entries == 0 {
            return Err((key("max_entries"), "must be at least 1"));
        }
        for (status, code) in &self.codes {
            if status.is_empty() || status.contains(['(', ')']) || status.len() > 32 {
                return Err((
                    key(&format!("codes.{status}")),
                    "a status is 1-32 characters, no brackets",
                ));
            }
            if let Some(hex) = status.strip_prefix("0x") {
                if u64::from_str_radix(hex, 16).is_err() {
                    return Err((key(&format!("codes.{status}")), "is not a hexadecimal number"));
                }
            }
            if code.code.head_end_kind().is_some() {
                return Err((
                    key(&format!("codes.{status}.code")),
                    "names an event the head-end raises itself",
                ));
            }
        }
        Ok(())
    }

    /// The event kind of an entry's status.
    pub fn kind_of(&self, status: &str) -> EventKind {
        let number = u64::from_str_radix(status.trim(), 16).ok();
        self.codes
            .iter()
            .find(|(key, _)| match key.strip_prefix("0x") {
                Some(hex) => number.is_some() && u64::from_str_radix(hex, 16).ok() == number,
                None => key.as_str() == status,
            })
            .map_or(EventKind::MeterLogbook, |(_, code)| EventKind::Meter {
                code: code.code.clone(),
                severity: code.severity,
            })
    }
}

/// The request for the entries from `after` on (the whole logbook when
/// `None`). The bound is the newest stored entry's minute, which the
/// meter sends again: storing is idempotent.
pub fn logbook_request(settings: &LogbookSettings, after: Option<DateTime<Utc>>, zone: Tz) -> ProfileRequest {
    ProfileRequest {
        profile: settings.profile,
        from: after.map(|at| {
            let mut time = meter_time(at, zone);
            time.time = time
                .time
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(time.time);
            time
        }),
        to: None,
    }
}

/// An entry as stored: its instant, the meter's status and values as
/// written, and the event it is.
#[derive(Debug, Clone, PartialEq)]
pub struct LogbookEvent {
    /// Which log: `logbook` or `programming_log`, as its section.
    pub log: &'static str,
    pub profile: u8,
    pub at: DateTime<Utc>,
    /// The status as written (with the stamp, the entry's key).
    pub status: String,
    /// The values as written, `code(value*unit)` joined by spaces.
    pub values: String,
    pub kind: EventKind,
}

impl LogbookEvent {
    /// The event's message, for `device` named `name`.
    pub fn message(&self, name: &str) -> String {
        let what = match &self.kind {
            EventKind::Meter { code, .. } => code.as_str().replace('_', " "),
            _ => "entry".to_owned(),
        };
        let values = if self.values.is_empty() {
            String::new()
        } else {
            format!(", values {}", self.values)
        };
        format!(
            "{name}: {} {what} (P.{:02} status {}{values})",
            self.log.replace('_', " "),
            self.profile,
            self.status
        )
    }
}

/// The entries of an answer as events at the meter's times (stamps in the
/// device's zone and the meter's season, as load profile stamps are),
/// oldest first, each once, at most `max_entries` (the newest). Returns
/// them and the stamps that are no instant.
pub fn events_from_logbook(
    log: &'static str,
    settings: &LogbookSettings,
    entries: &[LogbookEntry],
    zone: Tz,
) -> (Vec<LogbookEvent>, Vec<String>) {
    let mut problems = Vec::new();
    let mut events: Vec<LogbookEvent> = Vec::new();
    for entry in entries {
        let Some(at) = instant_of(entry.stamp.time, entry.stamp.season, zone) else {
            problems.push(format!(
                "entry stamped {} (season {}) is no instant in {zone}",
                entry.stamp.time, entry.stamp.season
            ));
            continue;
        };
        let values = entry
            .values
            .iter()
            .map(|(code, unit, value)| match unit.as_str() {
                "" => format!("{code}({value})"),
                unit => format!("{code}({value}*{unit})"),
            })
            .collect::<Vec<_>>()
            .join(" ");
        events.push(LogbookEvent {
            log,
            profile: entry.profile,
            at,
            status: entry.status.clone(),
            values,
            kind: settings.kind_of(&entry.status),
        });
    }
    events.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.status.cmp(&b.status)));
    events.dedup_by(|a, b| a.at == b.at && a.status == b.status);
    let max = usize::from(settings.max_entries);
    if events.len() > max {
        problems.push(format!(
            "{} entries, more than the {max} the meter keeps: the newest {max} taken",
            events.len()
        ));
        events.drain(..events.len() - max);
    }
    (events, problems)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::protocol::iec62056::parse_logbook;

    fn settings(codes: &[(&str, &str, Severity)]) -> LogbookSettings {
        LogbookSettings {
            profile: 98,
            max_entries: 255,
            codes: codes
                .iter()
                .map(|(status, code, severity)| {
                    (
                        (*status).to_owned(),
                        LogbookCode {
                            code: code.parse::<EventCode>().unwrap(),
                            severity: *severity,
                        },
                    )
                })
                .collect(),
        }
    }

    /// A `P.98` answer written by hand in the layout the head-end accepts
    /// (`docs/PROTOCOLS.md`, "Event logbook"): three entries around the end
    /// of summer time in Rome (25 October 2026, 03:00 CEST back to 02:00
    /// CET), two in the repeated hour told apart by the season character,
    /// one in UTC, one carrying a value, and the newest sent twice.
    #[test]
    fn a_hand_written_answer_is_entries_at_the_meters_instants() {
        let bytes: &[u8] = b"P.98(1261025023000)(0040)(0)(0)\r\n\
            P.98(0261025021500)(00002000)(0)(0)\r\n\
            P.98(0261101081500)(0004)()(1)(1.8.0)(kWh)(001234.5)\r\n\
            P.98(2261101120005)(0040)(0)(0)\r\n\
            P.98(2261101120005)(0040)(0)(0)\r\n";
        let entries = parse_logbook(std::str::from_utf8(bytes).unwrap()).unwrap();
        let rome: Tz = "Europe/Rome".parse().unwrap();
        let settings = settings(&[("0x40", "terminal_cover_opened", Severity::Warning)]);
        let (events, problems) = events_from_logbook("logbook", &settings, &entries, rome);
        assert!(problems.is_empty(), "{problems:?}");
        let cover = EventKind::Meter {
            code: "terminal_cover_opened".parse().unwrap(),
            severity: Severity::Warning,
        };
        let utc = |mo, d, h, mi, s| Utc.with_ymd_and_hms(2026, mo, d, h, mi, s).unwrap();
        let got: Vec<(DateTime<Utc>, &str, EventKind)> = events
            .iter()
            .map(|e| (e.at, e.status.as_str(), e.kind.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                // 02:30 summer time (CEST, UTC+2) is 00:30 UTC.
                (utc(10, 25, 0, 30, 0), "0040", cover.clone()),
                // 02:15 normal time (CET, UTC+1), the second 02:15: 01:15 UTC.
                (utc(10, 25, 1, 15, 0), "00002000", EventKind::MeterLogbook),
                // 08:15 CET is 07:15 UTC.
                (utc(11, 1, 7, 15, 0), "0004", EventKind::MeterLogbook),
                // Season 2: UTC as written.
                (utc(11, 1, 12, 0, 5), "0040", cover),
            ]
        );
        assert_eq!(events[2].values, "1.8.0(001234.5*kWh)");
        assert_eq!(
            events[1].message("TH40C"),
            "TH40C: logbook entry (P.98 status 00002000)"
        );
        assert_eq!(
            events[2].message("TH40C"),
            "TH40C: logbook entry (P.98 status 0004, values 1.8.0(001234.5*kWh))"
        );
    }

    #[test]
    fn more_entries_than_the_meter_keeps_leave_the_newest() {
        let text: String = (0..5)
            .map(|minute| format!("P.98(2261101120{minute}00)(0001)(0)(0)\r\n"))
            .collect();
        let entries = parse_logbook(&text).unwrap();
        let mut settings = settings(&[]);
        settings.max_entries = 3;
        let (events, problems) = events_from_logbook("logbook", &settings, &entries, Tz::UTC);
        let minutes: Vec<u32> = events.iter().map(|e| e.at.minute()).collect();
        assert_eq!(minutes, vec![2, 3, 4]);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn a_spring_gap_stamp_is_no_instant_and_requests_name_the_minute() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        let entries = parse_logbook("P.98(0260329023000)(0001)(0)(0)\r\n").unwrap();
        let (events, problems) = events_from_logbook("logbook", &settings(&[]), &entries, rome);
        assert!(events.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        let request = logbook_request(&settings(&[]), None, rome);
        assert_eq!(request.encode().unwrap(), "P.98(;)");
        // 10:07:31 UTC in July is 12:07 CEST.
        let after = Utc.with_ymd_and_hms(2026, 7, 1, 10, 7, 31).unwrap();
        let request = logbook_request(&settings(&[]), Some(after), rome);
        assert_eq!(request.encode().unwrap(), "P.98(12607011207;)");
    }

    #[test]
    fn checks_name_the_key() {
        let mut bad = settings(&[("0xZZ", "x", Severity::Info)]);
        assert_eq!(bad.check("logbook").unwrap_err().0, "iec62056.logbook.codes.0xZZ");
        bad = settings(&[("01", "comm_lost", Severity::Info)]);
        assert_eq!(bad.check("logbook").unwrap_err().0, "iec62056.logbook.codes.01.code");
        bad = settings(&[]);
        bad.profile = 0;
        assert_eq!(bad.check("logbook").unwrap_err().0, "iec62056.logbook.profile");
    }
}
