//! `GET /api/v1/sites/{id}/balance?from=…&to=…`: a site's tree of meters
//! over a period, each node's net active energy per band, its children's
//! sum, the unmetered remainder and its share (docs/SITES.md).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::load_profile::{bad, instant};
use super::statements::decimal;
use crate::domain::ids::{CalendarId, SiteId};
use crate::domain::role::Right;
use crate::metering::balance::{BandBalance, NodeBalance};
use crate::service::balance::{self, SiteBalance};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BalanceQuery {
    /// Start (inclusive), RFC 3339; required.
    #[param(required = true)]
    from: Option<String>,
    /// End (exclusive), RFC 3339; required; at most 366 days after `from`.
    #[param(required = true)]
    to: Option<String>,
    /// The tariff calendar whose bands to use; default the site's, else
    /// one band (`all`).
    calendar_id: Option<String>,
}

/// One band of a node, or its total; energies in kWh.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"tariff": "F1", "energy": 100.0, "children_sum": 90.0, "remainder": 10.0,
    "remainder_percent": 10.0, "over_threshold": true}))]
pub(crate) struct BandRow {
    /// The band; null in a node's `total`.
    pub tariff: Option<String>,
    /// The node's net active energy (import − export), kWh.
    pub energy: f64,
    /// Its children's net energies summed, kWh; null for a leaf.
    pub children_sum: Option<f64>,
    /// `energy − children_sum`, kWh: energy the children do not meter
    /// (negative when they meter more than the parent); null for a leaf.
    pub remainder: Option<f64>,
    /// The remainder as a percentage of `energy`; null for a leaf or when
    /// the node's energy is 0.
    pub remainder_percent: Option<f64>,
    /// `|remainder_percent|` over the site's threshold (or children metering
    /// energy where the parent metered none).
    pub over_threshold: bool,
}

/// A node of the site's tree: a device or a virtual meter.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "Main incomer", "kind": "device", "parent_id": null, "depth": 0,
    "children": [2, 3], "bands": [{"tariff": "F1", "energy": 100.0, "children_sum": 90.0, "remainder": 10.0,
    "remainder_percent": 10.0, "over_threshold": true}],
    "total": {"tariff": null, "energy": 100.0, "children_sum": 90.0, "remainder": 10.0, "remainder_percent": 10.0,
    "over_threshold": true}, "missing_intervals": 0, "pending_intervals": 0, "incomplete": false, "mismatch": true}))]
pub(crate) struct BalanceNode {
    /// The device's or virtual meter's id.
    pub id: i64,
    pub name: String,
    /// `device` or `virtual_meter`.
    pub kind: &'static str,
    /// The meter upstream of it; null for a root.
    pub parent_id: Option<i64>,
    /// 0 for a root; nodes come depth first, each after its parent.
    pub depth: usize,
    /// The nodes directly downstream of it, by id.
    pub children: Vec<i64>,
    /// One row per band of the split, in its order.
    pub bands: Vec<BandRow>,
    pub total: BandRow,
    /// Intervals missing from its data in the period.
    pub missing_intervals: u64,
    /// Intervals a running first backfill of the meter's load profile has
    /// not reached yet, or asked for and found without records (a hole or
    /// the end of the meter's memory, told apart when older data comes),
    /// in the period: not in `missing_intervals`. Before
    /// the meter's oldest data, once the backfill is complete, in neither.
    #[schema(example = 0)]
    pub pending_intervals: u64,
    /// It or a child misses intervals (or waits for them from a running
    /// backfill): a remainder may be a gap in the data.
    pub incomplete: bool,
    /// Over the threshold on complete data: what raises `balance_mismatch`.
    pub mismatch: bool,
}

/// A site's balance.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"site_id": 1, "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z",
    "time_zone": "Europe/Rome", "calendar_id": null, "bands": ["all"], "threshold_percent": 5.0, "unit": "kWh", "nodes": []}))]
