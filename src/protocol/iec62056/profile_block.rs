//! Load profiles the EMH way (common, but verify per meter): the request
//! data `P.01(sYYMMDDhhmm;sYYMMDDhhmm)` of an `R5` command, and its answer,
//! one header line `P.01(sYYMMDDhhmmss)(status)(period)(channels)` followed
//! by `(OBIS)(unit)` per channel, then one line `(v1)…(vn)` per interval. A
//! new header starts a new block (after a gap, a clock change or a
//! change of season). Facts in `docs/PROTOCOLS.md`, "Load profile, EMH
//! style".

use chrono::{Datelike, NaiveDateTime, TimeDelta, Timelike};

use super::dataset::{MAX_VALUE_LEN, RawSet, parse_timestamp, parse_value_number, split_line};

/// A time bound or stamp with its season character s: 0 normal time,
/// 1 summer time, 2 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileTime {
    pub season: u8,
    pub time: NaiveDateTime,
}

/// The data of the `R5` load profile read: `P.nn(from;to)`, an empty bound
/// meaning the oldest or the newest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileRequest {
    /// 1 for `P.01`, 2 for `P.02`, 98 for the logbook `P.98`.
    pub profile: u8,
    pub from: Option<ProfileTime>,
    pub to: Option<ProfileTime>,
}

/// One header and the rows under it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProfileBlock {
    pub profile: u8,
    /// The meter's stamp for the first row, in the time scale `season`
    /// names. Whether it marks the start or the end of the interval is the
    /// meter's convention; this layer does not interpret it.
    pub start: NaiveDateTime,
    /// 0 normal time, 1 summer time, 2 UTC.
    pub season: u8,
    /// Status word as sent, e.g. `08`.
    pub status: String,
    pub period_minutes: u32,
    /// (OBIS address, unit) per channel, as sent.
    pub channels: Vec<(String, String)>,
    /// One row per interval, one value per channel; `None` for `()`.
    pub rows: Vec<Vec<Option<f64>>>,
}

impl LoadProfileBlock {
    /// The stamp of row `index`: `start` plus `index` periods. `None` past
    /// the end of the calendar, which a header's period (any number of
    /// minutes its digits can say) reaches after a few rows.
    pub fn row_time(&self, index: usize) -> Option<NaiveDateTime> {
        let minutes = i64::from(self.period_minutes).checked_mul(i64::try_from(index).ok()?)?;
        self.start.checked_add_signed(TimeDelta::try_minutes(minutes)?)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The answer breaks the expected layout; lines count from 1.
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    /// The meter answered with an error, e.g. `(ERROR)` or `#0001`.
    #[error("the meter refused the load profile read: {0}")]
    Refused(String),
    /// A request's data that is not `P.nn(from;to)`.
    #[error("not a load profile request: {0}")]
    BadRequest(String),
    /// A value of ours that cannot be written.
    #[error("cannot format: {0}")]
    Invalid(String),
}

impl ProfileRequest {
    pub fn encode(&self) -> Result<String, ProfileError> {
        let bound = |bound: &Option<ProfileTime>| match bound {
            Some(time) => format_time(time, false).map_err(ProfileError::Invalid),
            None => Ok(String::new()),
        };
        Ok(format!(
            "{}({};{})",
            profile_name(self.profile)?,
            bound(&self.from)?,
            bound(&self.to)?
        ))
    }

    pub fn parse(data: &str) -> Result<Self, ProfileError> {
        let bad = || ProfileError::BadRequest(format!("{data:?}"));
        let (name, rest) = data.split_once('(').ok_or_else(bad)?;
        let (from, to) = rest.strip_suffix(')').and_then(|b| b.split_once(';')).ok_or_else(bad)?;
        let bound = |text: &str| match text {
            "" => Ok(None),
            text if text.len() == 11 => parse_time(text).map(Some).ok_or_else(bad),
            _ => Err(bad()),
        };
        Ok(Self {
            profile: parse_profile_name(name).ok_or_else(bad)?,
            from: bound(from)?,
            to: bound(to)?,
        })
    }
}

/// Parses the text of the answer to a load profile read. An empty answer
/// is no blocks.
pub fn parse_load_profile(text: &str) -> Result<Vec<LoadProfileBlock>, ProfileError> {
    let mut blocks: Vec<LoadProfileBlock> = Vec::new();
    for line in answer_sets(text) {
        let (number, set) = line?;
        let error = |reason: String| ProfileError::Line { line: number, reason };
        if set.address.is_empty() {
            let block = blocks
                .last_mut()
                .ok_or_else(|| error("values before the first header".into()))?;
            block.rows.push(row(&set.groups, block.channels.len()).map_err(error)?);
        } else {
            blocks.push(header(set.address, &set.groups).map_err(error)?);
        }
    }
    Ok(blocks)
}

/// The one data set of each line of a load-profile or logbook answer, with
/// the line's number (from 1): empty lines and the `!` line left out, a
/// line of more or less than one set refused naming it, and an `(ERROR)`
/// or `(#nnnn)` answer the meter's refusal.
pub(super) fn answer_sets(text: &str) -> impl Iterator<Item = Result<(usize, RawSet<'_>), ProfileError>> {
    text.split('\n').enumerate().filter_map(|(index, line)| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        (!line.is_empty() && line != "!").then(|| one_set(index + 1, line))
    })
}

