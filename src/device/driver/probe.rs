//! Probing unit addresses: is anything there, and which profile fits it?

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use super::modbus_link::{Link, LinkError};
use crate::device::registry::ProfileSet;

/// Probes one address. `None`: nothing answered. Otherwise the profiles
/// whose `[[identification]]` entries all match what the device answered
/// (most specific first: more entries matched). Each distinct read is sent
/// once; a profile without identification entries is never proposed.
pub(crate) async fn probe(
    link: &mut Link,
    address: u8,
    profiles: &ProfileSet,
) -> Result<Option<Vec<String>>, LinkError> {
    let mut answers: HashMap<(u16, u16), Option<Vec<u16>>> = HashMap::new();
    let mut present = false;
    let mut fitting: Vec<(usize, String)> = Vec::new();
    for name in profiles.names() {
        let Some(profile) = profiles.get(name) else { continue };
        if profile.identification.is_empty() {
            continue;
        }
        let turnaround = Duration::from_millis(profile.modbus.turnaround_ms);
        let mut all = true;
        for entry in &profile.identification {
            let key = (entry.address, entry.count);
            if let Entry::Vacant(slot) = answers.entry(key) {
                let words = match link
                    .read_holding(address, entry.address, entry.count, turnaround)
                    .await
                    .0
                {
                    Ok(words) => {
                        present = true;
                        Some(words)
                    }
                    // An exception or a garbled answer is an answer: something is there.
                    Err(LinkError::Exception { .. } | LinkError::Crc) => {
                        present = true;
                        None
                    }
                    // Nothing (or only noise, another unit's answer) at this
                    // address: no point asking anything else.
                    Err(LinkError::Timeout(_) | LinkError::Garbled { .. }) if !present => return Ok(None),
                    Err(LinkError::Timeout(_) | LinkError::Garbled { .. } | LinkError::Transport(_)) => None,
                    Err(error @ LinkError::Connect { .. }) => return Err(error),
                };
                slot.insert(words);
            }
            if !answers[&key].as_deref().is_some_and(|words| entry.matches(words)) {
                all = false;
                break;
            }
        }
        if all {
            fitting.push((profile.identification.len(), name.to_owned()));
        }
    }
    fitting.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(present.then(|| fitting.into_iter().map(|(_, name)| name).collect()))
}
