//! What the decoders' fuzzing properties share: how many cases they run and
//! how they damage a valid input. `docs/RELIABILITY.md`, "Fuzzing".
//!
//! The suite runs a short pass; `OHMNIBUS_FUZZ_CASES=N` runs every property
//! `N` times instead (the long runs are made that way, in release mode).
//! Failures are not written to `proptest-regressions/`: one that is found is
//! kept as a named unit test beside the decoder it concerns.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// The variable that sets the number of cases of every fuzzing property.
pub(crate) const CASES_VARIABLE: &str = "OHMNIBUS_FUZZ_CASES";

/// A property's configuration: `default_cases`, or the number the
/// environment asks for.
pub(crate) fn config(default_cases: u32) -> Config {
    let cases = std::env::var(CASES_VARIABLE)
        .ok()
        .and_then(|value| value.trim().replace('_', "").parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// One change to a byte string. Positions are [`Index`]es, so the same
/// mutation applies to an input of any length.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    /// Flip one bit of a byte.
    Flip(Index, u8),
    /// Overwrite a byte.
    Set(Index, u8),
    /// Insert bytes (a single byte or a whole token) before a position.
    Insert(Index, Vec<u8>),
    /// Remove up to this many bytes from a position.
    Remove(Index, usize),
    /// Cut the input short.
    Truncate(Index),
    /// Repeat a stretch of the input in place.
    Duplicate(Index, usize),
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        let at = |index: &Index| if len == 0 { 0 } else { index.index(len) };
        match self {
            Mutation::Flip(index, bit) if len > 0 => bytes[at(index)] ^= 1 << (bit % 8),
            Mutation::Set(index, byte) if len > 0 => bytes[at(index)] = *byte,
            Mutation::Insert(index, inserted) => {
                let at = if len == 0 { 0 } else { index.index(len + 1) };
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Remove(index, count) if len > 0 => {
                let from = at(index);
                bytes.drain(from..(from + count).min(len));
            }
            Mutation::Truncate(index) => bytes.truncate(at(index)),
            Mutation::Duplicate(index, count) if len > 0 => {
                let from = at(index);
                let stretch = bytes[from..(from + count).min(len)].to_vec();
                bytes.splice(from..from, stretch);
            }
            _ => {}
        }
    }
}

/// Applies `mutations` in order.
pub(crate) fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        mutation.apply(&mut bytes);
    }
    bytes
}

/// Up to `most` mutations; none at all a quarter of the time, so the valid
/// input is checked as it is too. Inserted and overwritten bytes favour
/// `special` (the format's control characters) and inserted tokens come
/// from `tokens` (its delimiters, huge numbers, long or non-ASCII text).
pub(crate) fn mutations(
    special: &'static [u8],
    tokens: &'static [&'static [u8]],
    most: usize,
) -> impl Strategy<Value = Vec<Mutation>> {
    let byte = prop_oneof![any::<u8>(), proptest::sample::select(special)];
    let token = proptest::sample::select(tokens).prop_map(<[u8]>::to_vec);
    let one = prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        (any::<Index>(), byte.clone()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        (any::<Index>(), byte.prop_map(|byte| vec![byte])).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<Index>(), token).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<Index>(), 1usize..8).prop_map(|(at, count)| Mutation::Remove(at, count)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1usize..24).prop_map(|(at, count)| Mutation::Duplicate(at, count)),
    ];
    prop_oneof![
        1 => Just(Vec::new()),
        3 => proptest::collection::vec(one, 1..=most),
    ]
}

mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;

    #[test]
    fn mutations_apply_to_empty_and_short_inputs() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..2_000 {
            let changes = mutations(b"\x00", &[b"()"], 6).new_tree(&mut runner).unwrap().current();
            for input in [&b""[..], b"a", b"abc"] {
                let _ = mutate(input.to_vec(), &changes);
            }
        }
    }

    #[test]
    fn the_case_count_defaults_without_the_variable() {
        if std::env::var_os(CASES_VARIABLE).is_none() {
            assert_eq!(config(17).cases, 17);
        }
        assert!(config(17).failure_persistence.is_none());
    }
}
