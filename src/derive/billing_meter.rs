//! Stores the billing periods a meter closed itself (its history sets with
//! a reset time, see `metering::billing_meter`). Periods already stored are
//! kept as they are, so the same pass is also the backfill after an outage:
//! every set still in the meter's history that is not stored yet is added.
//!
//! A `billing_reset` event marks each new period newer than the newest one
//! stored before the pass. A device with no period stored yet gets its whole
//! history at once; of that first backfill only the newest period is
//! announced, so the event log shows the meter's last reset without sixteen
//! events for resets that happened before the server knew the meter.

use chrono::{DateTime, Utc};

use super::DeriveServices;
use crate::domain::ids::DeviceId;
use crate::metering::billing::BillingSource;
use crate::metering::billing_meter::{MeterValue, periods_from_history};
use crate::store::billing::{fetch_devices_with_reset_times, fetch_last_reset, insert_billing_periods};
use crate::store::error::StoreError;
use crate::store::events::insert_momentary_event;
use crate::store::readings::fetch_latest;

/// Event code of a billing reset the meter made.
pub const BILLING_RESET: &str = "billing_reset";

/// Runs over every device with reset times; a device that fails is logged
/// and tried again next round.
pub async fn store_meter_periods(services: &DeriveServices) -> Result<(), StoreError> {
    for device in fetch_devices_with_reset_times(&services.pool).await? {
        if let Err(error) = store_device_periods(services, device).await {
            tracing::warn!(%device, %error, "cannot store the meter's billing periods");
        }
    }
    Ok(())
}

async fn store_device_periods(services: &DeriveServices, device: DeviceId) -> Result<(), StoreError> {
    let pool = &services.pool;
    let values: Vec<MeterValue> = fetch_latest(pool, device)
        .await?
        .into_iter()
        .map(|r| MeterValue {
            obis: r.obis,
            value: r.value,
            unit: r.unit,
            captured_at: r.captured_at,
        })
        .collect();
    let periods = periods_from_history(&values);
    if periods.is_empty() {
        return Ok(());
    }
    let before = fetch_last_reset(pool, device, BillingSource::Meter).await?;
    let inserted = insert_billing_periods(pool, device, &periods).await?;
    for reset_at in announced(before, &inserted) {
        let message = format!("The meter closed a billing period at {}", reset_at.to_rfc3339());
        insert_momentary_event(pool, device, BILLING_RESET, "info", &message, reset_at).await?;
    }
    Ok(())
}

/// The new reset times (oldest first) that get an event: those newer than
/// the newest stored before, or on a first backfill only the newest.
fn announced(before: Option<DateTime<Utc>>, inserted: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
    match before {
        Some(last) => inserted.iter().copied().filter(|at| *at > last).collect(),
        None => inserted.last().copied().into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(month: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn a_first_backfill_announces_only_its_newest_period() {
        assert_eq!(announced(None, &[at(9), at(10), at(11)]), [at(11)]);
        assert!(announced(None, &[]).is_empty());
    }

    #[test]
    fn later_passes_announce_periods_newer_than_the_last_stored() {
        // October filled in after an outage is older than November: no event.
        assert_eq!(announced(Some(at(11)), &[at(10), at(12)]), [at(12)]);
        assert!(announced(Some(at(11)), &[at(10)]).is_empty());
    }
}
