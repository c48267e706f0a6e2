//! `/api/v1/devices/{id}/statement` (JSON) and `/statement.csv`: a
//! device's billing statement for a period under a tariff calendar.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::load_profile::{bad, instant};
use crate::domain::ids::{CalendarId, DeviceId};
use crate::domain::role::Right;
use crate::metering::statement::DemandMethod;
use crate::metering::statement::demand::Peak;
use crate::metering::statement::quantity::Quantity;
use crate::service::ServiceError;
use crate::service::statements::{self, DeviceStatement, StatementQuery};
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::state::AppState;

/// An energy of one quantity.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"obis": "1-1:1.8.0", "value": 123.456, "unit": "kWh"}))]
pub(crate) struct Energy {
    /// The quantity by its register code: `1.8.0` import, `2.8.0` export,
    /// `3.8.0`/`4.8.0` reactive import/export, `5.8.0`–`8.8.0` reactive
    /// Q1–Q4, `9.8.0` apparent (`10.8.0` apparent export).
    pub obis: String,
    pub value: f64,
    /// `kWh`, `kvarh` or `kVAh`.
    pub unit: String,
}

/// A maximum demand: the largest average power over a window, and the
/// window's end.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"obis": "1-1:1.6.0", "value": 42.5, "unit": "kW", "at": "2026-03-10T08:15:00Z"}))]
pub(crate) struct MaxDemand {
    /// The demand register code of the quantity (`1-1:1.6.0`: active import).
    pub obis: String,
    pub value: f64,
    pub unit: String,
    /// End of the window.
    pub at: DateTime<Utc>,
}

/// One tariff band of the calendar.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BandRow {
    /// The band's name in the calendar (`F1`, `T2`…).
    #[schema(example = "F1")]
    pub tariff: String,
    /// Every quantity the device records, 0 where the band had none.
    pub energy: Vec<Energy>,
    /// Active import maximum demand over windows wholly inside the band;
    /// null when none was.
    pub max_demand: Option<MaxDemand>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Total {
    pub energy: Vec<Energy>,
    /// Over every window, whatever its band.
    pub max_demand: Option<MaxDemand>,
}

/// How demand was computed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"method": "block", "cycle_minutes": 15, "step_minutes": 15}))]
pub(crate) struct DemandSetting {
    /// `block` or `rolling`.
    pub method: &'static str,
    pub cycle_minutes: u32,
    /// How far apart windows end (a block: its cycle).
    pub step_minutes: u32,
}

/// The COUNTIS E43/E44 energy balance (its manual §4.6.2): import minus
/// export over T1 and T2, here the calendar's first two bands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Balance {
    /// The bands taken as T1 and T2.
    pub bands: Vec<String>,
    /// kWh; null when the device records no active energy.
    pub active: Option<Amount>,
    /// kvarh; null when it records no reactive energy.
    pub reactive: Option<Amount>,
}

/// An amount with its unit.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"value": 183.456, "unit": "kWh"}))]
pub(crate) struct Amount {
    pub value: f64,
    pub unit: &'static str,
}

/// An interval a reader must see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FlaggedInterval {
    pub start: DateTime<Utc>,
    pub minutes: u32,
    /// Quality flags (`estimated`, `clock_uncertain`, `edited`…).
    pub flags: Vec<&'static str>,
    /// Sources of its channels: `meter`, `derived`, `estimated`, `edited`.
    pub sources: Vec<&'static str>,
}