fn one_set(number: usize, line: &str) -> Result<(usize, RawSet<'_>), ProfileError> {
    let error = |reason: String| ProfileError::Line { line: number, reason };
    let mut sets = split_line(line).map_err(error)?;
    let (Some(set), None) = (sets.pop(), sets.pop()) else {
        return Err(error("more than one data set on a line".into()));
    };
    if let [answer] = set.groups.as_slice() {
        if *answer == "ERROR" || answer.starts_with('#') {
            return Err(ProfileError::Refused((*answer).into()));
        }
    }
    Ok((number, set))
}

/// Writes blocks as a meter would answer (stamps with seconds, lines with
/// CR LF, no `!` line), so that [`parse_load_profile`] reads back exactly
/// `blocks`. Values are written in Rust's shortest exact decimal form.
pub fn format_load_profile(blocks: &[LoadProfileBlock]) -> Result<String, ProfileError> {
    let mut text = String::new();
    for block in blocks {
        let start = ProfileTime {
            season: block.season,
            time: block.start,
        };
        if block.channels.is_empty() {
            return Err(ProfileError::Invalid("a block needs at least one channel".into()));
        }
        text.push_str(&profile_name(block.profile)?);
        for field in [
            format_time(&start, true).map_err(ProfileError::Invalid)?,
            check_raw(&block.status)?,
            block.period_minutes.to_string(),
            block.channels.len().to_string(),
        ] {
            text.push_str(&format!("({field})"));
        }
        for (obis, unit) in &block.channels {
            text.push_str(&format!("({})({})", check_raw(obis)?, check_raw(unit)?));
        }
        text.push_str("\r\n");
        for values in &block.rows {
            if values.len() != block.channels.len() {
                return Err(ProfileError::Invalid(format!(
                    "a row has {} values for {} channels",
                    values.len(),
                    block.channels.len()
                )));
            }
            for value in values {
                let value = match value {
                    Some(v) if v.is_finite() => v.to_string(),
                    Some(v) => return Err(ProfileError::Invalid(format!("{v} is not a meter value"))),
                    None => String::new(),
                };
                if value.len() > MAX_VALUE_LEN {
                    return Err(ProfileError::Invalid(format!(
                        "{value} is longer than {MAX_VALUE_LEN} characters"
                    )));
                }
                text.push_str(&format!("({value})"));
            }
            text.push_str("\r\n");
        }
    }
    Ok(text)
}

fn header(address: &str, groups: &[&str]) -> Result<LoadProfileBlock, String> {
    let profile = parse_profile_name(address).ok_or_else(|| format!("{address:?} is not a profile header"))?;
    let [stamp, status, period, count, channels @ ..] = groups else {
        return Err("a header has a stamp, a status, a period and a channel count".into());
    };
    let start = (stamp.len() == 11 || stamp.len() == 13)
        .then(|| parse_time(stamp))
        .flatten()
        .ok_or_else(|| format!("{stamp:?} is not sYYMMDDhhmm[ss]"))?;
    let period_minutes = digits(period).ok_or_else(|| format!("period {period:?} is not minutes"))?;
    let count = digits(count).ok_or_else(|| format!("channel count {count:?} is not a number"))?;
    if count == 0 || channels.len() != 2 * count as usize {
        return Err(format!(
            "header announces {count} channels and names {} values",
            channels.len()
        ));
    }
    Ok(LoadProfileBlock {
        profile,
        start: start.time,
        season: start.season,
        status: (*status).into(),
        period_minutes,
        channels: channels
            .chunks(2)
            .map(|pair| (pair[0].to_string(), pair[1].to_string()))
            .collect(),
        rows: Vec::new(),
    })
}

fn row(groups: &[&str], channels: usize) -> Result<Vec<Option<f64>>, String> {
    if groups.len() != channels {
        return Err(format!("{} values for {channels} channels", groups.len()));
    }
    groups
        .iter()
        .map(|&v| match v {
            "" => Ok(None),
            // The standard's limit, as for a readout's values; more digits
            // than that can read as infinity.
            v if v.len() > MAX_VALUE_LEN => Err(format!("value {v:?} is longer than {MAX_VALUE_LEN} characters")),
            v => parse_value_number(v)
                .map(Some)
                .ok_or_else(|| format!("{v:?} is not a number")),
        })
        .collect()
}

