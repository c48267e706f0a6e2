//! Probing unit addresses: is anything there, and which profile fits it?

use std::time::Duration;

use super::link::{Link, LinkError};
use crate::device::profile::{Profile, RegisterGroup};
use crate::device::registry::ProfileSet;
use crate::store::scans::Found;

/// A scan under way on a worker.
#[derive(Debug, Clone)]
pub struct ScanProgress {
    pub job: i64,
    pub next: u8,
    pub last: u8,
    pub probed: u32,
    pub found: Vec<Found>,
}

impl ScanProgress {
    pub fn new(job: i64, first: u8, last: u8) -> ScanProgress {
        ScanProgress {
            job,
            next: first,
            last,
            probed: 0,
            found: Vec::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.next > self.last || self.next == 0
    }
}

/// The first request of a profile's fastest read: what a device of that
/// type surely answers.
fn probe_request(profile: &Profile) -> Option<(u16, u16)> {
    RegisterGroup::ALL
        .iter()
        .flat_map(|&group| profile.blocks(group))
        .find(|block| !block.optional)
        .map(|block| (block.start, block.count))
}

/// Probes one address. `None`: nothing answered. Otherwise the profiles
/// that fit (a device that answers only with exceptions fits none).
pub async fn probe(link: &mut Link, address: u8, profiles: &ProfileSet) -> Result<Option<Vec<String>>, LinkError> {
    let mut present = false;
    let mut fitting = Vec::new();
    for name in profiles.names() {
        let Some(profile) = profiles.get(name) else { continue };
        let Some((start, count)) = probe_request(&profile) else {
            continue;
        };
        let turnaround = Duration::from_millis(profile.modbus.turnaround_ms);
        match link.read_holding(address, start, count, turnaround).await.0 {
            Ok(_) => {
                present = true;
                fitting.push(name.to_owned());
            }
            // A garbled answer is an answer: something is there.
            Err(LinkError::Exception { .. } | LinkError::Crc) => present = true,
            // Nothing at this address: no point asking again for other types.
            Err(LinkError::Timeout(_)) if !present => return Ok(None),
            Err(LinkError::Timeout(_) | LinkError::Transport(_)) => {}
            Err(error @ LinkError::Connect { .. }) => return Err(error),
        }
    }
    Ok(present.then_some(fitting))
}
