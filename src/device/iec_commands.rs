//! What a command to an IEC 62056-21 meter is, as profile data:
//! `[iec62056.commands.<kind>]` lists the writes a kind makes in
//! programming mode (address and value: fixed, or the meter's local time
//! in a given format), the read that verifies each, and whether the meter
//! takes them only in field programming ("PRG" on its display: A1000
//! manual 2.1.1 and 2.2.1, TH40C §3.1 and §4.1). `docs/PROFILES.md`,
//! "Commands over IEC 62056-21"; the session is in `driver/iec_program.rs`.

use std::collections::BTreeMap;

use chrono::format::{Item, StrftimeItems};
use chrono::{Duration, NaiveDateTime};
use serde::Deserialize;

use super::iec_profile_error::IecProfileError;

/// How far a clock read back may be from the time expected at the read:
/// the meter's time moves while the session runs, and the meter shows
/// whole seconds.
pub const CLOCK_TOLERANCE_SECONDS: i64 = 10;

/// `[iec62056.commands.<kind>]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IecCommand {
    pub description: String,
    /// The meter takes the writes only in field programming, which someone
    /// at the meter starts by hand ("PRG"); outside it the first write is
    /// refused, and the head-end reports that rather than a failure.
    #[serde(default)]
    pub field_programming: bool,
    /// The writes, in the order they are sent.
    pub writes: Vec<IecWrite>,
}

/// One write of a command, and its verification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IecWrite {
    /// Address written, as the meter names it (`0.9.1`, `1-0:0.9.2`).
    pub address: String,
    /// A fixed value (a reset's trigger). Exactly one of `value`, `clock`.
    #[serde(default)]
    pub value: Option<String>,
    /// The meter's local time when the command is sent, in this chrono
    /// format (`%H%M%S`, `%y%m%d`).
    #[serde(default)]
    pub clock: Option<String>,
    /// Address read before and after the write to verify it; the written
    /// address by default. A reset names the register that shows its
    /// effect (a billing-period counter, the last reset's time).
    #[serde(default)]
    pub read: Option<String>,
    /// How the read after verifies the write; by default `written` for a
    /// `value`, `clock` for a `clock`.
    #[serde(default)]
    pub check: Option<Check>,
    /// Send with the manufacturer specific `W5` / `R5` instead of `W1` / `R1`.
    #[serde(default)]
    pub vendor: bool,
}

/// How a read-back verifies a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The value read after is the value written.
    Written,
    /// The value read after is the meter's time in the write's format,
    /// within [`CLOCK_TOLERANCE_SECONDS`] of the time expected at the read.
    Clock,
    /// The value read after differs from the one read before.
    Changed,
    /// Nothing can be read back: the write is not verified.
    None,
}

impl IecWrite {
    /// The address read before and after the write.
    pub fn read_address(&self) -> &str {
        self.read.as_deref().unwrap_or(&self.address)
    }

    pub fn check(&self) -> Check {
        self.check.unwrap_or(if self.clock.is_some() {
            Check::Clock
        } else {
            Check::Written
        })
    }

    /// The value written when the meter's local time is `local`.
    pub fn value_at(&self, local: NaiveDateTime) -> String {
        match (&self.value, &self.clock) {
            (Some(value), _) => value.clone(),
            (None, Some(format)) => local.format(format).to_string(),
            (None, None) => String::new(),
        }
    }

    /// Whether `after` (read after the write) verifies it: `before` was
    /// read before, `written` sent, and `expected` is the meter's local
    /// time the head-end expects at the read after.
    pub fn verifies(&self, before: Option<&str>, written: &str, after: Option<&str>, expected: NaiveDateTime) -> bool {
        match self.check() {
            Check::None => true,
            Check::Written => after == Some(written),
            Check::Changed => after.is_some() && after != before,
            Check::Clock => {
                let (Some(after), Some(format)) = (after, &self.clock) else {
                    return false;
                };
                (-CLOCK_TOLERANCE_SECONDS..=CLOCK_TOLERANCE_SECONDS)
                    .any(|delta| (expected + Duration::seconds(delta)).format(format).to_string() == after)
            }
        }
    }
}

