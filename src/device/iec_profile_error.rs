//! Why the IEC 62056-21 part of a profile is refused.

/// The profile field that is wrong and why, e.g. `iec62056.max_baud`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IecProfileError {
    pub field: String,
    pub reason: String,
}
