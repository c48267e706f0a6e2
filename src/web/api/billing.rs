//! `/api/v1/devices/{id}/billing-periods`: the billing periods stored for a
//! device, each with its registers as they stood at the reset.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ids::DeviceId;
use crate::metering::billing::{BillingPeriod, captured_outside, period_starts, replaced_within};
use crate::service::billing;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// One register of a closed period, under its current OBIS code.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"obis": "1-1:1.6.0", "value": 12.5, "unit": "kW",
    "captured_at": "2026-10-14T09:15:00Z", "captured_outside_period": false}))]
pub(crate) struct PeriodRegister {
    /// `1-1:1.8.0`, not the history code `1-1:1.8.0*101` it was read as.
    pub obis: String,
    pub value: f64,
    pub unit: String,
    /// When the value occurred, for a maximum demand; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<DateTime<Utc>>,
    /// With `captured_at`: true when that time falls outside the period
    /// (`start`, `end`], so the meter's clock or history is not to be
    /// trusted for this value; absent without `captured_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = false)]
    pub captured_outside_period: Option<bool>,
}

/// A closed billing period.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"reset_at": "2026-11-01T00:00:00Z", "start": "2026-10-01T00:00:00Z",
    "end": "2026-11-01T00:00:00Z", "source": "meter", "reset_count": 17,
    "registers": [{"obis": "1-1:1.8.0", "value": 11000.0, "unit": "kWh"}], "flags": []}))]
pub(crate) struct Period {
    /// When the period was closed.
    pub reset_at: DateTime<Utc>,
    /// When it began: the reset before it from the same source; null for
    /// the oldest period stored of its source.
    pub start: Option<DateTime<Utc>>,
    /// When it ended: its `reset_at`.
    pub end: DateTime<Utc>,
    /// `meter`: the meter's own history; `server`: the site's billing schedule.
    pub source: String,
    /// The meter's count of resets after this one, where it keeps one.
    pub reset_count: Option<i32>,
    pub registers: Vec<PeriodRegister>,
    /// Quality flags (`estimated`, `edited`…); empty when good.
    pub flags: Vec<String>,
    /// When the meter was replaced within (`start`, `end`] (a confirmed
    /// replacement, API "Meter identity"): this period's registers are the
    /// new meter's, the period before's the old one's, so the difference
    /// between them is not an energy. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-10-20T09:00:00Z")]
    pub meter_replaced_at: Option<DateTime<Utc>>,
}

impl Period {
    /// `period`, which began at `start` (see [`period_starts`]), of a
    /// device whose meter was replaced at `replaced`, if it was.
    fn new(period: BillingPeriod, start: Option<DateTime<Utc>>, replaced: Option<DateTime<Utc>>) -> Period {
        let end = period.reset_at;
        Period {
            reset_at: period.reset_at,
            start,
            end,
            source: period.source.as_str().into(),
            reset_count: period.reset_count,
            registers: period
                .registers
                .iter()
                .map(|r| PeriodRegister {
                    obis: r.obis.to_string(),
                    value: r.value,
                    unit: r.unit.to_string(),
                    captured_at: r.captured_at,
                    captured_outside_period: captured_outside(r, start, end),
                })
                .collect(),
            flags: period.quality.names().into_iter().map(String::from).collect(),
            meter_replaced_at: replaced_within(replaced, start, end),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PeriodList {
    /// Newest first.
    pub periods: Vec<Period>,
}

/// A device's billing periods, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/billing-periods", tag = "billing",
    description = "The billing periods stored for a device, newest first: those the meter closed \
                   itself (its history sets, e.g. an A1000's `*101`…`*116` with their reset times) \
                   and, where a site schedule applies, those the server closed. Viewer role.",
    params(("id" = i64, Path, description = "Device id")),
    responses(
        (status = 200, description = "The device's periods", body = PeriodList),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)))]
pub(crate) async fn list_billing_periods(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<PeriodList>, ApiError> {
    let history = billing::billing_periods(&state.pool, &caller, DeviceId(id)).await?;
    let starts = period_starts(&history.periods);
    Ok(Json(PeriodList {
        periods: history
            .periods
            .into_iter()
            .zip(starts)
            .map(|(p, start)| Period::new(p, start, history.replaced_at))
            .collect(),
    }))
}
