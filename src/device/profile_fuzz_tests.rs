//! Fuzzing the profile loader: the shipped profiles' TOML with lines
//! dropped, repeated, swapped and inserted, keys renamed, values replaced by
//! ones of the wrong type or out of range (huge, negative, non-finite, long,
//! non-ASCII), and bytes damaged. The loader must answer without panicking:
//! a refusal names the file, the field and the reason; a profile it accepts
//! is one the planner can use (its blocks hold every register once, within
//! the request limit and the register map). `docs/RELIABILITY.md`.

use proptest::prelude::*;
use proptest::sample::Index;

use super::profile::{MODBUS_MAX_REGISTERS, Profile};
use super::register_group::RegisterGroup;
use super::registry::BUILTIN;
use crate::protocol::fuzz_support::{config, mutate, mutations};

/// Cases per property in the suite's short run: a profile is parsed from
/// up to 73 KB of TOML per case, so fewer than the decoders'.
const SUITE_CASES: u32 = 300;

/// The file name the loader is given, and must name in its refusals.
const FILE: &str = "profiles/fuzzed.toml";

/// Values of every TOML type, at and past the limits of the fields' types.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "6",
    "16",
    "123",
    "124",
    "125",
    "126",
    "247",
    "255",
    "256",
    "65535",
    "65536",
    "0xFFFF",
    "0x10000",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "-0.0",
    "0.1",
    "true",
    "false",
    "\"\"",
    "\" \"",
    "\"é\"",
    "\"\\u0000\"",
    "\"1-1:1.8.0\"",
    "\"1-1:1.8.0*1\"",
    "\"0-0:C.1.0\"",
    "\"255-255:255.255.255*255\"",
    "\"1-1:1.8\"",
    "\"u16\"",
    "\"i32\"",
    "\"f32\"",
    "\"date_ymd\"",
    "\"mmdd\"",
    "\"hhmm\"",
    "\"ymdhms\"",
    "\"kWh\"",
    "\"timestamp\"",
    "\"energy\"",
    "\"realtime\"",
    "\"history\"",
    "\"low_first\"",
    "\"clock\"",
    "\"read_back\"",
    "\"fixed\"",
    "\"bitmask\"",
    "\"channel_config\"",
    "\"set_clock\"",
    "\"emh\"",
    "\"hex\"",
    "[]",
    "[0]",
    "[0, 0]",
    "[1, 255]",
    "[255, 1]",
    "[1, 2, 3]",
    "{}",
    "{ none = \"\" }",
    "{ none = \"no read\" }",
    "[[1], [2]]",
    "1979-05-27T07:32:00Z",
    "'literal'",
    "\"\"\"multi\nline\"\"\"",
];

/// Lines that add structure, some of it broken.
const LINES: &[&str] = &[
    "[modbus]",
    "[schedule]",
    "[[registers]]",
    "[iec62056]",
    "[[iec62056.values]]",
    "[[iec62056.status]]",
    "[[iec62056.events]]",
    "[iec62056.load_profile]",
    "[[iec62056.load_profile.channels]]",
    "[modbus.commands.fuzzed]",
    "[iec62056.commands.set_clock]",
    "[[identification]]",
    "[front_panel_only]",
    "address = 0",
    "address = 65535",
    "type = \"u32\"",
    "obis = \"1-1:1.8.0\"",
    "group = \"energy\"",
    "name = \"Fuzzed\"",
    "history = [1, 15]",
    "unknown_key = 1",
    "max_registers_per_request = 0",
    "tou_tables = \"a1000\"",
    "pulse_inputs = 255",
    "max_current_a = -5.0",
    "= 3",
    "[",
    "[[",
    "]]",
    "\"",
    "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "b = { c = { d = { e = { f = { g = { h = { i = {} } } } } } } }",
    "# a comment",
    "",
    "\u{feff}",
];

/// Keys a line may be renamed to: the fields of every table, and unknown ones.
const KEYS: &[&str] = &[
    "name",
    "address",
    "type",
    "word_order",
    "scale",
    "unit",
    "obis",
    "obis_negative",
    "group",
    "optional",
    "function",
    "count",
    "broadcast",
    "kind",
    "encode",
    "parameter",
    "values",
    "range",
    "one_of",
    "channel_stride",
    "verify",
    "history",
    "current",
    "shape",
    "bits",
    "severity",
    "interval_minutes",
    "chunk_days",
    "max_baud",
    "reduced_prefix",
    "max_address",
    "expect",
    "encoding",
    "manufacturer",
    "x",
    "\"quoted key\"",
    "a.b.c",
];

