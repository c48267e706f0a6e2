//! Derives load-profile intervals from the cumulative energy registers of
//! meters that keep no load profile of their own (Modbus meters). Meters on
//! an IEC 62056-21 bus are left out: their own load profile is read from the
//! meter and stored as source `meter`.
//!
//! Two validations happen here, before storing: a register that wraps (its
//! profile gives its width and scale) yields its wrapped increase flagged
//! `rollover`, and an interval above the device's physical limits is
//! flagged `spike` (see [`crate::metering::validation`]).

use chrono::Duration;
use chrono_tz::Tz;

use super::DeriveServices;
use crate::device::obis::ObisCode;
use crate::device::profile::Profile;
use crate::device::reading::Quality;
use crate::domain::transport::Protocol;
use crate::metering::register_deltas::{DerivedInterval, derive_with_wrap};
use crate::metering::validation::flag_spike;
use crate::store::StoreError;
use crate::store::devices::fetch_device_limits;
use crate::store::events::insert_momentary_event;
use crate::store::profile_derivation::{
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

/// Where the register a code is read from wraps, if the profile reads it
/// from a register that counts in a fixed width.
fn wrap_point(profile: &Profile, code: &str) -> Option<f64> {
    profile
        .registers
        .iter()
        .find(|register| register.obis.to_string() == code)
        .and_then(|register| register.wrap_point())
}

async fn derive_device(services: &DeriveServices, device: &DerivationDevice) -> Result<u64, StoreError> {
    let zone: Tz = device.time_zone.parse().unwrap_or(Tz::UTC);
    let minutes = u32::try_from(device.interval_minutes).unwrap_or(15);
    let configured = fetch_device_limits(&services.pool, device.id).await?;
    let profile = configured.as_ref().and_then(|c| services.profiles.get(&c.profile));
    let limits = configured
        .as_ref()
        .and_then(|c| c.physical(profile.as_ref().and_then(|p| p.max_current_a)));
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
        let wrap = profile.as_ref().and_then(|p| wrap_point(p, code));
        let mut intervals = derive_with_wrap(&reads, minutes, zone, wrap);
        for interval in &mut intervals {
            interval.quality = flag_spike(
                limits.as_ref(),
                interval.minutes,
                unit,
                interval.value,
                interval.quality,
            );
        }
        stored += insert_derived_intervals(&services.pool, device.id, code, unit, &intervals).await?;
        record_counter_events(services, device, code, &intervals).await?;
    }
    Ok(stored)
}

/// A momentary event for each derived interval over which the register
/// wrapped (`register_rollover`) or went back (`register_decreased`: a
/// meter replaced or reset), at the interval's start. Each interval is
/// derived once (the next pass starts after it), so each gets one event.
async fn record_counter_events(
    services: &DeriveServices,
    device: &DerivationDevice,
    code: &str,
    intervals: &[DerivedInterval],
) -> Result<(), StoreError> {
    for interval in intervals {
        let end = interval.start + Duration::minutes(i64::from(interval.minutes));
        let span = format!("{} – {}", interval.start.to_rfc3339(), end.to_rfc3339());
        let (event, severity, message) = if interval.quality.contains(Quality::ROLLOVER) {
            (
                "register_rollover",
                "info",
                format!("{code} wrapped past its register's range in {span}; the count continues"),
            )
        } else if interval.quality.contains(Quality::NEGATIVE_DELTA) {
            (
                "register_decreased",
                "warning",
                format!(
                    "{code} went back in {span}: the meter was replaced or reset; no consumption is derived across it"
                ),
            )
        } else {
            continue;
        };
        insert_momentary_event(&services.pool, device.id, event, severity, &message, interval.start).await?;
    }
    Ok(())
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