/// The data behind the statement, counted in intervals (all channels of
/// one start count once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct QualityShare {
    /// Measured, derived from registers, or corrected.
    pub actual: u32,
    /// Estimated by the server for a gap.
    pub estimated: u32,
    /// Intervals of the device's length that no stored interval covers.
    pub missing: u32,
    /// Flagged `clock_uncertain` (also in `flagged`).
    pub clock_uncertain: u32,
    /// Every interval with a flag, estimated or edited, by start.
    pub flagged: Vec<FlaggedInterval>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "device_id": 7, "from": "2026-03-01T00:00:00+01:00", "to": "2026-04-01T00:00:00+02:00",
    "calendar_id": 1, "time_zone": "Europe/Rome",
    "demand": {"method": "block", "cycle_minutes": 15, "step_minutes": 15},
    "bands": [
        {"tariff": "F1", "energy": [{"obis": "1-1:1.8.0", "value": 123.456, "unit": "kWh"}],
         "max_demand": {"obis": "1-1:1.6.0", "value": 42.5, "unit": "kW", "at": "2026-03-10T08:15:00Z"}},
        {"tariff": "F2", "energy": [{"obis": "1-1:1.8.0", "value": 60.0, "unit": "kWh"}], "max_demand": null},
        {"tariff": "F3", "energy": [{"obis": "1-1:1.8.0", "value": 80.5, "unit": "kWh"}], "max_demand": null}],
    "total": {"energy": [{"obis": "1-1:1.8.0", "value": 263.956, "unit": "kWh"}],
              "max_demand": {"obis": "1-1:1.6.0", "value": 42.5, "unit": "kW", "at": "2026-03-10T08:15:00Z"}},
    "balance": {"bands": ["F1", "F2"], "active": {"value": 183.456, "unit": "kWh"}, "reactive": null},
    "quality": {"actual": 2970, "estimated": 2, "missing": 0, "clock_uncertain": 0,
                "flagged": [{"start": "2026-03-12T10:00:00Z", "minutes": 15, "flags": ["estimated"], "sources": ["estimated"]}]},
    "refused_channels": []}))]
