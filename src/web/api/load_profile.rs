//! `/api/v1/devices/{id}/load-profile` (JSON) and `/load-profile.csv`: a
//! device's stored intervals, the newest version of each, over a window.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::ids::DeviceId;
use crate::domain::obis::ObisCode;
use crate::domain::role::Right;
use crate::service::load_profile;
use crate::store::load_profile::ProfileInterval;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// One interval of one channel.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LoadProfileInterval {
    /// Start of the interval (its end is `start` + `interval_minutes`).
    pub start: DateTime<Utc>,
    #[schema(example = "1-1:1.29.0")]
    pub obis: String,
    #[schema(example = 1.25)]
    pub value: f64,
    #[schema(example = "kWh")]
    pub unit: String,
    /// Quality flags: `estimated`, `interpolated`, `gap`, `spike`,
    /// `negative_delta`, `rollover`, `clock_uncertain`, `edited`,
    /// `future_timestamp` (stamped more than 15 minutes ahead of the
    /// server's clock when stored).
    pub flags: Vec<&'static str>,
    /// `meter` (read from the meter), `derived` (from register deltas),
    /// `estimated` or `edited`.
    pub source: String,
    /// 1 as first stored; each correction adds a version, the newest is shown.
    pub version: i32,
    /// The meter's own status of the interval as it sent it, when it sent
    /// one: for a COUNTIS load curve `full` or `incomplete` (a period the
    /// meter did not record whole; reference: Socomec COUNTIS Modbus table
    /// V200.53, load curve). Left out when there is none.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(example = "full")]
    pub meter_status: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"interval_minutes": 15, "intervals": [
    {"start": "2026-11-22T08:00:00Z", "obis": "1-1:1.29.0", "value": 1.25, "unit": "kWh",
     "flags": [], "source": "meter", "version": 1}]}))]
pub(crate) struct LoadProfile {
    /// Length of the intervals: the first interval's, or the device's
    /// configured length when there are none.
    pub interval_minutes: i32,
    /// Ascending by start, then OBIS code.
    pub intervals: Vec<LoadProfileInterval>,
    /// Only for a virtual meter, and only when some are: intervals that some
    /// of its devices lack, left out of `intervals` rather than summed short.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<IncompleteInterval>,
}

/// An interval of a virtual meter that some of its devices lack.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"start": "2026-11-22T08:15:00Z", "obis": "1-1:1.29.0", "missing_device_ids": [4],
    "pending_device_ids": []}))]
pub(crate) struct IncompleteInterval {
    pub start: DateTime<Utc>,
    pub obis: String,
    /// The devices without this interval (or with another length or unit).
    /// A device whose running first backfill has not reached it yet is in
    /// `pending_device_ids` instead.
    pub missing_device_ids: Vec<i64>,
    /// The devices without this interval because the first backfill of
    /// their meter's load profile (newest first) has not reached it yet,
    /// or found no record there while it runs: pending, not missing.
    #[schema(example = json!([]))]
    pub pending_device_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LoadProfileQuery {
    /// Start (inclusive), RFC 3339; default 24 h before `to`.
    from: Option<String>,
    /// End (exclusive), RFC 3339; default now.
    to: Option<String>,
    /// Only this channel, e.g. `1-1:1.29.0`.
    obis: Option<String>,
}

/// A bad query parameter (400), named.
pub(super) fn bad(field: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::parameter(field, reason)
}

pub(super) fn instant(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|at| Some(at.with_timezone(&Utc)))
            .map_err(|_| {
                bad(
                    field,
                    format!("{text:?} is not an RFC 3339 time such as 2026-11-22T08:00:00Z"),
                )
            }),
    }
}

/// Parses the query and fetches what it asks for.
async fn load(state: &AppState, caller: &Caller, id: i64, query: &LoadProfileQuery) -> Result<LoadProfile, ApiError> {
    caller.require(Right::Read)?;
    let to = instant("to", query.to.as_deref())?;
    let from = instant("from", query.from.as_deref())?;
    let obis = match query.obis.as_deref() {
        None | Some("") => None,
        Some(text) => Some(text.parse::<ObisCode>().map_err(|error| bad("obis", error))?),
    };
    let profile = load_profile::load_profile(
        &state.pool,
        caller,
        DeviceId(id),
        (from, to),
        obis.as_ref(),
        state.clock.now(),
    )
    .await
    .map_err(ApiError::from_query)?;
    Ok(LoadProfile {
        interval_minutes: profile.interval_minutes,
        intervals: profile.intervals.into_iter().map(interval).collect(),
        incomplete: profile
            .incomplete
            .into_iter()
            .map(|gap| IncompleteInterval {
                start: gap.start,
                obis: gap.obis.to_string(),
                missing_device_ids: gap.missing.iter().map(|device| device.0).collect(),
                pending_device_ids: gap.pending.iter().map(|device| device.0).collect(),
            })
            .collect(),
    })
}

