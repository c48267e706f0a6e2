//! A meter's event logbook read the way its load profile is (`R5
//! P.98(from;to)`, EMH style: vendor practice, verify per meter), and its
//! answer as entries. No public source we hold gives the answer's layout
//! beyond the load profile's, so the accepted forms are exactly those of
//! `docs/PROTOCOLS.md`, "Event logbook":
//!
//! - an entry per header line, `P.98(sYYMMDDhhmmss)(status)(period)(n)`
//!   with the period empty or `0`, then `n` pairs `(code)(unit)`, then
//!   either the entry's `n` values on the same line, or one row `(v1)…(vn)`
//!   under it, or nothing when `n` is 0;
//! - a header whose rows each begin with their own stamp
//!   `(sYYMMDDhhmmss)(v2)…(vn)`: each row is an entry at its stamp with the
//!   header's status; the header is no entry of its own.

use super::dataset::MAX_VALUE_LEN;
use super::profile_block::{
    ProfileError, ProfileTime, answer_sets, check_raw, digits, format_time, parse_profile_name, parse_time,
    profile_name,
};

/// One entry of the logbook as the meter wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogbookEntry {
    /// 98 for `P.98`.
    pub profile: u8,
    /// The meter's stamp and season (0 normal, 1 summer, 2 UTC).
    pub stamp: ProfileTime,
    /// The status field as written: what happened, in the meter's own code.
    pub status: String,
    /// (code, unit, value) of each value the entry carries, as written.
    pub values: Vec<(String, String, String)>,
}

/// A header being read, with the entry it stands for until a stamped row
/// shows the rows are the entries.
struct Open {
    entry: LogbookEntry,
    channels: Vec<(String, String)>,
    /// The header's entry has its values (on its line or from a row).
    filled: bool,
    /// Rows with their own stamps followed: the header is no entry.
    stamped_rows: bool,
}

/// Parses the answer to a logbook read. An empty answer is no entries.
pub fn parse_logbook(text: &str) -> Result<Vec<LogbookEntry>, ProfileError> {
    let mut entries = Vec::new();
    let mut open: Option<Open> = None;
    for line in answer_sets(text) {
        let (number, set) = line?;
        let error = |reason: String| ProfileError::Line { line: number, reason };
        if let Some(bad) = set.groups.iter().find(|value| value.len() > MAX_VALUE_LEN) {
            return Err(error(format!(
                "value {bad:?} is longer than {MAX_VALUE_LEN} characters"
            )));
        }
        if !set.address.is_empty() {
            if let Some(done) = open.take() {
                close(done, &mut entries);
            }
            open = Some(header(set.address, &set.groups).map_err(error)?);
            continue;
        }
        let current = open
            .as_mut()
            .ok_or_else(|| error("values before the first header".into()))?;
        let groups = &set.groups;
        if groups.len() != current.channels.len() {
            return Err(error(format!(
                "{} values for {} channels",
                groups.len(),
                current.channels.len()
            )));
        }
        let stamp = groups
            .first()
            .filter(|value| value.len() == 13)
            .and_then(|value| parse_time(value));
        match stamp {
            Some(stamp) if !current.filled || current.stamped_rows => {
                current.stamped_rows = true;
                current.filled = true;
                entries.push(LogbookEntry {
                    profile: current.entry.profile,
                    stamp,
                    status: current.entry.status.clone(),
                    values: pair(&current.channels[1..], &groups[1..]),
                });
            }
            _ if current.filled => {
                return Err(error("a second row under an entry that is not stamped".into()));
            }
            _ => {
                current.entry.values = pair(&current.channels, groups);
                current.filled = true;
            }
        }
    }
    if let Some(done) = open {
        close(done, &mut entries);
    }
    Ok(entries)
}

fn close(open: Open, entries: &mut Vec<LogbookEntry>) {
    if !open.stamped_rows {
        entries.push(open.entry);
    }
}

fn pair(channels: &[(String, String)], values: &[&str]) -> Vec<(String, String, String)> {
    channels
        .iter()
        .zip(values)
        .map(|((code, unit), value)| (code.clone(), unit.clone(), (*value).to_owned()))
        .collect()
}

fn header(address: &str, groups: &[&str]) -> Result<Open, String> {
    let profile = parse_profile_name(address).ok_or_else(|| format!("{address:?} is not a logbook header"))?;
    let [stamp, status, period, count, rest @ ..] = groups else {
        return Err("a header has a stamp, a status, a period and a value count".into());
    };
    let stamp = (stamp.len() == 11 || stamp.len() == 13)
        .then(|| parse_time(stamp))
        .flatten()
        .ok_or_else(|| format!("{stamp:?} is not sYYMMDDhhmm[ss]"))?;
    if !(period.is_empty() || digits(period) == Some(0)) {
        return Err(format!(
            "period {period:?}: a logbook entry has none (empty or 0); a period is a load profile's"
        ));
    }
    let count = digits(count).ok_or_else(|| format!("value count {count:?} is not a number"))? as usize;
    let (channels, values) = if rest.len() == 2 * count {
        (rest, None)
    } else if rest.len() == 3 * count {
        let (channels, values) = rest.split_at(2 * count);
        (channels, Some(values))
    } else {
        return Err(format!(
            "header announces {count} values and carries {} fields after the count",
            rest.len()
        ));
    };
    let channels: Vec<(String, String)> = channels
        .chunks(2)
        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
        .collect();
    Ok(Open {
        entry: LogbookEntry {
            profile,
            stamp,
            status: (*status).to_owned(),
            values: values.map(|values| pair(&channels, values)).unwrap_or_default(),
        },
        filled: values.is_some() || count == 0,
        channels,
        stamped_rows: false,
    })
}