pub(crate) struct StatementBody {
    pub device_id: i64,
    /// Start of the period (inclusive), as asked.
    pub from: DateTime<Utc>,
    /// End of the period (exclusive), as asked.
    pub to: DateTime<Utc>,
    pub calendar_id: i64,
    /// The calendar's IANA zone, in which its bands are defined.
    pub time_zone: String,
    pub demand: DemandSetting,
    /// Every band of the calendar, in its order.
    pub bands: Vec<BandRow>,
    pub total: Total,
    pub balance: Balance,
    pub quality: QualityShare,
    /// Channels left out: a unit that does not fit the quantity, or a value
    /// that is not a number.
    pub refused_channels: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatementParams {
    /// Start of the period (inclusive), RFC 3339. Required.
    from: Option<String>,
    /// End of the period (exclusive), RFC 3339, at most 366 days after `from`. Required.
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

/// Milli-units as an exact decimal text (`123456` → `0.123456`,
/// `-1500000` → `-1.5`).
pub(crate) fn decimal(milli: i128) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let whole = milli.unsigned_abs() / 1_000_000;
    let fraction = milli.unsigned_abs() % 1_000_000;
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        let digits = format!("{fraction:06}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

fn value(milli: i128) -> f64 {
    decimal(milli).parse().unwrap_or(f64::NAN)
}

fn energy(quantity: &Quantity, milli: i128) -> Energy {
    Energy {
        obis: quantity.to_string(),
        value: value(milli),
        unit: quantity.family().energy_unit().to_string(),
    }
}

fn max_demand(quantity: &Quantity, peak: Peak) -> MaxDemand {
    MaxDemand {
        obis: quantity.to_string().replacen(".8.0", ".6.0", 1),
        value: peak.power(),
        unit: quantity.family().power_unit().to_string(),
        at: peak.at,
    }
}

/// The answer's body.
pub(crate) fn body(answer: &DeviceStatement) -> StatementBody {
    let statement = &answer.statement;
    let energy_of = |energies: &std::collections::BTreeMap<Quantity, i128>| -> Vec<Energy> {
        energies
            .iter()
            .map(|(quantity, milli)| energy(quantity, *milli))
            .collect()
    };
    let demand_of = |peak: Option<Peak>| {
        statement
            .demand_quantity
            .as_ref()
            .zip(peak)
            .map(|(quantity, peak)| max_demand(quantity, peak))
    };
    let bands = statement
        .energy
        .bands
        .iter()
        .map(|band| BandRow {
            tariff: band.clone(),
            energy: statement.energy.by_band.get(band).map(energy_of).unwrap_or_default(),
            max_demand: demand_of(statement.demand.by_band.get(band).copied()),
        })
        .collect();
    let balance = &statement.balance;
    StatementBody {
        device_id: answer.device.0,
        from: answer.from,
        to: answer.to,
        calendar_id: answer.calendar.id.0,
        time_zone: answer.calendar.time_zone.clone(),
        demand: DemandSetting {
            method: answer.demand.name(),
            cycle_minutes: answer.demand.cycle_minutes(),
            step_minutes: answer.demand.step_minutes(),
        },
        bands,
        total: Total {
            energy: energy_of(&statement.energy.total),
            max_demand: demand_of(statement.demand.total),
        },
        balance: Balance {
            bands: balance.bands.clone(),
            active: balance.active.map(|milli| Amount {
                value: value(milli),
                unit: "kWh",
            }),
            reactive: balance.reactive.map(|milli| Amount {
                value: value(milli),
                unit: "kvarh",
            }),
        },
        quality: QualityShare {
            actual: statement.quality.actual,
            estimated: statement.quality.estimated,
            missing: statement.quality.missing,
            clock_uncertain: statement.quality.clock_uncertain,
            flagged: statement
                .quality
                .flagged
                .iter()
                .map(|flagged| FlaggedInterval {
                    start: flagged.start,
                    minutes: flagged.minutes,
                    flags: flagged.flags.clone(),
                    sources: flagged.sources.iter().map(|s| s.as_str()).collect(),
                })
                .collect(),
        },
        refused_channels: statement.refused_channels.iter().map(ToString::to_string).collect(),
    }
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
/// the data was measured, estimated or missing.
#[utoipa::path(get, path = "/api/v1/devices/{id}/statement", tag = "statements",
    params(("id" = i64, Path, description = "Device id"), StatementParams),
    responses(
        (status = 200, description = "The statement; values are exact sums of the stored intervals, in kWh, kvarh, kVAh", body = StatementBody),
        (status = 400, description = "Invalid from, to, calendar_id, demand, cycle_minutes or step_minutes; from not before to; a period over 366 days", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such device or calendar", body = ErrorBody),
        (status = 422, description = "No calendar_id given and the device's site has no default calendar", body = ErrorBody),
    ))]
pub(crate) async fn get_statement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(params): Query<StatementParams>,
) -> Result<Json<StatementBody>, ApiError> {
    Ok(Json(body(&load(&state, &caller, id, &params).await?)))
}

/// The same statement as CSV, a download: one line per band and quantity
/// (`section` `energy`), per band's maximum demand (`max_demand`, with its
/// time), the totals (`tariff` `total`) and the balance (`balance`).
#[utoipa::path(get, path = "/api/v1/devices/{id}/statement.csv", tag = "statements",
    params(("id" = i64, Path, description = "Device id"), StatementParams),
    responses(
        (status = 200, description = "CSV", content_type = "text/csv", body = String,
            example = json!("section,tariff,obis,value,unit,at\nenergy,F1,1-1:1.8.0,123.456,kWh,\nmax_demand,F1,1-1:1.6.0,42.5,kW,2026-03-10T08:15:00Z\nenergy,total,1-1:1.8.0,263.956,kWh,\n")),
        (status = 400, description = "As for the JSON statement", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "No calendar_id given and the device's site has no default calendar", body = ErrorBody),
    ))]
pub(crate) async fn get_statement_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(params): Query<StatementParams>,
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

    #[test]
    fn milli_units_print_as_exact_decimals() {
        assert_eq!(decimal(0), "0");
        assert_eq!(decimal(123_456_000), "123.456");
        assert_eq!(decimal(1), "0.000001");
        assert_eq!(decimal(-1_500_000), "-1.5");
        assert_eq!(decimal(7_000_000), "7");
    }

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