pub(crate) struct Balance {
    pub site_id: i64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub time_zone: String,
    /// The calendar the bands come from: the one asked for, else the
    /// site's default; null when neither (one band, `all`).
    pub calendar_id: Option<i64>,
    /// The calendar's bands in its order, or `["all"]` without one (one band
    /// over the whole period).
    pub bands: Vec<String>,
    /// The site's `balance_threshold_percent`.
    pub threshold_percent: f64,
    /// Unit of every energy: `kWh`.
    pub unit: &'static str,
    /// The tree depth first: each root, then its subtree, children by id.
    pub nodes: Vec<BalanceNode>,
}

/// Milli-units (mWh) as kWh, through the exact decimal text.
fn kwh(milli: i128) -> f64 {
    decimal(milli).parse().unwrap_or(f64::NAN)
}

fn band_row(band: &BandBalance) -> BandRow {
    BandRow {
        tariff: band.band.clone(),
        energy: kwh(band.energy),
        children_sum: band.children_sum.map(kwh),
        remainder: band.remainder.map(kwh),
        remainder_percent: band.remainder_percent,
        over_threshold: band.over_threshold,
    }
}

fn node(balance: &NodeBalance) -> BalanceNode {
    BalanceNode {
        id: balance.id.0,
        name: balance.name.clone(),
        kind: if balance.is_virtual { "virtual_meter" } else { "device" },
        parent_id: balance.parent.map(|parent| parent.0),
        depth: balance.depth,
        children: balance.children.iter().map(|child| child.0).collect(),
        bands: balance.bands.iter().map(band_row).collect(),
        total: band_row(&balance.total),
        missing_intervals: balance.missing_intervals,
        pending_intervals: balance.pending_intervals,
        incomplete: balance.incomplete,
        mismatch: balance.mismatch(),
    }
}

impl From<SiteBalance> for Balance {
    fn from(balance: SiteBalance) -> Balance {
        Balance {
            site_id: balance.site.id.0,
            from: balance.from,
            to: balance.to,
            time_zone: balance.site.time_zone.to_string(),
            calendar_id: balance.calendar.map(|calendar| calendar.0),
            bands: balance.bands.clone(),
            threshold_percent: balance.site.balance_threshold_percent,
            unit: "kWh",
            nodes: balance.nodes.iter().map(node).collect(),
        }
    }
}

/// Parses the period and computes the balance, for the API and the page.
pub(crate) async fn load_balance(
    state: &AppState,
    caller: &Caller,
    id: i64,
    from: Option<&str>,
    to: Option<&str>,
    calendar: Option<&str>,
) -> Result<SiteBalance, ApiError> {
    caller.require(Right::Read)?;
    let from = instant("from", from)?.ok_or_else(|| bad("from", "is required"))?;
    let to = instant("to", to)?.ok_or_else(|| bad("to", "is required"))?;
    let calendar = match calendar {
        None | Some("") => None,
        Some(text) => {
            Some(CalendarId(text.parse().map_err(|_| {
                bad("calendar_id", format!("{text:?} is not a calendar id"))
            })?))
        }
    };
    balance::site_balance(&state.pool, caller, SiteId(id), (from, to), calendar)
        .await
        .map_err(ApiError::from_query)
}

/// A site's energy balance: for each meter of its tree, its net active
/// energy (import − export, the COUNTIS E43/E44's "energy balance", manual
/// §4.6.2) per band, against the sum of the meters directly downstream of
/// it; the remainder is what they do not meter.
#[utoipa::path(get, path = "/api/v1/sites/{id}/balance", tag = "sites",
    params(("id" = i64, Path, description = "Site id"), BalanceQuery),
    responses(
        (status = 200, description = "The tree, depth first", body = Balance),
        (status = 400, description = "Missing or invalid from, to or calendar_id, from not before to, or a period over 366 days", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such site or calendar", body = ErrorBody),
    ))]
pub(crate) async fn get_site_balance(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<BalanceQuery>,
) -> Result<Json<Balance>, ApiError> {
    let balance = load_balance(
        &state,
        &caller,
        id,
        query.from.as_deref(),
        query.to.as_deref(),
        query.calendar_id.as_deref(),
    )
    .await?;
    Ok(Json(Balance::from(balance)))
}