/// Integers a field of the profile's types may hold, at and past its rules' limits.
const INTEGERS: &[&str] = &[
    "0", "1", "2", "3", "5", "6", "15", "16", "31", "32", "99", "100", "120", "121", "123", "124", "125", "126", "247",
    "255", "65534", "65535",
];

/// Strings of the kinds the profile's fields hold: codes, types, units,
/// groups, names; some in the wrong field, some empty or blank.
const STRINGS: &[&str] = &[
    "\"\"",
    "\" \"",
    "\"1-1:1.8.0\"",
    "\"1-1:1.8.0*1\"",
    "\"1-1:2.8.0\"",
    "\"1-1:1.7.0\"",
    "\"0-0:C.1.0\"",
    "\"0-0:F.F.0\"",
    "\"0-0:96.240.12\"",
    "\"u16\"",
    "\"u32\"",
    "\"i16\"",
    "\"i32\"",
    "\"f32\"",
    "\"date_ymd\"",
    "\"mmdd\"",
    "\"hhmm\"",
    "\"ymdhms\"",
    "\"kWh\"",
    "\"V\"",
    "\"timestamp\"",
    "\"energy\"",
    "\"realtime\"",
    "\"history\"",
    "\"number_with_time\"",
    "\"time\"",
    "\"fixed\"",
    "\"bitmask\"",
    "\"parameter\"",
    "\"clock\"",
    "\"set_clock\"",
    "\"set_tariff\"",
    "\"power_down\"",
    "\"voltage_loss_l1\"",
    "\"comm_lost\"",
    "\"1-1\"",
    "\"th40c\"",
    "\"Th40C\"",
];

/// One change to a profile's lines.
#[derive(Debug, Clone)]
enum LineEdit {
    Drop(Index),
    Repeat(Index),
    Swap(Index, Index),
    SetValue(Index, &'static str),
    RenameKey(Index, &'static str),
    Insert(Index, &'static str),
    /// A value as long as a whole profile.
    LongValue(Index, usize),
    /// A value replaced by another of its type: an integer by an integer, a
    /// string by a string, so the profile parses and its checks must judge.
    Retype(Index, Index),
    /// A run of lines repeated: a register or a value listed twice.
    RepeatRun(Index, usize),
}

impl LineEdit {
    fn apply(&self, lines: &mut Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let len = lines.len();
        let at = |index: &Index| index.index(len);
        match self {
            LineEdit::Drop(index) => {
                lines.remove(at(index));
            }
            LineEdit::Repeat(index) => {
                let line = lines[at(index)].clone();
                lines.insert(at(index), line);
            }
            LineEdit::Swap(a, b) => {
                let (a, b) = (at(a), at(b));
                lines.swap(a, b);
            }
            LineEdit::SetValue(index, value) => {
                let line = &mut lines[at(index)];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {value}");
                }
            }
            LineEdit::RenameKey(index, key) => {
                let line = &mut lines[at(index)];
                if let Some((_, value)) = line.split_once('=') {
                    *line = format!("{key} ={value}");
                }
            }
            LineEdit::Insert(index, line) => lines.insert(at(index), (*line).to_owned()),
            LineEdit::Retype(index, choice) => {
                let line = &mut lines[at(index)];
                if let Some((key, value)) = line.split_once('=') {
                    let value = value.trim();
                    let others = if value.starts_with('"') {
                        STRINGS
                    } else if value.starts_with(|c: char| c.is_ascii_digit()) {
                        INTEGERS
                    } else {
                        return;
                    };
                    *line = format!("{key}= {}", others[choice.index(others.len())]);
                }
            }
            LineEdit::RepeatRun(index, count) => {
                let from = at(index);
                let run: Vec<String> = lines[from..(from + count).min(len)].to_vec();
                lines.splice(from..from, run);
            }
            LineEdit::LongValue(index, len) => {
                let line = &mut lines[at(index)];
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= \"{}\"", "9".repeat(*len));
                }
            }
        }
    }
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        1 => any::<Index>().prop_map(LineEdit::Drop),
        1 => any::<Index>().prop_map(LineEdit::Repeat),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        3 => (any::<Index>(), proptest::sample::select(VALUES)).prop_map(|(at, value)| LineEdit::SetValue(at, value)),
        1 => (any::<Index>(), proptest::sample::select(KEYS)).prop_map(|(at, key)| LineEdit::RenameKey(at, key)),
        1 => (any::<Index>(), proptest::sample::select(LINES)).prop_map(|(at, line)| LineEdit::Insert(at, line)),
        1 => (any::<Index>(), 1usize..100_000).prop_map(|(at, len)| LineEdit::LongValue(at, len)),
        10 => (any::<Index>(), any::<Index>()).prop_map(|(at, choice)| LineEdit::Retype(at, choice)),
        1 => (any::<Index>(), 2usize..12).prop_map(|(at, count)| LineEdit::RepeatRun(at, count)),
    ]
}

