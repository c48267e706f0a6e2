//! Derives load-profile intervals from the cumulative energy registers of
//! meters that keep no load profile of their own (Modbus meters). Meters on
//! an IEC 62056-21 bus are left out: their own load profile is read from the
//! meter and stored as source `meter`.

use chrono::Duration;
use chrono_tz::Tz;

use super::DeriveServices;
use crate::device::obis::ObisCode;
use crate::domain::transport::Protocol;
use crate::metering::derive_intervals::derive;
use crate::store::StoreError;
use crate::store::derived_intervals::{
    DerivationDevice, fetch_derivation_devices, fetch_last_derived_end, fetch_register_reads, insert_derived_intervals,
};

/// How far back derivation looks: bounds the first pass after a device is
/// added or the server upgraded, and the catch-up after a long outage.
const FIRST_WINDOW_DAYS: i64 = 40;

/// One round over every enabled Modbus device and each cumulative energy
/// code it reports (value group D = 8, no billing suffix). Returns how many
/// intervals were stored.
pub async fn derive_intervals(services: &DeriveServices) -> Result<u64, StoreError> {
    let mut stored = 0;
    for device in fetch_derivation_devices(&services.pool).await? {
        if device.transport.0.protocol() == Protocol::Iec62056 {
            continue;
        }
        stored += derive_device(services, &device).await?;
    }
    Ok(stored)
}

/// Whether a code names a cumulative energy register (value group D = 8),
/// as it stands now (no billing-period suffix).
pub(super) fn is_cumulative_energy(code: &str) -> bool {
    code.parse::<ObisCode>()
        .is_ok_and(|obis| obis.kind() == Some(8) && obis.billing().is_none())
}

async fn derive_device(services: &DeriveServices, device: &DerivationDevice) -> Result<u64, StoreError> {
    let zone: Tz = device.time_zone.parse().unwrap_or(Tz::UTC);
    let minutes = u32::try_from(device.interval_minutes).unwrap_or(15);
    let mut stored = 0;
    for (code, unit) in device.codes.iter().zip(&device.units) {
        if !is_cumulative_energy(code) {
            continue;
        }
        let window = services.clock.now() - Duration::days(FIRST_WINDOW_DAYS);
        let from = fetch_last_derived_end(&services.pool, device.id, code)
            .await?
            .map_or(window, |end| end.max(window));
        let reads = fetch_register_reads(&services.pool, device.id, code, from).await?;
        let intervals = derive(&reads, minutes, zone);
        stored += insert_derived_intervals(&services.pool, device.id, code, unit, &intervals).await?;
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::is_cumulative_energy;

    #[test]
    fn only_current_energy_registers_are_derived() {
        assert!(is_cumulative_energy("1-0:1.8.0"));
        assert!(is_cumulative_energy("1-0:2.8.1"));
        assert!(!is_cumulative_energy("1-0:1.8.0*1"));
        assert!(!is_cumulative_energy("1-0:1.7.0"));
        assert!(!is_cumulative_energy("1-0:32.7.0"));
    }
}
