//! A device's billing statement for a period: energy per tariff band and
//! quantity, maximum demand per band, the E43/E44 balance and the data
//! behind it (`metering::statement`), under a tariff calendar. A virtual
//! meter's id answers too: its statement is that of its signed sum
//! (`service::meters`), where an interval some members lack counts as
//! missing, never as a smaller sum.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use std::collections::BTreeSet;

use super::load_profile::check_window;
use super::meters::{data_start, meter_intervals};
use super::tariff_calendars::{load_calendar, site_calendar};
use super::{Caller, ServiceError};
use crate::domain::ids::{CalendarId, DeviceId};
use crate::domain::role::Right;
use crate::metering::statement::quantity::is_energy_channel;
use crate::metering::statement::{ChannelInterval, DemandMethod, Statement, StatementRequest, compute_statement};
use crate::metering::tou::BandSplit;
use crate::store::load_profile::fetch_device_interval_minutes;
use crate::store::statements::{LONGEST_INTERVAL, channel_interval, fetch_device_site};

/// What a statement is asked for, parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatementQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub demand: DemandMethod,
}

/// The calendar a statement was computed under, as the answer names it.
#[derive(Debug, Clone)]
pub(crate) struct CalendarInfo {
    pub id: CalendarId,
    /// The calendar's IANA zone.
    pub time_zone: String,
}

/// A device's statement with what it was computed from.
#[derive(Debug, Clone)]
pub(crate) struct DeviceStatement {
    pub device: DeviceId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub calendar: CalendarInfo,
    pub demand: DemandMethod,
    pub statement: Statement,
}

/// What a statement is computed from, for a device or a virtual meter.
struct PeriodIntervals {
    /// The newest version of each interval that overlaps `[from, to)`,
    /// every channel; for a virtual meter, its complete sums only.
    intervals: Vec<ChannelInterval>,
    /// The length missing time is counted in: the device's configured
    /// one, or for a virtual meter its sums' (its first member's).
    nominal_minutes: u32,
    /// Starts in `[from, to)` where some member of a virtual meter lacked
    /// an energy interval the others had.
    incomplete: u32,
}

async fn period_intervals(
    pool: &PgPool,
    id: DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<PeriodIntervals, ServiceError> {
    // An interval starting up to the longest length before `from` can
    // still reach into the period.
    let meter = meter_intervals(pool, id, from - LONGEST_INTERVAL, to).await?;
    let nominal = fetch_device_interval_minutes(pool, id)
        .await?
        .unwrap_or(meter.interval_minutes);
    let incomplete: BTreeSet<DateTime<Utc>> = meter
        .incomplete
        .iter()
        .filter(|gap| is_energy_channel(&gap.obis) && gap.start >= from && gap.start < to)
        .map(|gap| gap.start)
        .collect();
    Ok(PeriodIntervals {
        intervals: meter
            .intervals
            .into_iter()
            .map(channel_interval)
            .filter(|interval| interval.end() > from)
            .collect(),
        nominal_minutes: u32::try_from(nominal).unwrap_or(15),
        incomplete: u32::try_from(incomplete.len()).unwrap_or(u32::MAX),
    })
}

/// The statement of a device or a virtual meter under a calendar already
/// loaded.
pub(crate) async fn statement_under(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
    query: StatementQuery,
    split: &(dyn BandSplit + Sync),
    calendar: CalendarInfo,
) -> Result<DeviceStatement, ServiceError> {
    caller.require(Right::Read)?;
    check_window(query.from, query.to)?;
    let period = period_intervals(pool, device, query.from, query.to).await?;
    let request = StatementRequest {
        from: query.from,
        to: query.to,
        demand: query.demand,
        nominal_minutes: period.nominal_minutes,
        data_start: data_start(pool, device).await?,
    };
    let mut statement = compute_statement(&period.intervals, split, &request);
    statement.quality.incomplete = period.incomplete;
    Ok(DeviceStatement {
        device,
        from: query.from,
        to: query.to,
        calendar,
        demand: query.demand,
        statement,
    })
}

/// The statement of a device or a virtual meter under `calendar`, or by
/// default its site's calendar (the device's own site, which may differ
/// from its bus's; the virtual meter's site); none of either is an invalid
/// `calendar_id`.
pub(crate) async fn device_statement(
    pool: &PgPool,
    caller: &Caller,
    device: DeviceId,
    query: StatementQuery,
    calendar: Option<CalendarId>,
) -> Result<DeviceStatement, ServiceError> {
    caller.require(Right::Read)?;
    let calendar = match calendar {
        Some(id) => id,
        None => {
            let site = fetch_device_site(pool, device)
                .await?
                .ok_or_else(|| ServiceError::not_found(format!("no device or virtual meter {device}")))?;
            site_calendar(pool, site).await?.ok_or_else(|| {
                ServiceError::invalid(
                    "calendar_id",
                    "the device's site has no default tariff calendar; give calendar_id",
                )
            })?
        }
    };
    let loaded = load_calendar(pool, calendar).await?;
    let info = CalendarInfo {
        id: loaded.id,
        time_zone: loaded.time_zone.to_string(),
    };
    statement_under(pool, caller, device, query, &loaded, info).await
}