/// A shipped profile's text with its lines edited and, now and then, its
/// bytes damaged.
fn fuzzed_profile() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(BUILTIN),
        proptest::collection::vec(line_edit(), 1..5),
        prop_oneof![5 => Just(Vec::new()), 1 => mutations(b"=[]\"'#\n{},.", &[b" = ", b"\n[", b"\"\"\""], 3)],
    )
        .prop_map(|((_, text), edits, damage)| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            for edit in &edits {
                edit.apply(&mut lines);
            }
            let edited = lines.join("\n");
            String::from_utf8_lossy(&mutate(edited.into_bytes(), &damage)).into_owned()
        })
}

/// A profile the loader accepted is one the planner can use.
fn check_accepted(profile: &Profile) {
    assert!(profile.speaks_modbus() || profile.speaks_iec62056());
    assert!(!profile.name.is_empty() && profile.max_address >= 1);
    let limit = profile.modbus.max_registers_per_request;
    assert!((1..=MODBUS_MAX_REGISTERS).contains(&limit));
    let mut planned = vec![0u32; profile.registers.len()];
    for group in RegisterGroup::ALL {
        assert!(profile.schedule.interval(group) >= 1);
        for block in profile.blocks(group) {
            assert!((1..=limit).contains(&block.count), "block of {} registers", block.count);
            let mut next = u32::from(block.start);
            for &index in &block.registers {
                let register = &profile.registers[index];
                assert_eq!((register.group, register.optional), (group, block.optional));
                assert_eq!(u32::from(register.address), next, "a gap inside a block");
                next = register.end();
                planned[index] += 1;
            }
            assert_eq!(next, u32::from(block.start) + u32::from(block.count));
            assert!(next <= 0x1_0000);
        }
    }
    assert!(planned.iter().all(|&n| n == 1), "every register is read exactly once");
    for register in &profile.registers {
        assert!(register.scale.is_finite() && register.scale != 0.0);
        let _ = register.wrap_point();
    }
    if let Some(iec) = &profile.iec62056 {
        for value in &iec.values {
            assert!(iec.value_for(&value.obis).is_some() || !value.current || value.history.is_some());
            let _ = iec.full_code(&value.obis.to_string());
        }
    }
}

proptest! {
    #![proptest_config(config(SUITE_CASES))]

    /// Shipped profiles, edited line by line and damaged.
    #[test]
    fn edited_profiles_load_or_name_the_fault(text in fuzzed_profile()) {
        match Profile::parse(FILE, &text) {
            Ok(profile) => check_accepted(&profile),
            Err(error) => {
                prop_assert_eq!(error.file.as_str(), FILE);
                prop_assert!(!error.field.trim().is_empty(), "{}", error);
                prop_assert!(!error.reason.trim().is_empty(), "{}", error);
                if let Some(line) = error.field.strip_prefix("line ").and_then(|n| n.parse::<usize>().ok()) {
                    prop_assert!((1..=text.lines().count() + 1).contains(&line), "{}", error);
                }
            }
        }
    }
}

#[test]
fn the_shipped_profiles_pass_the_fuzzing_checks() {
    for (file, text) in BUILTIN {
        check_accepted(&Profile::parse(file, text).unwrap());
    }
}

/// A stack overflow aborts the process instead of panicking, so the depth
/// the fuzzer's 72-deep array stands in for is tried here: the TOML parser
/// refuses it at its recursion limit.
#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{ a = ", "}")] {
        for closed in [true, false] {
            let closing = if closed { close.repeat(100_000) } else { String::new() };
            let text = format!("name = \"x\"\nv = {}1{closing}\n", open.repeat(100_000));
            let error = Profile::parse(FILE, &text).unwrap_err();
            assert_eq!(error.field, "line 2", "{error}");
            assert!(!error.reason.is_empty());
        }
    }
}