/// An address as a data set may carry it: 1-16 characters, none of the
/// standard's delimiters (IEC 62056-21:2002, 6.5).
fn valid_address(address: &str) -> bool {
    (1..=16).contains(&address.len())
        && address.is_ascii()
        && !address.chars().any(|c| "()/!".contains(c) || c.is_ascii_control())
}

/// A value as a data set may carry it: at most 32 characters, none of
/// `(`, `)`, `*`, `/`, `!`.
fn valid_value(value: &str) -> bool {
    value.len() <= 32 && value.is_ascii() && !value.chars().any(|c| "()*/!".contains(c) || c.is_ascii_control())
}

/// Checks the commands of `[iec62056]`: what serde cannot.
pub(super) fn check_commands(commands: &BTreeMap<String, IecCommand>) -> Result<(), IecProfileError> {
    let fail = |field: String, reason: &str| {
        Err(IecProfileError {
            field,
            reason: reason.to_owned(),
        })
    };
    for (kind, command) in commands {
        let base = format!("iec62056.commands.{kind}");
        let snake = kind.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake {
            return fail(base, "a command kind is snake_case, e.g. set_clock");
        }
        if command.writes.is_empty() {
            return fail(format!("{base}.writes"), "a command needs at least one write");
        }
        for (index, write) in command.writes.iter().enumerate() {
            let field = |name: &str| format!("{base}.writes[{index}].{name}");
            if !valid_address(&write.address) {
                return fail(
                    field("address"),
                    "must be 1-16 ASCII characters without ( ) / ! or control characters",
                );
            }
            if write.read.as_deref().is_some_and(|read| !valid_address(read)) {
                return fail(
                    field("read"),
                    "must be 1-16 ASCII characters without ( ) / ! or control characters",
                );
            }
            match (&write.value, &write.clock) {
                (Some(_), Some(_)) | (None, None) => {
                    return fail(field("value"), "give exactly one of value and clock");
                }
                (Some(value), None) if !valid_value(value) => {
                    return fail(field("value"), "must be at most 32 ASCII characters without ( ) * / !");
                }
                (None, Some(format)) if !valid_clock_format(format) => {
                    return fail(
                        field("clock"),
                        "must be a chrono format of date and time fields, e.g. %H%M%S or %y%m%d",
                    );
                }
                _ => {}
            }
            match (write.check(), write.clock.is_some()) {
                (Check::Clock, false) => return fail(field("check"), "\"clock\" checks a clock write only"),
                (Check::Written, true) => {
                    return fail(
                        field("check"),
                        "a clock moves on: check it with \"clock\", not \"written\"",
                    );
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A chrono format that parses, uses at least one field, and writes a
/// valid data-set value for any time.
fn valid_clock_format(format: &str) -> bool {
    let items: Vec<Item> = StrftimeItems::new(format).collect();
    if items.iter().any(|item| matches!(item, Item::Error)) {
        return false;
    }
    if !items
        .iter()
        .any(|item| matches!(item, Item::Numeric(..) | Item::Fixed(..)))
    {
        return false;
    }
    let sample = chrono::NaiveDate::from_ymd_opt(2026, 12, 31)
        .and_then(|day| day.and_hms_opt(23, 59, 59))
        .expect("a valid sample time");
    valid_value(&sample.format(format).to_string())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, 14)
            .unwrap()
            .and_hms_opt(h, m, s)
            .unwrap()
    }

    fn commands(toml_text: &str) -> BTreeMap<String, IecCommand> {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn clock_values_follow_their_format_and_verify_within_the_tolerance() {
        let parsed = commands(
            r#"
            [set_clock]
            description = "clock"
            writes = [{ address = "0.9.2", clock = "%y%m%d" }, { address = "0.9.1", clock = "%H%M%S" }]
            "#,
        );
        check_commands(&parsed).unwrap();
        let [date, time] = &parsed["set_clock"].writes[..] else {
            panic!()
        };
        assert_eq!(date.value_at(at(10, 20, 30)), "260314");
        assert_eq!(time.value_at(at(10, 20, 30)), "102030");
        assert_eq!(time.read_address(), "0.9.1");
        assert_eq!(time.check(), Check::Clock);
        // Read back 4 s later: 10:20:34 is within 10 s of 10:20:31.
        assert!(time.verifies(Some("080000"), "102030", Some("102034"), at(10, 20, 31)));
        assert!(!time.verifies(Some("080000"), "102030", Some("102042"), at(10, 20, 31)));
        assert!(!time.verifies(None, "102030", None, at(10, 20, 31)));
        // Near midnight the date may have turned.
        assert!(date.verifies(None, "260314", Some("260315"), at(23, 59, 55)));
        assert!(!date.verifies(None, "260314", Some("260316"), at(23, 59, 55)));
    }

    #[test]
    fn a_reset_verifies_by_a_changed_register() {
        let parsed = commands(
            r#"
            [billing_reset]
            description = "reset"
            field_programming = true
            writes = [{ address = "C.99.1", value = "1", read = "0.1.0", check = "changed" }]
            "#,
        );
        check_commands(&parsed).unwrap();
        let write = &parsed["billing_reset"].writes[0];
        assert!(parsed["billing_reset"].field_programming);
        assert_eq!(write.value_at(at(1, 2, 3)), "1");
        assert_eq!(write.read_address(), "0.1.0");
        assert!(write.verifies(Some("17"), "1", Some("18"), at(0, 0, 0)));
        assert!(!write.verifies(Some("17"), "1", Some("17"), at(0, 0, 0)));
        assert!(!write.verifies(Some("17"), "1", None, at(0, 0, 0)));
    }

    #[test]
    fn bad_entries_name_their_key() {
        let cases = [
            (
                r#"[Set-Clock]
                description = "x"
                writes = [{ address = "0.9.1", clock = "%H%M%S" }]"#,
                "iec62056.commands.Set-Clock",
            ),
            (
                r#"[set_clock]
                description = "x"
                writes = []"#,
                "iec62056.commands.set_clock.writes",
            ),
            (
                r#"[set_clock]
                description = "x"
                writes = [{ address = "0.9.1", clock = "%H%M%S" }, { address = "0.9.2(", clock = "%y%m%d" }]"#,
                "iec62056.commands.set_clock.writes[1].address",
            ),
            (
                r#"[set_clock]
                description = "x"
                writes = [{ address = "0.9.1", value = "1", clock = "%H%M%S" }]"#,
                "iec62056.commands.set_clock.writes[0].value",
            ),
            (
                r#"[set_clock]
                description = "x"
                writes = [{ address = "0.9.1", clock = "%Q" }]"#,
                "iec62056.commands.set_clock.writes[0].clock",
            ),
            (
                r#"[set_clock]
                description = "x"
                writes = [{ address = "0.9.1", clock = "(%H)" }]"#,
                "iec62056.commands.set_clock.writes[0].clock",
            ),
            (
                r#"[set_clock]
                description = "x"
                writes = [{ address = "0.9.1", clock = "%H%M%S", check = "written" }]"#,
                "iec62056.commands.set_clock.writes[0].check",
            ),
            (
                r#"[demand_reset]
                description = "x"
                writes = [{ address = "1.6.0", value = "0", check = "clock" }]"#,
                "iec62056.commands.demand_reset.writes[0].check",
            ),
            (
                r#"[demand_reset]
                description = "x"
                writes = [{ address = "1.6.0", value = "0", read = "" }]"#,
                "iec62056.commands.demand_reset.writes[0].read",
            ),
        ];
        for (text, field) in cases {
            let error = check_commands(&commands(text)).unwrap_err();
            assert_eq!(error.field, field, "{text}: {}", error.reason);
        }
    }
}
