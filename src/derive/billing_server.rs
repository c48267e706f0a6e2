//! Server-side billing periods, for meters that keep no history of their
//! own (COUNTIS, the pulse concentrator): at each instant of the site's
//! billing schedule, the cumulative energy registers as they stood then,
//! interpolated between the stored reads just before and just after it,
//! never across a confirmed meter replacement (`register_at`).

use chrono::{DateTime, Utc};

use super::DeriveServices;
use crate::device::profile::Profile;
use crate::domain::event::EventKind;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::source::BillingSource;
use crate::domain::unit::Unit;
use crate::metering::billing::{BillingPeriod, BillingRegister};
use crate::metering::billing_schedule::{instants, register_at};
use crate::store::StoreError;
use crate::store::billing::{fetch_last_reset, insert_billing_periods};
use crate::store::billing_schedule::{ScheduledDevice, fetch_first_read, fetch_reads_around, fetch_scheduled_devices};
use crate::store::events::insert_momentary_event;
use crate::store::identity::fetch_series_start;

/// One round over every device on a scheduled site whose profile keeps no
/// history. Returns how many periods were stored.
pub(crate) async fn close_server_periods(services: &DeriveServices) -> Result<u64, StoreError> {
    let mut stored = 0;
    for device in fetch_scheduled_devices(&services.pool).await? {
        let Some(profile) = services.profiles.get(&device.profile) else {
            continue;
        };
        if keeps_history(&profile) {
            continue;
        }
        stored += close_device(services, &device).await?;
    }
    Ok(stored)
}

/// Whether the meter reports closed periods itself: a register or readout
/// value under a code with a billing-period suffix (`1-1:1.8.0*1`).
fn keeps_history(profile: &Profile) -> bool {
    profile.registers.iter().any(|r| r.obis.billing().is_some())
        || profile
            .iec62056
            .as_ref()
            .is_some_and(|iec| iec.values.iter().any(|v| v.obis.billing().is_some()))
}

async fn close_device(services: &DeriveServices, device: &ScheduledDevice) -> Result<u64, StoreError> {
    let codes: Vec<ObisCode> = device
        .codes
        .iter()
        .filter(|c| c.is_cumulative_energy())
        .cloned()
        .collect();
    if codes.is_empty() {
        return Ok(0);
    }
    let last = fetch_last_reset(&services.pool, device.id, BillingSource::Server, services.clock.now()).await?;
    let from = match last {
        Some(last) => last,
        None => match fetch_first_read(&services.pool, device.id, &codes).await? {
            Some(first) => first,
            None => return Ok(0),
        },
    };
    let series_start = fetch_series_start(&services.pool, device.id).await?;
    let zone = device.time_zone.tz();
    let day = u32::try_from(device.billing_day).unwrap_or(1);
    let hour = u32::try_from(device.billing_hour).unwrap_or(0);
    let mut stored = 0;
    for at in instants(day, hour, zone, from, services.clock.now()) {
        // An instant with no read after it yet waits for the next round;
        // so do all later ones.
        let Some(period) = period_at(services, device, &codes, at, series_start).await? else {
            break;
        };
        let inserted = insert_billing_periods(&services.pool, device.id, &[period], services.clock.now()).await?;
        if !inserted.is_empty() {
            stored += 1;
            let message = format!("Billing period closed by the server at {}", at.to_rfc3339());
            insert_momentary_event(&services.pool, device.id, &EventKind::BillingReset, &message, at).await?;
        }
    }
    Ok(stored)
}

/// The period at `at`, once every code has a read after it; a code with no
/// read at or before it (first read later) is left out. `series_start`:
/// the device's confirmed meter replacement, if it had one.
async fn period_at(
    services: &DeriveServices,
    device: &ScheduledDevice,
    codes: &[ObisCode],
    at: DateTime<Utc>,
    series_start: Option<DateTime<Utc>>,
) -> Result<Option<BillingPeriod>, StoreError> {
    let mut registers = Vec::new();
    let mut quality = Quality::GOOD;
    for reads in fetch_reads_around(&services.pool, device.id, codes, at, services.clock.now()).await? {
        let (Some(after_at), Some(after_value)) = (reads.after_at, reads.after_value) else {
            return Ok(None);
        };
        let (Some(before_at), Some(before_value)) = (reads.before_at, reads.before_value) else {
            continue;
        };
        let (value, read) = register_at((before_at, before_value), (after_at, after_value), at, series_start);
        quality = quality.with(read);
        registers.push(BillingRegister {
            obis: reads.obis,
            value,
            unit: reads.unit.unwrap_or(Unit::None),
            captured_at: None,
        });
    }
    if registers.is_empty() {
        return Ok(None);
    }
    Ok(Some(BillingPeriod {
        reset_at: at,
        source: BillingSource::Server,
        reset_count: None,
        registers,
        quality,
    }))
}

#[cfg(test)]
mod tests {
    use super::keeps_history;
    use crate::device::registry::ProfileSet;

    #[test]
    fn only_meters_without_history_get_server_periods() {
        let profiles = ProfileSet::builtin();
        // The TH40C reports its closed periods as `*1`…`*n` registers; the
        // COUNTIS E33 and the pulse concentrator report none.
        assert!(keeps_history(&profiles.get("th40c").unwrap()));
        assert!(!keeps_history(&profiles.get("countis-e33").unwrap()));
        assert!(!keeps_history(&profiles.get("pulse-concentrator").unwrap()));
    }
}
