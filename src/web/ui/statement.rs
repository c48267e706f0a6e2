//! The statement page of a device: energy per tariff band and quantity,
//! maximum demand per band, the E43/E44 balance and the data behind it,
//! for a period the operator picks, with the same statement as CSV.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Datelike, SecondsFormat, TimeZone, Utc};

use super::fleet::when;
use super::signed_in_page;
use crate::domain::ids::{DeviceId, VirtualMeterId};
use crate::service::ServiceError;
use crate::service::devices::get_device;
use crate::service::virtual_meters::get_virtual_meter;
use crate::web::api::statement_body::{Energy, MaxDemand, StatementBody, body};
use crate::web::api::statements::{StatementParams, parse_query};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

#[derive(askama::Template)]
#[template(path = "statement.html")]
pub(crate) struct StatementPage {
    pub user: String,
    pub id: i64,
    pub name: String,
    /// The form's values, as given or defaulted.
    pub from: String,
    pub to: String,
    pub calendar_id: String,
    pub demand: String,
    pub cycle_minutes: String,
    pub step_minutes: String,
    /// The query string of the CSV link.
    pub query: String,
    /// Why there is no statement (a bad input, no calendar).
    pub error: String,
    pub statement: Option<StatementView>,
}

pub(crate) struct StatementView {
    pub time_zone: String,
    pub calendar_id: i64,
    pub demand: String,
    /// Column heads: the quantities' codes and units.
    pub quantities: Vec<String>,
    pub rows: Vec<RowView>,
    pub balance: String,
    pub actual: u32,
    pub estimated: u32,
    pub missing: u32,
    /// Not reached yet by the backfill of the meter's load profile.
    pub pending: u32,
    pub clock_uncertain: u32,
    pub flagged: Vec<(String, String, String)>,
    pub refused: String,
}

pub(crate) struct RowView {
    pub tariff: String,
    pub values: Vec<String>,
    pub max_demand: String,
    pub max_demand_at: String,
    pub total: bool,
}

/// The first instant of the month before `now`'s, and of `now`'s, in UTC.
fn last_month(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let this = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    let (year, month) = if now.month() == 1 {
        (now.year() - 1, 12)
    } else {
        (now.year(), now.month() - 1)
    };
    let before = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single().unwrap_or(this);
    (before, this)
}

pub(crate) async fn get_statement_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    Query(params): Query<StatementParams>,
) -> Response {
    signed_in_page(caller, &format!("/devices/{id}/statement"), |caller| {
        build(&state, caller, DeviceId(id), params)
    })
    .await
}

async fn build(
    state: &AppState,
    caller: Caller,
    id: DeviceId,
    mut params: StatementParams,
) -> Result<StatementPage, ApiError> {
    // A virtual meter's id answers as a device's does (docs/SITES.md, Ids).
    let name = match get_device(&state.pool, &caller, id).await {
        Ok(device) => device.name,
        Err(ServiceError::NotFound(_)) => {
            get_virtual_meter(&state.pool, &caller, VirtualMeterId(id.0))
                .await
                .map_err(|_| ApiError::not_found(format!("no device or virtual meter {id}")))?
                .name
        }
        Err(error) => return Err(error.into()),
    };
    let (from, to) = last_month(state.clock.now());
    let stamp = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    params.default_period(stamp(from), stamp(to));
    let mut page = StatementPage {
        user: caller.user.clone(),
        id: id.0,
        name,
        from: params.from().to_owned(),
        to: params.to().to_owned(),
        calendar_id: params.calendar().to_owned(),
        demand: params.demand_name().to_owned(),
        cycle_minutes: params.cycle().to_owned(),
        step_minutes: params.step().to_owned(),
        query: params.query_string(),
        error: String::new(),
        statement: None,
    };
    let answer = match parse_query(&params) {
        Ok((query, calendar)) => {
            crate::service::statements::device_statement(&state.pool, &caller, id, query, calendar)
                .await
                .map_err(ApiError::from)
        }
        Err(error) => Err(error),
    };
    match answer {
        Ok(answer) => page.statement = Some(view(&body(&answer))),
        Err(error) if error.status.is_client_error() && error.status != axum::http::StatusCode::FORBIDDEN => {
            page.error = error.message;
        }
        Err(error) => return Err(error),
    }
    Ok(page)
}

fn view(body: &StatementBody) -> StatementView {
    let quantities: Vec<String> = body
        .total
        .energy
        .iter()
        .map(|energy| format!("{} ({})", energy.obis, energy.unit))
        .collect();
    let row = |tariff: &str, energy: &[Energy], demand, total| {
        let demand: Option<&MaxDemand> = demand;
        RowView {
            tariff: tariff.to_owned(),
            values: energy.iter().map(|e| format!("{:.3}", e.value)).collect(),
            max_demand: demand.map(|d| format!("{:.3} {}", d.value, d.unit)).unwrap_or_default(),
            max_demand_at: demand.map(|d| when(Some(d.at))).unwrap_or_default(),
            total,
        }
    };
    let mut rows: Vec<RowView> = body
        .bands
        .iter()
        .map(|band| row(&band.tariff, &band.energy, band.max_demand.as_ref(), false))
        .collect();
    rows.push(row("Total", &body.total.energy, body.total.max_demand.as_ref(), true));
    let sides: Vec<String> = [&body.balance.active, &body.balance.reactive]
        .into_iter()
        .flatten()
        .map(|amount| format!("{:.3} {}", amount.value, amount.unit))
        .collect();
    StatementView {
        time_zone: body.time_zone.clone(),
        calendar_id: body.calendar_id,
        demand: format!(
            "{} windows of {} min{}",
            body.demand.method,
            body.demand.cycle_minutes,
            if body.demand.method == "rolling" {
                format!(", every {} min", body.demand.step_minutes)
            } else {
                String::new()
            }
        ),
        quantities,
        rows,
        balance: if sides.is_empty() {
            String::new()
        } else {
            format!("{} over {}", sides.join(", "), body.balance.bands.join(" + "))
        },
        actual: body.quality.actual,
        estimated: body.quality.estimated,
        missing: body.quality.missing,
        pending: body.quality.pending,
        clock_uncertain: body.quality.clock_uncertain,
        flagged: body
            .quality
            .flagged
            .iter()
            .map(|f| (when(Some(f.start)), f.flags.join(", "), f.sources.join(", ")))
            .collect(),
        refused: body.refused_channels.join(", "),
    }
}
