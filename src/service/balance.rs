//! A site's energy balance over a period (`metering::balance`): every
//! device and virtual meter of the site's tree with its net active energy
//! per band, each parent against its children's sum. The bands are those
//! of the calendar asked for, else the site's default tariff calendar, else
//! one band over the whole period ([`OneBand`]).

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

use super::load_profile::check_window;
use super::meters::{data_start, meter_intervals};
use super::tariff_calendars::{load_calendar, site_calendar};
use super::{Caller, ServiceError};
use crate::domain::ids::{CalendarId, SiteId};
use crate::domain::role::Right;
use crate::metering::balance::{NodeBalance, NodeInput, balance};
use crate::metering::statement::quality::data_quality_from;
use crate::metering::statement::{ChannelInterval, energy_by_band};
use crate::metering::tou::BandSplit;
use crate::store::billing_schedule::SiteRow;
use crate::store::load_profile::ProfileInterval;
use crate::store::sites::fetch_site;
use crate::store::sites_tree::fetch_site_tree;

pub(crate) use crate::metering::balance::OneBand;

/// The longest interval a device records (TH40C: 1–120 minutes), so that
/// the intervals overlapping the period's start are all fetched.
const LONGEST_INTERVAL_MINUTES: i64 = 120;

/// A site's balance over `[from, to)`.
#[derive(Debug, Clone)]
pub(crate) struct SiteBalance {
    pub site: SiteRow,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The calendar the bands come from; `None`: one band, `all`.
    pub calendar: Option<CalendarId>,
    /// The split's bands, in its order.
    pub bands: Vec<String>,
    /// Depth first from each root.
    pub nodes: Vec<NodeBalance>,
}

/// The balance of `site` over `[from, to)` (viewer), in the bands of
/// `calendar`, by default the site's.
pub(crate) async fn site_balance(
    pool: &PgPool,
    caller: &Caller,
    site: SiteId,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    calendar: Option<CalendarId>,
) -> Result<SiteBalance, ServiceError> {
    caller.require(Right::Read)?;
    check_window(from, to)?;
    let row = fetch_site(pool, site)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no site {site}")))?;
    balance_in_site_bands(pool, row, from, to, calendar).await
}

/// [`site_balance`] without a role check, for the derivation pass too.
pub(crate) async fn balance_in_site_bands(
    pool: &PgPool,
    site: SiteRow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    calendar: Option<CalendarId>,
) -> Result<SiteBalance, ServiceError> {
    let calendar = match calendar {
        Some(calendar) => Some(calendar),
        None => site_calendar(pool, site.id).await?,
    };
    match calendar {
        Some(calendar) => {
            let loaded = load_calendar(pool, calendar).await?;
            compute_site_balance(pool, site, from, to, &loaded, Some(calendar)).await
        }
        None => compute_site_balance(pool, site, from, to, &OneBand, None).await,
    }
}

/// The balance of a site under `split`.
async fn compute_site_balance(
    pool: &PgPool,
    site: SiteRow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    split: &(dyn BandSplit + Sync),
    calendar: Option<CalendarId>,
) -> Result<SiteBalance, ServiceError> {
    let bands = split.bands();
    let mut inputs = Vec::new();
    for node in fetch_site_tree(pool, site.id).await? {
        let meter = meter_intervals(pool, node.id, from - TimeDelta::minutes(LONGEST_INTERVAL_MINUTES), to).await?;
        let intervals: Vec<ChannelInterval> = meter.intervals.into_iter().map(channel_interval).collect();
        let energy = energy_by_band(&intervals, split, from, to);
        let net = |band: &String| {
            let side = |number: u8| energy.quantity(number).map_or(0, |quantity| energy.get(band, quantity));
            (band.clone(), side(1) - side(2))
        };
        let nominal = u32::try_from(meter.interval_minutes).unwrap_or(15);
        let quality = data_quality_from(&intervals, (from, to), nominal, data_start(pool, node.id).await?);
        inputs.push(NodeInput {
            id: node.id,
            name: node.name,
            parent: node.parent_device_id,
            is_virtual: node.is_virtual,
            energy: bands.iter().map(net).collect(),
            missing_intervals: u64::from(quality.missing),
            pending_intervals: u64::from(quality.pending),
        });
    }
    let nodes = balance(&inputs, &bands, site.balance_threshold_percent);
    Ok(SiteBalance {
        site,
        calendar,
        from,
        to,
        bands,
        nodes,
    })
}

fn channel_interval(row: ProfileInterval) -> ChannelInterval {
    ChannelInterval {
        obis: row.obis,
        start: row.interval_start,
        minutes: u32::try_from(row.interval_minutes).unwrap_or(0),
        value: row.value,
        unit: row.unit,
        quality: row.quality,
        source: row.source,
    }
}
