//! Data sets inside a data block: `address(value*unit)(value)…`, one or
//! more per line, the readout closed by a line holding only `!`.
//! IEC 62056-21:2002, 6.5 (data set structure); facts in
//! `docs/PROTOCOLS.md`, "Data sets".
//!
//! Addresses stay strings here (`1-1:1.8.0*101`, `1.8.0`, `C.1.0`, `F.F`,
//! `1.8.0&04`); mapping them to OBIS codes is the device layer's business.

use chrono::{NaiveDate, NaiveDateTime};

/// Longest address the standard allows.
pub(crate) const MAX_ADDRESS_LEN: usize = 16;
/// Longest value the standard allows.
pub(crate) const MAX_VALUE_LEN: usize = 32;
/// Longest unit the standard allows.
pub(crate) const MAX_UNIT_LEN: usize = 16;

/// One data set: an address and its bracketed values. A line that starts
/// with `(` (continuation values, load profile rows) gives a set with an
/// empty address; the caller knows what it continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSet {
    pub address: String,
    pub values: Vec<DataValue>,
}

/// One `(value*unit)` group. `()` is an empty value; `(ERROR)` is the value
/// `ERROR`, see [`DataValue::is_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataValue {
    pub value: String,
    pub unit: Option<String>,
}

impl DataValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            unit: None,
        }
    }

    pub fn with_unit(value: impl Into<String>, unit: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            unit: Some(unit.into()),
        }
    }

    /// The meter's error answers: `ERROR` (common) or `#nnnn` (vendor
    /// codes); both vendor specific (`docs/PROTOCOLS.md`, "Data sets").
    pub fn is_error(&self) -> bool {
        self.value == "ERROR" || self.value.starts_with('#')
    }

    /// The value as a decimal number, see [`parse_value_number`].
    pub fn number(&self) -> Option<f64> {
        parse_value_number(&self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataSetError {
    /// Received text that breaks the grammar or the standard's limits;
    /// lines count from 1.
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    /// A data set of ours that cannot be written.
    #[error("data set {address:?}: {reason}")]
    Invalid { address: String, reason: String },
}

/// Parses the text of a data block (a readout, an answer to a read
/// command, or one partial block of either). Stops at the `!` line;
/// anything but blank lines after it is an error. Lines may end in CR LF
/// or a bare LF.
pub fn parse_data_sets(text: &str) -> Result<Vec<DataSet>, DataSetError> {
    let mut sets = Vec::new();
    let mut ended = false;
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let error = |reason: String| DataSetError::Line {
            line: index + 1,
            reason,
        };
        if line.is_empty() {
            continue;
        }
        if ended {
            return Err(error("text after the end line '!'".into()));
        }
        if line == "!" {
            ended = true;
            continue;
        }
        for raw in split_line(line).map_err(error)? {
            sets.push(data_set(&raw).map_err(error)?);
        }
    }
    Ok(sets)
}

/// Writes data sets one per line with CR LF, then the end line `!` CR LF:
/// the text of a full readout. Refuses what the standard does not allow,
/// so that [`parse_data_sets`] reads back exactly `sets`.
pub fn format_data_sets(sets: &[DataSet]) -> Result<String, DataSetError> {
    let mut text = String::new();
    for set in sets {
        text.push_str(&format_data_set(set)?);
        text.push_str("\r\n");
    }
    text.push_str("!\r\n");
    Ok(text)
}

/// One data set without line end, e.g. the data of a `W1` command or of
/// the answer to `R1`.
pub fn format_data_set(set: &DataSet) -> Result<String, DataSetError> {
    let invalid = |reason: String| DataSetError::Invalid {
        address: set.address.clone(),
        reason,
    };
    check_address(&set.address).map_err(invalid)?;
    if set.values.is_empty() {
        return Err(invalid("a data set needs at least one value".into()));
    }
    let mut line = set.address.clone();
    for value in &set.values {
        check_field(&value.value, "value", MAX_VALUE_LEN).map_err(invalid)?;
        line.push('(');
        line.push_str(&value.value);
        if let Some(unit) = &value.unit {
            check_field(unit, "unit", MAX_UNIT_LEN).map_err(invalid)?;
            line.push('*');
            line.push_str(unit);
        }
        line.push(')');
    }
    Ok(line)
}

/// A decimal value: optional sign, digits, optional point and digits
/// (`012345.67`, `-0.5`, `7.`). `None` for anything else, including the
/// exponents, `inf` and `NaN` that Rust's float parser would accept.
pub(crate) fn parse_value_number(v: &str) -> Option<f64> {
    let unsigned = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    v.parse().ok()
}

/// A time stamp value `YYMMDDhhmm` (or `YYMMDDhhmmss`), years 2000–2099.
/// Meter local time: which offset applies is the caller's knowledge.
pub(crate) fn parse_timestamp(v: &str) -> Option<NaiveDateTime> {
    if !(v.len() == 10 || v.len() == 12) || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |at: usize| v[at..at + 2].parse::<u32>().ok();
    let seconds = if v.len() == 12 { field(10)? } else { 0 };
    NaiveDate::from_ymd_opt(2000 + field(0)? as i32, field(2)?, field(4)?)?.and_hms_opt(field(6)?, field(8)?, seconds)
}

/// One data set as written: its address and the raw text of its brackets.
#[derive(Debug)]
pub(super) struct RawSet<'a> {
    pub(super) address: &'a str,
    pub(super) groups: Vec<&'a str>,
}

