//! The sites page (every site, its zone and threshold) and a site's
//! balance page: its tree of meters over a period, each parent against its
//! children, the losses over the site's threshold highlighted.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Deserialize;

use super::signed_in_page;
use crate::service::sites::{get_site, list_sites};
use crate::web::api::balance::{Balance, BalanceNode, BandRow, load_balance};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

#[derive(askama::Template)]
#[template(path = "sites.html")]
pub(crate) struct SitesPage {
    pub user: String,
    /// (id, name, zone, threshold percent)
    pub sites: Vec<(i64, String, String, f64)>,
}

pub(crate) async fn get_sites_page(State(state): State<AppState>, caller: Result<Caller, ApiError>) -> Response {
    signed_in_page(caller, "/sites", |caller| async move {
        let sites = list_sites(&state.pool, &caller)
            .await?
            .into_iter()
            .map(|site| {
                (
                    site.id.0,
                    site.name,
                    site.time_zone.to_string(),
                    site.balance_threshold_percent,
                )
            })
            .collect();
        Ok(SitesPage {
            user: caller.user,
            sites,
        })
    })
    .await
}

/// One cell of the balance table.
pub(crate) struct CellView {
    pub energy: String,
    pub children_sum: String,
    pub remainder: String,
    pub percent: String,
    pub over: bool,
}

pub(crate) struct NodeView {
    pub id: i64,
    pub name: String,
    pub is_virtual: bool,
    /// Indentation, in em.
    pub indent: usize,
    pub cells: Vec<CellView>,
    pub incomplete: bool,
    pub missing: u64,
    pub mismatch: bool,
}

#[derive(askama::Template)]
#[template(path = "site_balance.html")]
pub(crate) struct SiteBalancePage {
    pub user: String,
    pub id: i64,
    pub name: String,
    pub from: String,
    pub to: String,
    pub error: String,
    pub time_zone: String,
    pub threshold: f64,
    /// Column groups: each band, then "total".
    pub columns: Vec<String>,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PeriodParams {
    from: Option<String>,
    to: Option<String>,
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(String::new, |value| format!("{value:.decimals$}"))
}

fn cell(row: &BandRow) -> CellView {
    CellView {
        energy: number(Some(row.energy), 3),
        children_sum: number(row.children_sum, 3),
        remainder: number(row.remainder, 3),
        percent: number(row.remainder_percent, 2),
        over: row.over_threshold,
    }
}

fn node_view(node: &BalanceNode) -> NodeView {
    NodeView {
        id: node.id,
        name: node.name.clone(),
        is_virtual: node.kind == "virtual_meter",
        indent: node.depth * 2,
        cells: node
            .bands
            .iter()
            .chain(std::iter::once(&node.total))
            .map(cell)
            .collect(),
        incomplete: node.incomplete,
        missing: node.missing_intervals,
        mismatch: node.mismatch,
    }
}

/// The seven whole UTC days before `now`'s.
fn last_week(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let today = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |midnight| midnight.and_utc());
    (today - TimeDelta::days(7), today)
}

pub(crate) async fn get_site_balance_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    Query(params): Query<PeriodParams>,
) -> Response {
    signed_in_page(caller, &format!("/sites/{id}/balance"), |caller| async move {
        let site = get_site(&state.pool, &caller, crate::domain::ids::SiteId(id)).await?;
        let (from, to) = last_week(state.clock.now());
        let stamp = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
        let given = |text: Option<String>, default: DateTime<Utc>| {
            text.filter(|t| !t.is_empty()).unwrap_or_else(|| stamp(default))
        };
        let mut page = SiteBalancePage {
            user: caller.user.clone(),
            id,
            name: site.name.clone(),
            from: given(params.from, from),
            to: given(params.to, to),
            error: String::new(),
            time_zone: site.time_zone.to_string(),
            threshold: site.balance_threshold_percent,
            columns: Vec::new(),
            nodes: Vec::new(),
        };
        match load_balance(&state, &caller, id, Some(&page.from), Some(&page.to), None).await {
            Ok(balance) => {
                let balance = Balance::from(balance);
                page.columns = balance
                    .bands
                    .iter()
                    .cloned()
                    .chain(std::iter::once("total".to_owned()))
                    .collect();
                page.nodes = balance.nodes.iter().map(node_view).collect();
            }
            Err(error) if error.status.is_client_error() && error.status != axum::http::StatusCode::NOT_FOUND => {
                page.error = error.message;
            }
            Err(error) => return Err(error),
        }
        Ok(page)
    })
    .await
}
