//! A meter's identity as text, and when two identities name the same
//! meter. The device layer makes identities from what a meter answers
//! (`device::meter_identity`); the poller and the store compare them.

/// Joins the parts of an identity made of several answers (serial number,
/// names): `2026-0000-0002 / countis e43`.
pub const PART_SEPARATOR: &str = " / ";

/// Whether `seen` is the meter `expected` names: the same identity, or
/// one that only adds parts after it or lacks its last parts (a profile
/// that gained or lost `[[identity]]` entries at the end, such as the
/// COUNTIS vendor and product names, or a firmware without one of them).
/// Parts are whole: another serial number never passes.
pub fn same_meter(expected: &str, seen: &str) -> bool {
    let extends = |long: &str, short: &str| {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.starts_with(PART_SEPARATOR))
    };
    expected == seen || extends(seen, expected) || extends(expected, seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_with_parts_added_or_left_out_at_its_end_is_the_same_meter() {
        let old = "2026-0000-0002 / countis e43";
        assert!(same_meter(old, "2026-0000-0002 / countis e43 / SOCOMEC / COUNTIS E43"));
        assert!(same_meter("2026-0000-0002 / countis e43 / SOCOMEC / COUNTIS E43", old));
        assert!(same_meter(old, old));
        assert!(!same_meter(old, "2026-0000-0003 / countis e43 / SOCOMEC / COUNTIS E43"));
        assert!(!same_meter(old, "2026-0000-0002 / countis e44"));
        assert!(
            !same_meter(old, "2026-0000-0002 / countis e43x"),
            "a part is whole or not at all"
        );
    }
}