/// Splits a line into data sets. A set runs from its address through every
/// directly following bracket group.
pub(super) fn split_line(line: &str) -> Result<Vec<RawSet<'_>>, String> {
    let mut sets = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let open = rest
            .find(['(', ')'])
            .filter(|&at| rest.as_bytes()[at] == b'(')
            .ok_or_else(|| format!("{rest:?} is not address(value)"))?;
        let address = &rest[..open];
        rest = &rest[open..];
        let mut groups = Vec::new();
        while let Some(inner) = rest.strip_prefix('(') {
            let close = inner
                .find(['(', ')'])
                .filter(|&at| inner.as_bytes()[at] == b')')
                .ok_or_else(|| format!("unclosed '(' after {address:?}"))?;
            groups.push(&inner[..close]);
            rest = &inner[close + 1..];
        }
        sets.push(RawSet { address, groups });
    }
    Ok(sets)
}

fn data_set(raw: &RawSet<'_>) -> Result<DataSet, String> {
    check_address(raw.address)?;
    let values = raw
        .groups
        .iter()
        .map(|group| {
            let (value, unit) = match group.split_once('*') {
                Some((value, unit)) => (value, Some(unit)),
                None => (*group, None),
            };
            check_field(value, "value", MAX_VALUE_LEN)?;
            if let Some(unit) = unit {
                check_field(unit, "unit", MAX_UNIT_LEN)?;
            }
            Ok(DataValue {
                value: value.into(),
                unit: unit.map(Into::into),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(DataSet {
        address: raw.address.into(),
        values,
    })
}

/// Addresses: printable ASCII without space, `(`, `)`, `/` and `!` (`*` and
/// `&` mark history values, `1.8.0*101`, `1.8.0&04`).
fn check_address(address: &str) -> Result<(), String> {
    if address.len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "address {address:?} is longer than {MAX_ADDRESS_LEN} characters"
        ));
    }
    match address
        .chars()
        .find(|&c| !c.is_ascii_graphic() || matches!(c, '(' | ')' | '/' | '!'))
    {
        Some(c) => Err(format!("character {c:?} is not allowed in address {address:?}")),
        None => Ok(()),
    }
}

/// Values and units: printable ASCII without `(`, `)`, `*`, `/` and `!`.
fn check_field(text: &str, what: &str, max: usize) -> Result<(), String> {
    if let Some(c) = text
        .chars()
        .find(|&c| !(c == ' ' || c.is_ascii_graphic()) || matches!(c, '(' | ')' | '*' | '/' | '!'))
    {
        return Err(format!("character {c:?} is not allowed in {what} {text:?}"));
    }
    if text.len() > max {
        return Err(format!("{what} {text:?} is longer than {max} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn set(address: &str, values: &[(&str, Option<&str>)]) -> DataSet {
        DataSet {
            address: address.into(),
            values: values
                .iter()
                .map(|&(value, unit)| DataValue {
                    value: value.into(),
                    unit: unit.map(Into::into),
                })
                .collect(),
        }
    }

    #[test]
    fn a_readout_with_the_usual_address_forms() {
        let text = "F.F(00000000)\r\n\
                    C.1.0(12345678)\r\n\
                    0.9.1(153000)\r\n\
                    1-1:1.8.0*101(000123.4*kWh)\r\n\
                    1.8.0&04(000099.0*kWh)\r\n\
                    1.6.0(0012.345*kW)(2211221530)\r\n\
                    1.8.1(001.0*kWh)1.8.2(002.0*kWh)\r\n\
                    C.90.2()\r\n\
                    32.7.0(ERROR)\r\n\
                    !\r\n";
        let sets = parse_data_sets(text).unwrap();
        assert_eq!(
            sets,
            vec![
                set("F.F", &[("00000000", None)]),
                set("C.1.0", &[("12345678", None)]),
                set("0.9.1", &[("153000", None)]),
                set("1-1:1.8.0*101", &[("000123.4", Some("kWh"))]),
                set("1.8.0&04", &[("000099.0", Some("kWh"))]),
                set("1.6.0", &[("0012.345", Some("kW")), ("2211221530", None)]),
                set("1.8.1", &[("001.0", Some("kWh"))]),
                set("1.8.2", &[("002.0", Some("kWh"))]),
                set("C.90.2", &[("", None)]),
                set("32.7.0", &[("ERROR", None)]),
            ]
        );
        assert!(sets[9].values[0].is_error());
        assert_eq!(sets[3].values[0].number(), Some(123.4));
        let demand_time = parse_timestamp(&sets[5].values[1].value).unwrap();
        assert_eq!(demand_time.to_string(), "2022-11-22 15:30:00");
    }

    #[test]
    fn continuation_lines_have_an_empty_address() {
        let sets = parse_data_sets("P.01(1)\n(0.5)(1.5)\n").unwrap();
        assert_eq!(sets[1], set("", &[("0.5", None), ("1.5", None)]));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("1.8.0(1)\r\n1.8.1(2\r\n", 2, "unclosed"),
            ("1.8.0\r\n", 1, "not address(value)"),
            ("1.8.0(1/2)\r\n", 1, "'/'"),
            ("1.8.0(1*kWh*h)\r\n", 1, "'*'"),
            ("1.8.0(1)x)\r\n", 1, "not address(value)"),
            ("1.8.0(1)\r\n!\r\n2.8.0(1)\r\n", 3, "after the end"),
            ("1.8.0(123456789012345678901234567890123)\r\n", 1, "longer"),
            ("1.2.3.4.5.6.7.8.9.0(1)\r\n", 1, "longer"),
        ];
        for (text, line, needle) in cases {
            match parse_data_sets(text) {
                Err(DataSetError::Line { line: at, reason }) => {
                    assert_eq!(at, line, "{text:?}");
                    assert!(reason.contains(needle), "{text:?}: {reason}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn format_writes_one_set_per_line_and_the_end_line() {
        let sets = [
            set("1.8.1", &[("001.0", Some("kWh"))]),
            set("1.6.0", &[("0012.345", Some("kW")), ("2211221530", None)]),
        ];
        assert_eq!(
            format_data_sets(&sets).unwrap(),
            "1.8.1(001.0*kWh)\r\n1.6.0(0012.345*kW)(2211221530)\r\n!\r\n"
        );
        assert!(format_data_sets(&[set("1.8.0", &[("a!", None)])]).is_err());
        assert!(format_data_sets(&[set("1.8.0", &[])]).is_err());
        assert!(format_data_sets(&[set("1.8.0", &[("1", Some("k/h"))])]).is_err());
    }

    #[test]
    fn numbers_and_timestamps() {
        assert_eq!(parse_value_number("012345.67"), Some(12345.67));
        assert_eq!(parse_value_number("-0.5"), Some(-0.5));
        assert_eq!(parse_value_number("7."), Some(7.0));
        for not_a_number in ["", ".", "-", "ERROR", "1e5", "inf", "NaN", "1.2.3", "0x10", " 1"] {
            assert_eq!(parse_value_number(not_a_number), None, "{not_a_number:?}");
        }
        assert_eq!(
            parse_timestamp("2402291200").unwrap().to_string(),
            "2024-02-29 12:00:00"
        );
        assert_eq!(
            parse_timestamp("231231235959").unwrap().to_string(),
            "2023-12-31 23:59:59"
        );
        assert_eq!(parse_timestamp("2302291200"), None);
        assert_eq!(parse_timestamp("22112215"), None);
    }

    fn address() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]-[0-9]:[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9](\\*[0-9]{1,3})?",
            "[0-9CF]\\.[0-9]{1,2}\\.[0-9](\\*1[01][0-9]|&[0-9]{2})?",
            Just("F.F".to_string()),
            Just(String::new()),
        ]
    }

    fn value() -> impl Strategy<Value = DataValue> {
        ("[0-9A-Za-z.:, -]{0,32}", proptest::option::of("[A-Za-z0-9]{0,16}"))
            .prop_map(|(value, unit)| DataValue { value, unit })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = parse_data_sets(&text);
        }

        #[test]
        fn parse_never_panics_on_near_misses(text in "[()*!/&.:0-9A-Z\r\n-]{0,120}") {
            let _ = parse_data_sets(&text);
        }

        #[test]
        fn format_then_parse_is_identity(
            sets in proptest::collection::vec(
                (address(), proptest::collection::vec(value(), 1..4))
                    .prop_map(|(address, values)| DataSet { address, values }),
                0..8,
            )
        ) {
            let text = format_data_sets(&sets).unwrap();
            prop_assert_eq!(parse_data_sets(&text).unwrap(), sets);
        }
    }
}
