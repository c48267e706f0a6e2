//! Everything the device page shows of one device, read in one use case:
//! the device and its bus, its latest values, a summary of its load
//! profile, its newest billing periods, the data quality of the last few
//! months, its latest read and command, its newest events, the state of
//! its meter's logbooks, and the names of its secrets (never their values).

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use super::commands::latest_command;
use super::data_quality::{DataQuality, device_data_quality};
use super::devices::existing_device;
use super::jobs::latest_read;
use super::{Caller, ServiceError};
use crate::device::iec_logbook::LOGBOOK_REASK;
use crate::device::registry::ProfileSet;
use crate::domain::ids::DeviceId;
use crate::domain::role::Right;
use crate::metering::billing::BillingPeriod;
use crate::store::billing::fetch_billing_periods;
use crate::store::buses::{BusRow, fetch_bus};
use crate::store::command_jobs::CommandJobRow;
use crate::store::device_secrets::{SecretInfo, fetch_secret_infos};
use crate::store::devices::DeviceRow;
use crate::store::events::{EventRow, fetch_device_events};
use crate::store::identity::{StoredIdentity, count_held_readings, fetch_identity};
use crate::store::load_profile::fetch_interval_summary;
use crate::store::logbook::{fetch_logbook_counts, fetch_logbook_refusals};
use crate::store::read_jobs::ReadJobRow;
use crate::store::readings::{StoredReading, fetch_latest};

/// Billing periods in an overview, newest first; the API lists them all.
const BILLING_PERIODS: usize = 6;
/// Months of data quality in an overview (this one and the two before);
/// the API gives up to a year and a day.
const QUALITY_MONTHS: u32 = 3;
/// Events in an overview, newest first.
const EVENTS: i64 = 20;

/// The stored load profile in brief.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntervalSummary {
    /// Start of the newest interval stored, if any, short of the future.
    pub newest: Option<DateTime<Utc>>,
    /// Intervals stored over the last 24 hours.
    pub last_day: i64,
}

/// One device as its page shows it.
#[derive(Debug)]
pub(crate) struct DeviceOverview {
    pub device: DeviceRow,
    /// Its bus; none if the bus is gone since.
    pub bus: Option<BusRow>,
    /// The latest value of each code it reported.
    pub readings: Vec<StoredReading>,
    pub intervals: IntervalSummary,
    /// The newest [`BILLING_PERIODS`] billing periods, newest first.
    pub billing: Vec<BillingPeriod>,
    /// The last [`QUALITY_MONTHS`] calendar months; none if the device is
    /// gone since.
    pub data_quality: Option<DataQuality>,
    pub read_job: Option<ReadJobRow>,
    pub command_job: Option<CommandJobRow>,
    /// The newest [`EVENTS`] events, newest first.
    pub events: Vec<EventRow>,
    /// Its secrets by name, who set each and when.
    pub secrets: Vec<SecretInfo>,
    /// Which meter answers at its address, and the readings held while
    /// another one does.
    pub identity: StoredIdentity,
    pub held_readings: i64,
    /// Each logbook its profile reads over IEC 62056-21 (none for a device
    /// read over Modbus).
    pub logbooks: Vec<LogbookState>,
}

/// A logbook of the meter, as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogbookState {
    /// The profile's section: `logbook` or `programming_log`.
    pub section: &'static str,
    /// Its profile number (`P.98`).
    pub profile: u8,
    /// Entries stored, and the newest one's stamp.
    pub entries: i64,
    pub newest: Option<DateTime<Utc>>,
    /// When the meter last refused it whole, and when it is asked again.
    pub refused: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The overview of a device at `now`, or not found.
pub(crate) async fn device_overview(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    id: DeviceId,
    now: DateTime<Utc>,
) -> Result<DeviceOverview, ServiceError> {
    caller.require(Right::Read)?;
    let device = existing_device(pool, id).await?;
    let readings = fetch_latest(pool, id).await?;
    let (newest, last_day) = fetch_interval_summary(pool, id, now - TimeDelta::hours(24), now).await?;
    let read_job = latest_read(pool, caller, id).await?;
    let command_job = latest_command(pool, caller, id).await?;
    let bus = fetch_bus(pool, device.bus_id).await?;
    let mut billing = fetch_billing_periods(pool, id).await?;
    billing.truncate(BILLING_PERIODS);
    let data_quality = device_data_quality(pool, profiles, id, (None, now), QUALITY_MONTHS, now).await?;
    let events = fetch_device_events(pool, id, EVENTS).await?;
    let secrets = fetch_secret_infos(pool, id).await?;
    let identity = fetch_identity(pool, id).await?;
    let held_readings = count_held_readings(pool, id).await?;
    let logbooks = logbook_states(pool, profiles, &device).await?;
    Ok(DeviceOverview {
        device,
        bus,
        readings,
        intervals: IntervalSummary { newest, last_day },
        billing,
        data_quality,
        read_job,
        command_job,
        events,
        secrets,
        identity,
        held_readings,
        logbooks,
    })
}

/// The logbooks of the device's profile, when it is read over IEC
/// 62056-21, with what is stored of each.
async fn logbook_states(
    pool: &PgPool,
    profiles: &ProfileSet,
    device: &DeviceRow,
) -> Result<Vec<LogbookState>, ServiceError> {
    let Some(profile) = profiles.get(&device.profile) else {
        return Ok(Vec::new());
    };
    let Some(iec) = profile.iec62056.as_ref().filter(|_| device.iec_address.is_some()) else {
        return Ok(Vec::new());
    };
    let listed: Vec<_> = iec
        .logbooks()
        .map(|(section, settings)| (section, settings.profile))
        .collect();
    if listed.is_empty() {
        return Ok(Vec::new());
    }
    let counts = fetch_logbook_counts(pool, device.id).await?;
    let refusals = fetch_logbook_refusals(pool, device.id).await?;
    Ok(listed
        .into_iter()
        .map(|(section, number)| {
            let (entries, newest) = counts
                .iter()
                .find(|(p, _, _)| *p == number)
                .map_or((0, None), |(_, count, newest)| (*count, *newest));
            let refused = refusals
                .iter()
                .find(|(p, _)| *p == number)
                .map(|(_, at)| (*at, *at + LOGBOOK_REASK));
            LogbookState {
                section,
                profile: number,
                entries,
                newest,
                refused,
            }
        })
        .collect())
}
