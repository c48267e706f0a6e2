//! `/api/v1/devices/{id}/statement` (JSON) and `/statement.csv`: a
//! device's billing statement for a period under a tariff calendar.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::load_profile::{bad, instant};
// `decimal` is also how the balance endpoint prints energies.
pub(crate) use super::statement_body::decimal;
use super::statement_body::{StatementBody, body, max_demand};
use crate::domain::ids::{CalendarId, DeviceId};
use crate::domain::role::Right;
use crate::metering::statement::DemandMethod;
use crate::metering::statement::demand::Peak;
use crate::service::ServiceError;
use crate::service::statements::{self, DeviceStatement, StatementQuery};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatementParams {
    /// Start of the period (inclusive), RFC 3339. Required.
    #[param(required = true)]
    from: Option<String>,
    /// End of the period (exclusive), RFC 3339, at most 366 days after `from`. Required.
    #[param(required = true)]
    to: Option<String>,
    /// The tariff calendar; default the device's site's calendar.
    calendar_id: Option<String>,
    /// `block` (default) or `rolling`.
    demand: Option<String>,
    /// Demand cycle: 5, 10, 15 (default), 30 or 60 minutes.
    cycle_minutes: Option<String>,
    /// Rolling interval (rolling only): 1, 2, 3 or 5 minutes (default 5);
    /// the cycle a multiple of it, 60 minutes only with 2, 3 or 5.
    step_minutes: Option<String>,
}

impl StatementParams {
    /// Fills in a period where none is given (the statement page's default).
    pub(crate) fn default_period(&mut self, from: String, to: String) {
        if self.from.as_deref().is_none_or(str::is_empty) {
            self.from = Some(from);
        }
        if self.to.as_deref().is_none_or(str::is_empty) {
            self.to = Some(to);
        }
    }

    pub(crate) fn from(&self) -> &str {
        self.from.as_deref().unwrap_or_default()
    }

    pub(crate) fn to(&self) -> &str {
        self.to.as_deref().unwrap_or_default()
    }

    pub(crate) fn calendar(&self) -> &str {
        self.calendar_id.as_deref().unwrap_or_default()
    }

    pub(crate) fn demand_name(&self) -> &str {
        self.demand.as_deref().filter(|d| !d.is_empty()).unwrap_or("block")
    }

    pub(crate) fn cycle(&self) -> &str {
        self.cycle_minutes.as_deref().unwrap_or_default()
    }

    pub(crate) fn step(&self) -> &str {
        self.step_minutes.as_deref().unwrap_or_default()
    }

    /// The parameters given, as a URL query string (percent-encoded).
    pub(crate) fn query_string(&self) -> String {
        let pairs = [
            ("from", &self.from),
            ("to", &self.to),
            ("calendar_id", &self.calendar_id),
            ("demand", &self.demand),
            ("cycle_minutes", &self.cycle_minutes),
            ("step_minutes", &self.step_minutes),
        ];
        pairs
            .iter()
            .filter_map(|(key, value)| {
                let value = value.as_deref().filter(|v| !v.is_empty())?;
                Some(format!("{key}={}", percent_encode(value)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Every byte but an unreserved one (RFC 3986: letters, digits, `-._~`)
/// as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn number<T: std::str::FromStr>(field: &str, text: Option<&str>) -> Result<Option<T>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| bad(field, format!("{text:?} is not a whole number"))),
    }
}

/// The query's period and demand method.
pub(crate) fn parse_query(params: &StatementParams) -> Result<(StatementQuery, Option<CalendarId>), ApiError> {
    let from = instant("from", params.from.as_deref())?.ok_or_else(|| bad("from", "is required"))?;
    let to = instant("to", params.to.as_deref())?.ok_or_else(|| bad("to", "is required"))?;
    let calendar = number::<i64>("calendar_id", params.calendar_id.as_deref())?.map(CalendarId);
    let cycle = number::<u32>("cycle_minutes", params.cycle_minutes.as_deref())?.unwrap_or(15);
    let demand = match params.demand.as_deref() {
        None | Some("" | "block") => {
            if params.step_minutes.as_deref().is_some_and(|step| !step.is_empty()) {
                return Err(bad("step_minutes", "applies to rolling demand only"));
            }
            DemandMethod::block(cycle)
        }
        Some("rolling") => {
            let step = number::<u32>("step_minutes", params.step_minutes.as_deref())?.unwrap_or(5);
            DemandMethod::rolling(cycle, step)
        }
        Some(other) => return Err(bad("demand", format!("{other:?} is neither block nor rolling"))),
    }
    .map_err(|error| bad(error.field, error.reason))?;
    Ok((StatementQuery { from, to, demand }, calendar))
}

/// Parses the query and computes the statement. A missing calendar is a
/// 422 naming `calendar_id`; other bad parameters are 400.
async fn load(
    state: &AppState,
    caller: &Caller,
    id: i64,
    params: &StatementParams,
) -> Result<DeviceStatement, ApiError> {
    caller.require(Right::Read)?;
    let (query, calendar) = parse_query(params)?;
    statements::device_statement(&state.pool, caller, DeviceId(id), query, calendar)
        .await
        .map_err(|error| match error {
            ServiceError::Invalid { ref field, .. } if field == "calendar_id" => ApiError::from(error),
            other => ApiError::from_query(other),
        })
}

/// A device's billing statement for a period: energy per tariff band and
/// quantity, maximum demand per band, the E43/E44 balance, and how much of
/// the data was measured, estimated or missing. The id may be a virtual
/// meter's: the statement of its signed sum, an interval some of its
/// devices lack counted missing (and incomplete), never summed in part.
#[utoipa::path(get, path = "/api/v1/devices/{id}/statement", tag = "statements",
    params(("id" = i64, Path, description = "Device or virtual meter id"), StatementParams),
    responses(
        (status = 200, description = "The statement; values are exact sums of the stored intervals, in kWh, kvarh, kVAh", body = StatementBody),
        (status = 400, description = "Invalid from, to, calendar_id, demand, cycle_minutes or step_minutes; from not before to; a period over 366 days", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such device, virtual meter or calendar", body = ErrorBody),
        (status = 422, description = "No calendar_id given and the device's (or virtual meter's) site has no default calendar", body = ErrorBody),
    ))]
pub(crate) async fn get_statement(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<StatementParams>,
) -> Result<Json<StatementBody>, ApiError> {
    Ok(Json(body(&load(&state, &caller, id, &params).await?)))
}

/// The same statement as CSV, a download: one line per band and quantity
/// (`section` `energy`), per band's maximum demand (`max_demand`, with its
/// time), the totals (`tariff` `total`) and the balance (`balance`).
#[utoipa::path(get, path = "/api/v1/devices/{id}/statement.csv", tag = "statements",
    params(("id" = i64, Path, description = "Device or virtual meter id"), StatementParams),
    responses(
        (status = 200, description = "CSV", content_type = "text/csv", body = String,
            example = json!("section,tariff,obis,value,unit,at\nenergy,F1,1-1:1.8.0,123.456,kWh,\nmax_demand,F1,1-1:1.6.0,42.5,kW,2026-03-10T08:15:00Z\nenergy,total,1-1:1.8.0,263.956,kWh,\n")),
        (status = 400, description = "As for the JSON statement", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "No calendar_id given and the device's (or virtual meter's) site has no default calendar", body = ErrorBody),
    ))]
pub(crate) async fn get_statement_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<StatementParams>,
) -> Result<Response, ApiError> {
    let answer = load(&state, &caller, id, &params).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"device-{id}-statement.csv\""),
            ),
        ],
        csv(&answer),
    )
        .into_response())
}