/// Writes entries as a meter answers in the first form (a header line per
/// entry, its values on the line under it), so that [`parse_logbook`]
/// reads back exactly `entries`.
pub fn format_logbook(entries: &[LogbookEntry]) -> Result<String, ProfileError> {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&profile_name(entry.profile)?);
        let stamp = format_time(&entry.stamp, true).map_err(ProfileError::Invalid)?;
        text.push_str(&format!(
            "({stamp})({})(0)({})",
            check_raw(&entry.status)?,
            entry.values.len()
        ));
        for (code, unit, _) in &entry.values {
            text.push_str(&format!("({})({})", check_raw(code)?, check_raw(unit)?));
        }
        text.push_str("\r\n");
        if !entry.values.is_empty() {
            for (_, _, value) in &entry.values {
                if value.len() > MAX_VALUE_LEN {
                    return Err(ProfileError::Invalid(format!(
                        "{value} is longer than {MAX_VALUE_LEN} characters"
                    )));
                }
                text.push_str(&format!("({})", check_raw(value)?));
            }
            text.push_str("\r\n");
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::*;

    fn stamp(season: u8, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> ProfileTime {
        ProfileTime {
            season,
            time: NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap(),
        }
    }

    #[test]
    fn one_entry_per_header_with_values_on_its_line_or_under_it() {
        let text = "P.98(1261025023000)(00002000)()(0)\r\n\
                    P.98(0261025023000)(0040)(0)(1)(0.9.1)()(023000)\r\n\
                    P.98(2261101120005)(0008)(0)(2)(1.8.0)(kWh)(32.7.0)(V)\r\n\
                    (1234.5)(231.0)\r\n!\r\n";
        let entries = parse_logbook(text).unwrap();
        assert_eq!(
            entries,
            vec![
                LogbookEntry {
                    profile: 98,
                    stamp: stamp(1, 2026, 10, 25, 2, 30, 0),
                    status: "00002000".into(),
                    values: vec![],
                },
                LogbookEntry {
                    profile: 98,
                    stamp: stamp(0, 2026, 10, 25, 2, 30, 0),
                    status: "0040".into(),
                    values: vec![("0.9.1".into(), "".into(), "023000".into())],
                },
                LogbookEntry {
                    profile: 98,
                    stamp: stamp(2, 2026, 11, 1, 12, 0, 5),
                    status: "0008".into(),
                    values: vec![
                        ("1.8.0".into(), "kWh".into(), "1234.5".into()),
                        ("32.7.0".into(), "V".into(), "231.0".into()),
                    ],
                },
            ]
        );
    }

    #[test]
    fn rows_that_carry_their_own_stamp_are_entries_of_the_header_status() {
        let text = "P.98(0261101000000)(0004)(0)(2)(0.9.0)()(1.8.0)(kWh)\r\n\
                    (0261101081500)(10.5)\r\n\
                    (1260701120000)(11.0)\r\n";
        let entries = parse_logbook(text).unwrap();
        let got: Vec<(ProfileTime, &str, usize)> = entries
            .iter()
            .map(|e| (e.stamp, e.status.as_str(), e.values.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                (stamp(0, 2026, 11, 1, 8, 15, 0), "0004", 1),
                (stamp(1, 2026, 7, 1, 12, 0, 0), "0004", 1),
            ]
        );
        assert_eq!(entries[1].values[0], ("1.8.0".into(), "kWh".into(), "11.0".into()));
    }

    #[test]
    fn refusals_and_layout_errors() {
        assert_eq!(parse_logbook("(ERROR)\r\n"), Err(ProfileError::Refused("ERROR".into())));
        assert_eq!(parse_logbook("").unwrap(), vec![]);
        let cases = [
            ("(0040)\r\n", 1),
            // A period: a load profile, not a logbook.
            ("P.98(0261101000000)(00)(15)(0)\r\n", 1),
            ("P.98(0261101000000)(00)(0)(1)(1.8.0)\r\n", 1),
            ("P.98(0261101000000)(00)(0)(1)(1.8.0)(kWh)\r\n(1)\r\n(2)\r\n", 3),
            ("P.98(0261101000000)(00)(0)(1)(1.8.0)(kWh)(1)\r\n(2)\r\n", 2),
            ("P.98(0261301000000)(00)(0)(0)\r\n", 1),
        ];
        for (text, line) in cases {
            assert!(
                matches!(parse_logbook(text), Err(ProfileError::Line { line: l, .. }) if l == line),
                "{text:?}: {:?}",
                parse_logbook(text)
            );
        }
    }

    fn entry() -> impl Strategy<Value = LogbookEntry> {
        (
            0u8..=99,
            0u8..=2,
            0i64..3_000_000_000,
            "[0-9A-F]{1,8}",
            proptest::collection::vec(("[0-9]\\.[0-9]\\.[0-9]", "k?W?h?", "[0-9]{1,10}"), 0..3),
        )
            .prop_map(|(profile, season, seconds, status, values)| LogbookEntry {
                profile,
                stamp: ProfileTime {
                    season,
                    time: NaiveDate::from_ymd_opt(2000, 1, 1)
                        .unwrap()
                        .and_hms_opt(0, 0, 0)
                        .unwrap()
                        + chrono::TimeDelta::seconds(seconds),
                },
                status,
                values,
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = parse_logbook(&text);
        }

        #[test]
        fn format_then_parse_is_identity(entries in proptest::collection::vec(entry(), 0..5)) {
            let text = format_logbook(&entries).unwrap();
            prop_assert_eq!(parse_logbook(&text).unwrap(), entries);
        }
    }
}