pub(super) fn interval(row: ProfileInterval) -> LoadProfileInterval {
    LoadProfileInterval {
        start: row.interval_start,
        obis: row.obis.to_string(),
        value: row.value,
        unit: row.unit.to_string(),
        flags: row.quality.names(),
        source: row.source.to_string(),
        version: row.version,
        meter_status: row.meter_status,
    }
}

/// A device's load profile: the newest version of each stored interval. The
/// id may be a virtual meter's: its intervals are then the signed sums of
/// its devices' intervals where every device has one (docs/SITES.md).
#[utoipa::path(get, path = "/api/v1/devices/{id}/load-profile", tag = "readings",
    params(("id" = i64, Path, description = "Device or virtual meter id"), LoadProfileQuery),
    responses(
        (status = 200, description = "The newest version of each interval, by start then OBIS code", body = LoadProfile),
        (status = 400, description = "Invalid from, to or obis, from not before to, or a window over 366 days", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn get_load_profile(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<LoadProfileQuery>,
) -> Result<Json<LoadProfile>, ApiError> {
    Ok(Json(load(&state, &caller, id, &query).await?))
}

/// The same load profile as CSV
/// (`start,obis,value,unit,flags,source,version,meter_status`, flags
/// joined with `|`), as a download.
#[utoipa::path(get, path = "/api/v1/devices/{id}/load-profile.csv", tag = "readings",
    params(("id" = i64, Path, description = "Device or virtual meter id"), LoadProfileQuery),
    responses(
        (status = 200, description = "CSV, one line per interval", content_type = "text/csv",
            body = String, example = json!("start,obis,value,unit,flags,source,version,meter_status\n2026-11-22T08:00:00Z,1-1:1.29.0,1.25,kWh,,meter,1,00\n")),
        (status = 400, description = "Invalid from, to or obis, from not before to, or a window over 366 days", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn get_load_profile_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<LoadProfileQuery>,
) -> Result<Response, ApiError> {
    let profile = load(&state, &caller, id, &query).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"device-{id}-load-profile.csv\""),
            ),
        ],
        csv(&profile.intervals),
    )
        .into_response())
}

/// CSV text of intervals. Times, OBIS codes, numbers, units and snake_case
/// names hold no comma, quote or line break; the meter's status is as the
/// meter sent it, so it is quoted when it holds one (RFC 4180).
fn csv(intervals: &[LoadProfileInterval]) -> String {
    let mut text = String::from("start,obis,value,unit,flags,source,version,meter_status\n");
    for interval in intervals {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            interval.start.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            interval.obis,
            interval.value,
            interval.unit,
            interval.flags.join("|"),
            interval.source,
            interval.version,
            csv_field(&interval.meter_status),
        ));
    }
    text
}

/// A field quoted when it must be, its quotes doubled.
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_meter_status_holding_a_comma_or_quote_is_quoted() {
        let interval = |status: &str| LoadProfileInterval {
            start: Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap(),
            obis: "1-1:1.5.0".into(),
            value: 0.5,
            unit: "kW".into(),
            flags: vec![],
            source: "meter".into(),
            version: 1,
            meter_status: status.into(),
        };
        let text = csv(&[interval("full"), interval("8,1"), interval("say \"x\"")]);
        assert_eq!(
            text,
            "start,obis,value,unit,flags,source,version,meter_status\n\
             2026-11-22T08:00:00Z,1-1:1.5.0,0.5,kW,,meter,1,full\n\
             2026-11-22T08:00:00Z,1-1:1.5.0,0.5,kW,,meter,1,\"8,1\"\n\
             2026-11-22T08:00:00Z,1-1:1.5.0,0.5,kW,,meter,1,\"say \"\"x\"\"\"\n"
        );
    }
}