/// CSV text of a statement, values as exact decimals. No field can hold a
/// comma, quote or line break (band names are checked by the calendar, the
/// rest are codes, numbers, units and times), so none is quoted.
pub(crate) fn csv(answer: &DeviceStatement) -> String {
    let statement = &answer.statement;
    let mut text = String::from("section,tariff,obis,value,unit,at\n");
    let mut line = |section: &str, tariff: &str, obis: &str, value: &str, unit: &str, at: Option<DateTime<Utc>>| {
        let at = at
            .map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .unwrap_or_default();
        text.push_str(&format!("{section},{tariff},{obis},{value},{unit},{at}\n"));
    };
    let demand = |band: Option<&Peak>| statement.demand_quantity.as_ref().zip(band.copied());
    for band in &statement.energy.bands {
        for (quantity, milli) in statement.energy.by_band.get(band).into_iter().flatten() {
            let unit = quantity.family().energy_unit().to_string();
            line("energy", band, &quantity.to_string(), &decimal(*milli), &unit, None);
        }
        if let Some((quantity, peak)) = demand(statement.demand.by_band.get(band)) {
            let shown = max_demand(quantity, peak);
            line(
                "max_demand",
                band,
                &shown.obis,
                &shown.value.to_string(),
                &shown.unit,
                Some(shown.at),
            );
        }
    }
    for (quantity, milli) in &statement.energy.total {
        let unit = quantity.family().energy_unit().to_string();
        line("energy", "total", &quantity.to_string(), &decimal(*milli), &unit, None);
    }
    if let Some((quantity, peak)) = demand(statement.demand.total.as_ref()) {
        let shown = max_demand(quantity, peak);
        line(
            "max_demand",
            "total",
            &shown.obis,
            &shown.value.to_string(),
            &shown.unit,
            Some(shown.at),
        );
    }
    let tariffs = statement.balance.bands.join("+");
    if let Some(milli) = statement.balance.active {
        line("balance", &tariffs, "", &decimal(milli), "kWh", None);
    }
    if let Some(milli) = statement.balance.reactive {
        line("balance", &tariffs, "", &decimal(milli), "kvarh", None);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> StatementParams {
        let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned());
        StatementParams {
            from: get("from"),
            to: get("to"),
            calendar_id: get("calendar_id"),
            demand: get("demand"),
            cycle_minutes: get("cycle_minutes"),
            step_minutes: get("step_minutes"),
        }
    }

    #[test]
    fn the_query_string_is_percent_encoded() {
        let query = params(&[("from", "2026-03-01T00:00:00+01:00"), ("demand", "rolling")]).query_string();
        assert_eq!(query, "from=2026-03-01T00%3A00%3A00%2B01%3A00&demand=rolling");
    }

    #[test]
    fn bad_parameters_are_named() {
        let period = [("from", "2026-03-01T00:00:00Z"), ("to", "2026-04-01T00:00:00Z")];
        let error = |extra: &[(&str, &str)]| {
            let all: Vec<_> = period.iter().chain(extra).copied().collect();
            parse_query(&params(&all)).unwrap_err().message
        };
        assert!(error(&[("cycle_minutes", "20")]).starts_with("cycle_minutes:"));
        assert!(
            error(&[("demand", "rolling"), ("cycle_minutes", "60"), ("step_minutes", "1")])
                .starts_with("step_minutes:")
        );
        assert!(error(&[("demand", "peak")]).starts_with("demand:"));
        assert!(error(&[("calendar_id", "F1")]).starts_with("calendar_id:"));
        assert!(
            parse_query(&params(&period[..1]))
                .unwrap_err()
                .message
                .starts_with("to:")
        );
        let (query, calendar) = parse_query(&params(&period)).unwrap();
        assert_eq!((query.demand, calendar), (DemandMethod::default(), None));
    }
}
