//! A device's billing statement for a period: energy per tariff band and
//! quantity, maximum demand per band, the E43/E44 balance and the data
//! behind it (`metering::statement`), under a tariff calendar.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::load_profile::{check_window, configured_interval_minutes};
use super::tariff_calendars::{load_calendar, site_calendar};
use super::{Caller, ServiceError};
use crate::domain::ids::{CalendarId, DeviceId};
use crate::domain::role::Right;
use crate::metering::statement::{ChannelInterval, DemandMethod, Statement, StatementRequest, compute_statement};
use crate::metering::tou::BandSplit;
use crate::store::statements::{fetch_device_site, fetch_period_intervals};

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

/// The newest version of each of a device's intervals that overlaps
/// `[from, to)`, every channel: what [`crate::metering::statement`] and a
/// balance take.
pub(crate) async fn period_intervals(
    pool: &PgPool,
    device: DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ChannelInterval>, ServiceError> {
    Ok(fetch_period_intervals(pool, device, from, to).await?)
}

/// The statement of a device under a calendar already loaded.
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
    let nominal = configured_interval_minutes(pool, device).await?;
    let intervals = period_intervals(pool, device, query.from, query.to).await?;
    let request = StatementRequest {
        from: query.from,
        to: query.to,
        demand: query.demand,
        nominal_minutes: u32::try_from(nominal).unwrap_or(15),
    };
    Ok(DeviceStatement {
        device,
        from: query.from,
        to: query.to,
        calendar,
        demand: query.demand,
        statement: compute_statement(&intervals, split, &request),
    })
}

/// The statement of a device under `calendar`, or by default its site's
/// calendar; none of either is an invalid `calendar_id`.
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
                .ok_or_else(|| ServiceError::not_found(format!("no device {device}")))?;
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
