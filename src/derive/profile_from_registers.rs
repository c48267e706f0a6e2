//! Derives load-profile intervals from the cumulative energy registers of
//! meters that keep no load profile of their own (Modbus meters). Meters on
//! an IEC 62056-21 bus are left out: their own load profile is read from the
//! meter and stored as source `meter`.
//!
//! Two validations happen here, before storing: a register that wraps (its
//! profile gives its width and scale) yields its wrapped increase flagged
//! `rollover`, and an interval above the device's physical limits is
//! flagged `spike` (see [`crate::metering::validation`]).

use chrono::{DateTime, Duration, Utc};

use super::DeriveServices;
use crate::device::profile::Profile;
use crate::domain::event::EventKind;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::transport::Protocol;
use crate::metering::register_deltas::{DerivedInterval, derive_with_wrap};
use crate::metering::validation::flag_spike;
use crate::store::StoreError;
use crate::store::devices::{DeviceLimits, fetch_device_limits};
use crate::store::identity::fetch_series_start;
use crate::store::profile_derivation::{
    CounterEvent, DerivationDevice, fetch_derivation_devices, fetch_last_derived_end, fetch_register_reads,
    insert_derived_intervals,
};

/// Bounds of one register series: inclusive start, exclusive end.
type Series = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// How far back derivation looks: bounds the first pass after a device is
/// added or the server upgraded, and the catch-up after a long outage.
const FIRST_WINDOW_DAYS: i64 = 40;

/// One round over every enabled Modbus device and each cumulative energy
/// code it reports (value group D = 8, no billing suffix). Returns how many
/// intervals were stored.
pub(crate) async fn derive_intervals(services: &DeriveServices) -> Result<u64, StoreError> {
    let mut stored = 0;
    for device in fetch_derivation_devices(&services.pool).await? {
        if device.transport.0.protocol() == Protocol::Iec62056 {
            continue;
        }
        stored += derive_device(services, &device).await?;
    }
    Ok(stored)
}

/// Where the register a code is read from wraps: where the meter's
/// energy digits end (its profile's `[energy_display]` at the device's
/// setting), else where the register's fixed width ends, if it has one.
fn wrap_point(profile: &Profile, configured: Option<&DeviceLimits>, code: &ObisCode) -> Option<f64> {
    let register = profile.registers.iter().find(|register| &register.obis == code)?;
    profile
        .energy_wrap(
            configured.and_then(|c| c.energy_unit.as_deref()),
            configured.and_then(|c| c.energy_decimals),
        )
        .or_else(|| register.wrap_point())
}

async fn derive_device(services: &DeriveServices, device: &DerivationDevice) -> Result<u64, StoreError> {
    let zone = device.time_zone.tz();
    let minutes = u32::try_from(device.interval_minutes).unwrap_or(15);
    let configured = fetch_device_limits(&services.pool, device.id).await?;
    let profile = configured.as_ref().and_then(|c| services.profiles.get(&c.profile));
    let limits = configured
        .as_ref()
        .and_then(|c| c.physical(profile.as_ref().and_then(|p| p.max_current_a)));
    let series_start = fetch_series_start(&services.pool, device.id).await?;
    let mut stored = 0;
    for (code, unit) in device.codes.iter().zip(&device.units) {
        if !code.is_cumulative_energy() {
            continue;
        }
        let now = services.clock.now();
        let window = now - Duration::days(FIRST_WINDOW_DAYS);
        let from = fetch_last_derived_end(&services.pool, device.id, code, now)
            .await?
            .map_or(window, |end| end.max(window));
        let wrap = profile.as_ref().and_then(|p| wrap_point(p, configured.as_ref(), code));
        // Each register series on its own: no interval spans two meters.
        let mut intervals = Vec::new();
        for series in series_since(series_start, from) {
            let reads = fetch_register_reads(&services.pool, device.id, code, from, now, series).await?;
            intervals.extend(derive_with_wrap(&reads, minutes, zone, wrap));
        }
        for interval in &mut intervals {
            interval.quality = flag_spike(
                limits.as_ref(),
                interval.minutes,
                *unit,
                interval.value,
                interval.quality,
            );
        }
        let events = counter_events(code, &intervals);
        stored += insert_derived_intervals(&services.pool, device.id, code, *unit, &intervals, &events).await?;
    }
    Ok(stored)
}

/// The register series whose reads are derived from `from` on, as bounds
/// (inclusive start, exclusive end): the one before the device's last
/// confirmed meter replacement (`series_start`) while `from` is before it,
/// then the current one.
fn series_since(series_start: Option<DateTime<Utc>>, from: DateTime<Utc>) -> Vec<Series> {
    match series_start {
        None => vec![(None, None)],
        Some(start) if from < start => vec![(None, Some(start)), (Some(start), None)],
        Some(start) => vec![(Some(start), None)],
    }
}

/// A momentary event for each derived interval over which the register
/// wrapped (`register_rollover`) or went back (`register_decreased`: a
/// meter replaced or reset), at the interval's start. Each interval is
/// derived once (the next pass starts after it), so each gets one event.
fn counter_events(code: &ObisCode, intervals: &[DerivedInterval]) -> Vec<CounterEvent> {
    let mut events = Vec::new();
    for interval in intervals {
        let end = interval.start + Duration::minutes(i64::from(interval.minutes));
        let span = format!("{} – {}", interval.start.to_rfc3339(), end.to_rfc3339());
        let (kind, message) = if interval.quality.contains(Quality::ROLLOVER) {
            (
                EventKind::RegisterRollover,
                format!("{code} wrapped past its register's range in {span}; the count continues"),
            )
        } else if interval.quality.contains(Quality::NEGATIVE_DELTA) {
            (
                EventKind::RegisterDecreased,
                format!(
                    "{code} went back in {span}: the meter was replaced or reset; no consumption is derived across it"
                ),
            )
        } else {
            continue;
        };
        events.push(CounterEvent {
            kind,
            message,
            at: interval.start,
        });
    }
    events
}
