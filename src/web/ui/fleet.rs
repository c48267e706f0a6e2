//! The fleet page: every device, its bus, state, last read and key values.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;

use super::pages::{Cell, FleetPage, FleetRow};
use super::signed_in_page;
use crate::domain::obis::ObisCode;
use crate::domain::state::DeviceState;
use crate::service::devices::list_devices;
use crate::service::readings::latest_of_codes;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// The values shown for every device: total import energy, total active
/// power (import minus export), L1 voltage.
const KEY_CODES: [&str; 4] = ["1-1:1.8.0", "1-1:1.7.0", "1-1:2.7.0", "1-1:32.7.0"];

pub(crate) fn cell(value: Option<(f64, &str)>, decimals: usize) -> Cell {
    match value {
        Some((value, unit)) => Cell {
            text: format!("{value:.decimals$} {unit}").trim_end().to_owned(),
            title: format!("{value}"),
            note: String::new(),
        },
        None => Cell::empty(),
    }
}

pub(crate) fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "never".to_owned())
}

pub(crate) async fn get_fleet_page(State(state): State<AppState>, caller: Result<Caller, ApiError>) -> Response {
    signed_in_page(caller, "/", |caller| build(&state, caller)).await
}

async fn build(state: &AppState, caller: Caller) -> Result<FleetPage, ApiError> {
    let devices = list_devices(&state.pool, &caller).await?;
    let codes: Vec<ObisCode> = KEY_CODES
        .iter()
        .map(|code| code.parse().expect("the fleet page's codes are OBIS codes"))
        .collect();
    let latest: Vec<_> = latest_of_codes(&state.pool, &caller, &codes)
        .await?
        .into_iter()
        .map(|(device, code, value, unit)| (device, code.to_string(), value, unit))
        .collect();
    let mut values: HashMap<(i64, &str), (f64, &str)> = HashMap::new();
    for (device, code, value, unit) in &latest {
        values.insert((device.0, code.as_str()), (*value, unit.as_str()));
    }
    let count = |wanted: DeviceState| devices.iter().filter(|d| d.state == wanted).count();
    let rows = devices
        .iter()
        .map(|device| {
            let id = device.id.0;
            let power = match (values.get(&(id, "1-1:1.7.0")), values.get(&(id, "1-1:2.7.0"))) {
                (Some(&(import, unit)), Some(&(export, _))) => Some((import - export, unit)),
                (Some(&value), None) => Some(value),
                _ => None,
            };
            FleetRow {
                id,
                name: device.name.clone(),
                bus: device.bus_name.clone(),
                bus_id: device.bus_id.0,
                profile: device.profile.clone(),
                address: device.address_text(),
                state: device.state.as_str(),
                last_read: when(device.last_success_at),
                energy: cell(values.get(&(id, "1-1:1.8.0")).copied(), 2),
                power: cell(power, 3),
                voltage: cell(values.get(&(id, "1-1:32.7.0")).copied(), 1),
            }
        })
        .collect();
    Ok(FleetPage {
        user: caller.user,
        rows,
        online: count(DeviceState::Online),
        unreachable: count(DeviceState::Unreachable),
        unknown: count(DeviceState::Unknown),
        disabled: count(DeviceState::Disabled),
    })
}
