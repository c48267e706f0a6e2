//! A scan under way on a worker: which address is next, what answered.

use crate::store::scans::Found;

#[derive(Debug, Clone)]
pub(crate) struct ScanProgress {
    pub job: i64,
    pub next: u8,
    pub last: u8,
    pub probed: u32,
    pub found: Vec<Found>,
}

impl ScanProgress {
    pub(crate) fn new(job: i64, first: u8, last: u8) -> ScanProgress {
        ScanProgress {
            job,
            next: first,
            last,
            probed: 0,
            found: Vec::new(),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.next > self.last || self.next == 0
    }
}
