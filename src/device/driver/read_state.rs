//! What a driver keeps of one device between the steps of its reads.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::device::profile::{Block, Profile, RegisterGroup};

/// What the driver keeps of one device.
#[derive(Debug, Default)]
pub struct ReadState {
    /// The profile's read requests, per register group.
    pub(super) blocks: HashMap<RegisterGroup, Vec<Block>>,
    /// Optional blocks the device answered "illegal data address" for.
    pub(super) unsupported: HashSet<u16>,
    /// Reads under way: one request is sent at a time.
    pub(super) in_progress: HashMap<RegisterGroup, ReadInProgress>,
    /// The check of which meter answers (profiles with `[[identity]]`).
    pub(super) identity: IdentityCheck,
}

/// How often a Modbus meter's identity is read again while it answers:
/// a meter swapped between two polls, without a failed read, is found
/// within this.
pub(crate) const IDENTITY_RECHECK: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Where the identity check of a Modbus device is.
#[derive(Debug, Default)]
pub(super) struct IdentityCheck {
    /// When the identity was last read whole; `None` after a start or a
    /// failed read (the meter may have been swapped meanwhile).
    pub(super) checked_at: Option<DateTime<Utc>>,
    /// Answers of the entries read so far (`None`: not on this firmware).
    pub(super) answers: Vec<Option<Vec<u16>>>,
    /// The identity read, until a complete read hands it on.
    pub(super) found: Option<String>,
}

impl IdentityCheck {
    pub(super) fn due(&self, now: DateTime<Utc>) -> bool {
        self.checked_at
            .is_none_or(|at| now - at >= IDENTITY_RECHECK || now < at)
    }
}

#[derive(Debug, Default)]
pub(super) struct ReadInProgress {
    pub(super) next_block: usize,
    pub(super) answers: Vec<(usize, Vec<u16>)>,
}

impl ReadState {
    pub fn new(profile: &Profile) -> ReadState {
        ReadState {
            blocks: RegisterGroup::ALL.iter().map(|&g| (g, profile.blocks(g))).collect(),
            ..ReadState::default()
        }
    }

    /// Whether a read of `group` is under way (its first request sent).
    pub fn is_reading(&self, group: RegisterGroup) -> bool {
        self.in_progress.contains_key(&group)
    }

    /// Forgets reads under way: the next read of each group starts from
    /// its first request.
    pub fn restart(&mut self) {
        self.in_progress.clear();
    }

    pub(super) fn restart_group(&mut self, group: RegisterGroup) {
        self.in_progress.remove(&group);
    }
}
