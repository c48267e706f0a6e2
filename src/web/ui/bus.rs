//! The bus page: its transport, its devices and the traffic on the line.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};

use super::fleet::when;
use super::pages::{BusPage, TrafficRow};
use super::signed_in;
use crate::domain::ids::BusId;
use crate::poll::link_stats::Counters;
use crate::store::buses::fetch_bus;
use crate::store::devices::fetch_devices_on_bus;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
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

pub async fn get_bus_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<i64>,
) -> Response {
    let caller = match signed_in(caller, &format!("/buses/{id}")) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    match build(&state, caller, BusId(id)).await {
        Ok(page) => match askama::Template::render(&page) {
            Ok(html) => Html(html).into_response(),
            Err(error) => ApiError::internal(error).into_page(),
        },
        Err(error) => error.into_page(),
    }
}

async fn build(state: &AppState, caller: Caller, id: BusId) -> Result<BusPage, ApiError> {
    let bus = fetch_bus(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no bus {id}")))?;
    let devices = fetch_devices_on_bus(&state.pool, id).await?;
    let counters = state.stats.links.bus(id);
    let mut rows = vec![traffic("Whole bus".to_owned(), None, counters.as_ref().map(|c| &c.bus))];
    for device in &devices {
        let device_counters = counters.as_ref().and_then(|c| c.devices.get(&device.id));
        rows.push(traffic(
            format!("{} (address {})", device.name, device.address),
            Some(device.id.0),
            device_counters,
        ));
    }
    let utilisation = counters
        .as_ref()
        .map(|c| format!("{:.1} %", 100.0 * c.utilisation(tokio::time::Instant::now())))
        .unwrap_or_else(|| "not polled by this server".to_owned());
    Ok(BusPage {
        user: caller.user,
        name: bus.name,
        transport: bus.transport.0.describe(),
        time_zone: bus.time_zone,
        created: when(Some(bus.created_at)),
        utilisation,
        rows,
    })
}