pub(super) fn digits(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

pub(super) fn profile_name(profile: u8) -> Result<String, ProfileError> {
    if profile > 99 {
        return Err(ProfileError::Invalid(format!(
            "profile {profile} has more than two digits"
        )));
    }
    Ok(format!("P.{profile:02}"))
}

pub(super) fn parse_profile_name(name: &str) -> Option<u8> {
    let number = name.strip_prefix("P.")?;
    (number.len() == 2).then(|| digits(number)).flatten().map(|n| n as u8)
}

/// `sYYMMDDhhmm` or `sYYMMDDhhmmss`; the caller checks which length it allows.
pub(super) fn parse_time(text: &str) -> Option<ProfileTime> {
    let season = text.bytes().next().filter(u8::is_ascii_digit)? - b'0';
    Some(ProfileTime {
        season,
        time: parse_timestamp(text.get(1..)?)?,
    })
}

pub(super) fn format_time(time: &ProfileTime, seconds: bool) -> Result<String, String> {
    let t = time.time;
    if time.season > 9 {
        return Err(format!("season {} is not one digit", time.season));
    }
    if !(2000..=2099).contains(&t.year()) || t.nanosecond() != 0 || (!seconds && t.second() != 0) {
        return Err(format!(
            "{t} has no sYYMMDDhhmm{} form",
            if seconds { "ss" } else { "" }
        ));
    }
    let stamp = t.format(if seconds { "%y%m%d%H%M%S" } else { "%y%m%d%H%M" });
    Ok(format!("{}{stamp}", time.season))
}

/// Status, OBIS and unit fields are copied raw; they must not break the
/// bracket grammar.
pub(super) fn check_raw(text: &str) -> Result<String, ProfileError> {
    if text
        .chars()
        .all(|c| (c == ' ' || c.is_ascii_graphic()) && c != '(' && c != ')')
    {
        Ok(text.to_string())
    } else {
        Err(ProfileError::Invalid(format!("{text:?} cannot stand inside brackets")))
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn request_with_both_bounds_and_with_none() {
        let request = ProfileRequest {
            profile: 1,
            from: Some(ProfileTime {
                season: 0,
                time: at(2022, 11, 22, 15, 0),
            }),
            to: Some(ProfileTime {
                season: 1,
                time: at(2023, 6, 1, 0, 15),
            }),
        };
        assert_eq!(request.encode().unwrap(), "P.01(02211221500;12306010015)");
        assert_eq!(ProfileRequest::parse("P.01(02211221500;12306010015)").unwrap(), request);
        let everything = ProfileRequest {
            profile: 98,
            from: None,
            to: None,
        };
        assert_eq!(everything.encode().unwrap(), "P.98(;)");
        assert_eq!(ProfileRequest::parse("P.98(;)").unwrap(), everything);
        for bad in ["P.01", "P.1(;)", "P.01(0221122150;)", "X.01(;)", "P.01(;"] {
            assert!(ProfileRequest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn two_blocks_with_a_missing_value() {
        let text = "P.01(0221122150000)(00)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n\
                    (0.120)(0.000)\r\n\
                    ()(0.000)\r\n\
                    P.01(1230326030000)(08)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n\
                    (1.5)(-0.25)\r\n";
        let blocks = parse_load_profile(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].start, at(2022, 11, 22, 15, 0));
        assert_eq!((blocks[0].season, blocks[0].period_minutes), (0, 15));
        assert_eq!(blocks[0].channels[1], ("2.5.0".to_string(), "kW".to_string()));
        assert_eq!(blocks[0].rows, vec![vec![Some(0.12), Some(0.0)], vec![None, Some(0.0)]]);
        assert_eq!(blocks[0].row_time(1), Some(at(2022, 11, 22, 15, 15)));
        assert_eq!((blocks[1].season, blocks[1].status.as_str()), (1, "08"));
        assert_eq!(blocks[1].rows, vec![vec![Some(1.5), Some(-0.25)]]);
        assert_eq!(
            format_load_profile(&blocks[1..]).unwrap(),
            "P.01(1230326030000)(08)(15)(2)(1.5.0)(kW)(2.5.0)(kW)\r\n(1.5)(-0.25)\r\n"
        );
    }

    #[test]
    fn layout_errors_and_refusals() {
        assert_eq!(
            parse_load_profile("(ERROR)\r\n"),
            Err(ProfileError::Refused("ERROR".into()))
        );
        assert_eq!(
            parse_load_profile("P.01(#0001)\r\n"),
            Err(ProfileError::Refused("#0001".into()))
        );
        let cases = [
            ("(1)\r\n", 1),
            ("P.01(0221122150000)(00)(15)(2)(1.5.0)(kW)\r\n", 1),
            ("P.01(0221122150000)(00)(15)(1)(1.5.0)(kW)\r\n(1)(2)\r\n", 2),
            ("P.01(0221122150000)(00)(15)(1)(1.5.0)(kW)\r\n(1)\r\n(x)\r\n", 3),
            ("P.01(0221322150000)(00)(15)(1)(1.5.0)(kW)\r\n", 1),
        ];
        for (text, line) in cases {
            assert!(
                matches!(parse_load_profile(text), Err(ProfileError::Line { line: l, .. }) if l == line),
                "{text:?}"
            );
        }
        assert_eq!(parse_load_profile("").unwrap(), vec![]);
    }

    /// Found by fuzzing: a header's period of 3697891979 minutes (some 7000
    /// years) put the 38th row's stamp past the calendar's end, and asking
    /// for it panicked.
    #[test]
    fn a_stamp_past_the_calendar_is_none() {
        let text = format!(
            "P.00(0000101000000)(00)(3697891979)(1)(1.5.0)(kW)\r\n{}",
            "()\r\n".repeat(40)
        );
        let block = &parse_load_profile(&text).unwrap()[0];
        assert_eq!(
            block.row_time(1),
            Some(at(2000, 1, 1, 0, 0) + TimeDelta::minutes(3_697_891_979))
        );
        assert!(block.row_time(36).is_some());
        assert_eq!(block.row_time(37), None);
        assert_eq!(block.row_time(usize::MAX), None);
    }

    /// Found by fuzzing: a row value of 400 digits read as infinity. Values
    /// keep the standard's 32 characters, as in a readout's data sets.
    #[test]
    fn a_value_longer_than_the_standard_allows_is_refused() {
        let header = "P.01(0240101000000)(00)(15)(1)(1.5.0)(kW)\r\n";
        let huge = format!("{header}(1{})\r\n", "0".repeat(400));
        assert!(
            matches!(parse_load_profile(&huge), Err(ProfileError::Line { line: 2, reason }) if reason.contains("longer")),
            "{:?}",
            parse_load_profile(&huge)
        );
        let longest = format!("{header}({})\r\n", "9".repeat(MAX_VALUE_LEN));
        assert_eq!(
            parse_load_profile(&longest).unwrap()[0].rows,
            vec![vec![Some(1e32 - 1.0)]]
        );
    }

    fn block() -> impl Strategy<Value = LoadProfileBlock> {
        (
            0u8..=99,
            0i64..3_000_000_000,
            0u8..=2,
            "[0-9A-F]{2}",
            prop_oneof![Just(15u32), Just(30), Just(60)],
            proptest::collection::vec(("1-1:[1-8]\\.[58]\\.0", "k?(W|var|Wh|varh)"), 1..5),
            proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(-1_000_000_000i64..1_000_000_000), 8),
                0..6,
            ),
        )
            .prop_map(|(profile, seconds, season, status, period_minutes, channels, raw)| {
                let start = at(2000, 1, 1, 0, 0) + TimeDelta::seconds(seconds);
                let rows = raw
                    .into_iter()
                    .map(|row| {
                        row[..channels.len()]
                            .iter()
                            .map(|v| v.map(|v| v as f64 / 1000.0))
                            .collect()
                    })
                    .collect();
                LoadProfileBlock {
                    profile,
                    start,
                    season,
                    status,
                    period_minutes,
                    channels,
                    rows,
                }
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = parse_load_profile(&text);
            let _ = ProfileRequest::parse(&text);
        }

        #[test]
        fn format_then_parse_is_identity(blocks in proptest::collection::vec(block(), 0..4)) {
            let text = format_load_profile(&blocks).unwrap();
            prop_assert_eq!(parse_load_profile(&text).unwrap(), blocks);
        }

        #[test]
        fn request_encode_then_parse_is_identity(
            profile in 0u8..=99,
            from in proptest::option::of((0u8..=2, 0i64..50_000_000)),
            to in proptest::option::of((0u8..=2, 0i64..50_000_000)),
        ) {
            let bound = |b: Option<(u8, i64)>| b.map(|(season, minutes)| ProfileTime {
                season,
                time: at(2000, 1, 1, 0, 0) + TimeDelta::minutes(minutes),
            });
            let request = ProfileRequest { profile, from: bound(from), to: bound(to) };
            prop_assert_eq!(ProfileRequest::parse(&request.encode().unwrap()).unwrap(), request);
        }
    }
}
