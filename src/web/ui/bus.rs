//! The bus page: its transport, its devices and the traffic on the line.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::fleet::when;
use super::pages::{BusPage, FoundView, ScanView, TrafficRow};
use super::{signed_in, signed_in_page};
use crate::domain::ids::BusId;
use crate::poll::link_stats::Counters;
use crate::service::buses::get_bus;
use crate::service::device_request::{NewDevice, Periods};
use crate::service::devices::{add_device, list_devices_on_bus};
use crate::service::jobs::{ScanRequest, latest_scan, start_scan};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

fn milliseconds(latency: Option<std::time::Duration>) -> String {
    latency
        .map(|l| format!("{:.1} ms", l.as_secs_f64() * 1_000.0))
        .unwrap_or_else(|| "–".to_owned())
}

fn traffic(label: String, link: Option<i64>, counters: Option<&Counters>) -> TrafficRow {
    let empty = Counters::default();
    let counters = counters.unwrap_or(&empty);
    TrafficRow {
        label,
        link,
        requests: counters.requests,
        timeouts: counters.timeouts,
        crc_errors: counters.crc_errors,
        exceptions: counters.exceptions,
        transport_errors: counters.transport_errors,
        mean: milliseconds(counters.mean_latency()),
        p95: milliseconds(counters.p95_latency()),
    }
}

pub(crate) async fn get_bus_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
) -> Response {
    signed_in_page(caller, &format!("/buses/{id}"), |caller| {
        build(&state, caller, BusId(id))
    })
    .await
}

async fn build(state: &AppState, caller: Caller, id: BusId) -> Result<BusPage, ApiError> {
    let bus = get_bus(&state.pool, &caller, id).await?;
    let devices = list_devices_on_bus(&state.pool, &caller, id).await?;
    let counters = state.stats.links.bus(id);
    let mut rows = vec![traffic("Whole bus".to_owned(), None, counters.as_ref().map(|c| &c.bus))];
    for device in &devices {
        let device_counters = counters.as_ref().and_then(|c| c.devices.get(&device.id));
        rows.push(traffic(
            format!("{} (address {})", device.name, device.address_text()),
            Some(device.id.0),
            device_counters,
        ));
    }
    let utilisation = counters
        .as_ref()
        .map(|c| format!("{:.1} %", 100.0 * c.utilisation(tokio::time::Instant::now())))
        .unwrap_or_else(|| "not polled by this server".to_owned());
    let scan = latest_scan(&state.pool, &caller, id).await?.map(|scan| ScanView {
        state: scan.state.as_str().to_owned(),
        probed: scan.probed,
        total: i32::from(scan.last_address) - i32::from(scan.first_address) + 1,
        first: scan.first_address,
        last: scan.last_address,
        error: scan.error.unwrap_or_default(),
        found: scan
            .found
            .0
            .into_iter()
            .map(|found| FoundView {
                configured: devices
                    .iter()
                    .find(|d| d.address == Some(i16::from(found.address)))
                    .map(|d| d.name.clone())
                    .unwrap_or_default(),
                address: found.address,
                profiles: found.profiles,
            })
            .collect(),
    });
    Ok(BusPage {
        user: caller.user,
        id: id.0,
        scan,
        name: bus.name,
        transport: bus.transport.0.describe(),
        time_zone: bus.time_zone.to_string(),
        created: when(Some(bus.created_at)),
        utilisation,
        rows,
    })
}

/// The scan form of the bus page.
pub(crate) async fn post_bus_scan(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    Form(form): Form<ScanForm>,
) -> Response {
    let here = format!("/buses/{id}");
    let caller = match signed_in(caller, &here) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let scan = ScanRequest {
        first_address: Some(form.first_address),
        last_address: Some(form.last_address),
    };
    match start_scan(&state.pool, &caller, None, BusId(id), scan).await {
        Ok(_) => Redirect::to(&here).into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}

#[derive(Deserialize)]
pub(crate) struct ScanForm {
    first_address: i64,
    last_address: i64,
}

/// The "Add" button next to a found device.
pub(crate) async fn post_bus_device(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    Form(form): Form<AddDeviceForm>,
) -> Response {
    let caller = match signed_in(caller, &format!("/buses/{id}")) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let device = NewDevice {
        name: form.name,
        bus_id: BusId(id),
        profile: form.profile,
        address: Some(form.address),
        iec_address: None,
        schedule: Periods::default(),
    };
    match add_device(&state.pool, &state.profiles, &caller, &device).await {
        Ok(row) => Redirect::to(&format!("/devices/{}", row.id)).into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}

#[derive(Deserialize)]
pub(crate) struct AddDeviceForm {
    name: String,
    profile: String,
    address: i64,
}
