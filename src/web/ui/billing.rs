//! The billing page of a device: every closed billing period with all its
//! registers, as billing reads them (reset time, who closed it, flags).

use axum::extract::State;
use axum::response::Response;

use super::fleet::when;
use super::signed_in_page;
use crate::device::profile::Profile;
use crate::domain::ids::DeviceId;
use crate::metering::billing::{captured_outside, period_starts, replaced_within};
use crate::service::billing::billing_periods;
use crate::service::devices::get_device;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

#[derive(askama::Template)]
#[template(path = "billing.html")]
pub(crate) struct BillingPage {
    pub user: String,
    pub id: i64,
    pub name: String,
    pub periods: Vec<PeriodView>,
}

pub(crate) struct PeriodView {
    pub reset_at: String,
    /// When the period began; empty for the oldest stored of its source.
    pub start: String,
    pub source: &'static str,
    pub reset_count: String,
    pub flags: String,
    /// When the meter was replaced within the period; empty if it was not.
    pub replaced_at: String,
    pub registers: Vec<RegisterView>,
}

pub(crate) struct RegisterView {
    pub obis: String,
    pub name: String,
    pub value: String,
    pub unit: String,
    /// When a maximum demand occurred.
    pub captured_at: String,
    /// Its time falls outside the period.
    pub outside: bool,
}

pub(crate) async fn get_billing_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
) -> Response {
    signed_in_page(caller, &format!("/devices/{id}/billing"), |caller| {
        build(&state, caller, DeviceId(id))
    })
    .await
}

async fn build(state: &AppState, caller: Caller, id: DeviceId) -> Result<BillingPage, ApiError> {
    let device = get_device(&state.pool, &caller, id).await?;
    let profile = state.profiles.get(&device.profile);
    let history = billing_periods(&state.pool, &caller, id).await?;
    let starts = period_starts(&history.periods);
    let periods = history
        .periods
        .into_iter()
        .zip(starts)
        .map(|(period, start)| PeriodView {
            reset_at: when(Some(period.reset_at)),
            start: start.map(|at| when(Some(at))).unwrap_or_default(),
            source: period.source.as_str(),
            reset_count: period.reset_count.map(|n| n.to_string()).unwrap_or_default(),
            flags: period.quality.names().join(", "),
            replaced_at: replaced_within(history.replaced_at, start, period.reset_at)
                .map(|at| when(Some(at)))
                .unwrap_or_default(),
            registers: period
                .registers
                .iter()
                .map(|register| RegisterView {
                    name: profile
                        .as_deref()
                        .map(|p| register_name(p, &register.obis.to_string()))
                        .unwrap_or_default(),
                    obis: register.obis.to_string(),
                    value: format!("{:.3}", register.value),
                    unit: register.unit.to_string(),
                    captured_at: register.captured_at.map(|at| when(Some(at))).unwrap_or_default(),
                    outside: captured_outside(register, start, period.reset_at) == Some(true),
                })
                .collect(),
        })
        .collect();
    Ok(BillingPage {
        user: caller.user,
        id: id.0,
        name: device.name,
        periods,
    })
}

/// The profile's name for a register's current code, from its Modbus map
/// or its IEC values.
fn register_name(profile: &Profile, code: &str) -> String {
    let from_map = profile
        .registers
        .iter()
        .find(|r| r.obis.to_string() == code)
        .map(|r| r.name.clone());
    let from_iec = || {
        profile
            .iec62056
            .as_ref()?
            .values
            .iter()
            .find(|value| value.obis.to_string() == code)
            .map(|value| value.name.clone())
    };
    from_map.or_else(from_iec).unwrap_or_default()
}
