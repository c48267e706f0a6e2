//! Stores the billing periods a meter closed itself (see
//! `metering::history_periods`): the history sets with a reset time of an
//! A1000, and the history sets of a TH40C, placed on its billing schedule
//! (the site's, or the factory's day 1 at 00:00) from the read that first
//! saw the last shift. Periods already stored are kept as they are, so the
//! same pass is also the backfill after an outage: every set still in the
//! meter's history that is not stored yet is added.
//!
//! A `billing_reset` event marks each new period newer than the newest one
//! stored before the pass. A device with no period stored yet gets its whole
//! history at once; of that first backfill only the newest period is
//! announced, so the event log shows the meter's last reset without sixteen
//! events for resets that happened before the server knew the meter.

use chrono::{DateTime, Utc};

use super::DeriveServices;
use crate::domain::clock::is_future;
use crate::domain::event::EventKind;
use crate::domain::ids::DeviceId;
use crate::domain::quality::Quality;
use crate::domain::source::BillingSource;
use crate::domain::transport::Protocol;
use crate::metering::billing::BillingPeriod;
use crate::metering::clock_drift::in_drift;
use crate::metering::history_periods::{
    FACTORY_SCHEDULE, MeterValue, ResetSchedule, periods_from_history, periods_from_shift, shift_codes,
};
use crate::store::billing::{
    ShiftingDevice, fetch_devices_with_history_sets, fetch_devices_with_reset_times, fetch_first_seen,
    fetch_last_reset, insert_billing_periods,
};
use crate::store::error::StoreError;
use crate::store::events::{fetch_event_spans, insert_momentary_event};
use crate::store::readings::{StoredReading, fetch_latest};

/// Runs over every device with reset times, then every device whose
/// history shifts; a device that fails is logged and tried again next round.
pub(crate) async fn store_meter_periods(services: &DeriveServices) -> Result<(), StoreError> {
    for device in fetch_devices_with_reset_times(&services.pool).await? {
        if let Err(error) = store_device_periods(services, device).await {
            tracing::warn!(%device, %error, "cannot store the meter's billing periods");
        }
    }
    for device in fetch_devices_with_history_sets(&services.pool).await? {
        if let Err(error) = store_shifted_periods(services, &device).await {
            tracing::warn!(device = %device.id, %error, "cannot store the meter's billing periods");
        }
    }
    Ok(())
}

async fn latest_values(services: &DeriveServices, device: DeviceId) -> Result<Vec<MeterValue>, StoreError> {
    Ok(fetch_latest(&services.pool, device)
        .await?
        .into_iter()
        .map(meter_value)
        .collect())
}

fn meter_value(r: StoredReading) -> MeterValue {
    MeterValue {
        obis: r.obis,
        value: r.value,
        unit: r.unit,
        captured_at: r.captured_at,
    }
}

async fn store_device_periods(services: &DeriveServices, device: DeviceId) -> Result<(), StoreError> {
    let values = latest_values(services, device).await?;
    store_periods(services, device, &periods_from_history(&values)).await
}

async fn store_shifted_periods(services: &DeriveServices, device: &ShiftingDevice) -> Result<(), StoreError> {
    let latest = fetch_latest(&services.pool, device.id).await?;
    let values: Vec<MeterValue> = latest.iter().cloned().map(meter_value).collect();
    let codes = shift_codes(&values);
    if codes.is_empty() {
        return Ok(());
    }
    let last = fetch_last_reset(&services.pool, device.id, BillingSource::Meter, services.clock.now()).await?;
    let Some(seen) = fetch_first_seen(&services.pool, device.id, &codes, last).await? else {
        return Ok(());
    };
    // Over Modbus a shift counts once a later read shows the same `*1`
    // values: a read takes several requests, so one in progress across the
    // reset can hold part of the old history and part of the new, and a
    // period is never changed once stored. An IEC 62056-21 readout is one
    // answer from one instant.
    if device.transport.0.protocol() == Protocol::Modbus {
        let newest = latest
            .iter()
            .filter(|r| codes.iter().any(|(code, _)| *code == r.obis))
            .map(|r| r.read_at)
            .max();
        if newest.is_none_or(|newest| newest <= seen) {
            return Ok(());
        }
    }
    let periods = periods_from_shift(&values, seen, &schedule_of(device));
    store_periods(services, device.id, &periods).await
}

/// The site's billing schedule where it has one, else the meter's factory
/// setting; the site's zone (UTC if it cannot be read).
fn schedule_of(device: &ShiftingDevice) -> ResetSchedule {
    let (day, hour) = match (device.billing_day, device.billing_hour) {
        (Some(day), Some(hour)) => (
            u32::try_from(day).unwrap_or(FACTORY_SCHEDULE.0),
            u32::try_from(hour).unwrap_or(FACTORY_SCHEDULE.1),
        ),
        _ => FACTORY_SCHEDULE,
    };
    ResetSchedule {
        day,
        hour,
        zone: device.time_zone.tz(),
    }
}

async fn store_periods(
    services: &DeriveServices,
    device: DeviceId,
    periods: &[BillingPeriod],
) -> Result<(), StoreError> {
    if periods.is_empty() {
        return Ok(());
    }
    let pool = &services.pool;
    // A reset the meter timed while its clock was known to be off.
    let first = periods
        .iter()
        .map(|p| p.reset_at)
        .min()
        .unwrap_or_else(|| services.clock.now());
    let drifts = fetch_event_spans(pool, device, &EventKind::ClockDrift, first).await?;
    let periods: Vec<BillingPeriod> = periods
        .iter()
        .cloned()
        .map(|mut period| {
            if in_drift(period.reset_at, &drifts) {
                period.quality = period.quality.with(Quality::CLOCK_UNCERTAIN);
            }
            period
        })
        .collect();
    let now = services.clock.now();
    let before = fetch_last_reset(pool, device, BillingSource::Meter, now).await?;
    let inserted = insert_billing_periods(pool, device, &periods, now).await?;
    // A reset stamped in the future was flagged and has its own event.
    let present: Vec<DateTime<Utc>> = inserted.into_iter().filter(|at| !is_future(*at, now)).collect();
    for reset_at in announced(before, &present) {
        let message = format!("The meter closed a billing period at {}", reset_at.to_rfc3339());
        insert_momentary_event(pool, device, &EventKind::BillingReset, &message, reset_at).await?;
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
    use crate::domain::transport::Transport;

    fn at(month: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap()
    }

    fn device(day: Option<i16>, hour: Option<i16>, zone: &str) -> ShiftingDevice {
        ShiftingDevice {
            id: DeviceId(1),
            transport: sqlx::types::Json(Transport::ModbusTcp {
                host: "127.0.0.1".into(),
                port: 502,
            }),
            time_zone: zone.parse().unwrap(),
            billing_day: day,
            billing_hour: hour,
        }
    }

    #[test]
    fn the_sites_schedule_wins_over_the_factory_one() {
        let site = schedule_of(&device(Some(15), Some(6), "Europe/Rome"));
        assert_eq!((site.day, site.hour, site.zone), (15, 6, chrono_tz::Europe::Rome));
        let factory = schedule_of(&device(None, None, "Europe/Rome"));
        assert_eq!((factory.day, factory.hour), (1, 0));
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
