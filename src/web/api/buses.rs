//! `/api/v1/buses`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::{BusId, SiteId};
use crate::domain::role::Right;
use crate::domain::transport::Transport;
use crate::poll::link_stats::{BusCounters, Counters};
use crate::poll::stats::PollStats;
use crate::service::buses;
use crate::store::buses::BusRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::ApiJson;
use crate::web::path::ApiPath;
use crate::web::state::AppState;

/// A bus to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "line-1", "transport": {"kind": "modbus_tcp", "host": "127.0.0.1", "port": 5020}}))]
pub(crate) struct NewBus {
    /// Unique name, e.g. the cable or gateway it stands for.
    #[schema(min_length = 1)]
    pub name: String,
    /// How to reach it. `kind` is `modbus_tcp` or `rtu_over_tcp` (with `host`, `port`) or
    /// `serial_rtu` (with `path`, `baud` 1200–115200, `parity` none|even|odd, `stop_bits` 1|2)
    /// for Modbus; for IEC 62056-21, `iec62056_serial` (with `path`, optional `initial_baud`
    /// (300) and `max_baud` (9600), 300–19200; 7E1), `optical` (a probe reaching one meter:
    /// `path`, optional `max_baud` and `settle_ms` (300), the wait after a baud switch) or
    /// `iec62056_tcp` (with `host`, `port`).
    pub transport: Transport,
    /// Site the bus belongs to; the default site when absent.
    #[schema(value_type = Option<i64>)]
    pub site_id: Option<SiteId>,
}

/// A bus.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "name": "line-1", "site_id": 1, "transport": {"kind": "modbus_tcp", "host": "127.0.0.1", "port": 5020}, "enabled": true, "created_at": "2026-11-22T08:00:00Z"}))]
pub(crate) struct Bus {
    #[schema(value_type = i64)]
    pub id: BusId,
    pub name: String,
    #[schema(value_type = i64)]
    pub site_id: SiteId,
    pub transport: Transport,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    /// Traffic since this server's worker for the bus started; null when
    /// no worker of this server polls it (yet).
    pub statistics: Option<BusStatistics>,
}

/// Traffic counters of a bus or of one device on it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkStatistics {
    pub requests: u64,
    pub timeouts: u64,
    pub crc_errors: u64,
    pub exceptions: u64,
    pub transport_errors: u64,
    /// Mean latency of the last 500 answers, milliseconds.
    pub latency_mean_ms: Option<f64>,
    /// 95th percentile latency of the last 500 answers, milliseconds.
    pub latency_p95_ms: Option<f64>,
}

impl From<&Counters> for LinkStatistics {
    fn from(counters: &Counters) -> LinkStatistics {
        let ms = |latency: Option<std::time::Duration>| latency.map(|l| l.as_secs_f64() * 1_000.0);
        LinkStatistics {
            requests: counters.requests,
            timeouts: counters.timeouts,
            crc_errors: counters.crc_errors,
            exceptions: counters.exceptions,
            transport_errors: counters.transport_errors,
            latency_mean_ms: ms(counters.mean_latency()),
            latency_p95_ms: ms(counters.p95_latency()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceStatistics {
    pub device_id: i64,
    #[serde(flatten)]
    pub traffic: LinkStatistics,
    /// 95th percentile of how late its recent reads started against the schedule, milliseconds.
    pub read_lateness_p95_ms: Option<f64>,
    /// The latest start of a read since polling began, as a share of that
    /// read's period (1.0 = a whole period late).
    pub read_lateness_max_periods: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"requests": 1200, "timeouts": 3, "crc_errors": 0, "exceptions": 0, "transport_errors": 0,
    "latency_mean_ms": 41.2, "latency_p95_ms": 63.0, "utilisation": 0.18,
    "devices": [{"device_id": 1, "requests": 600, "timeouts": 0, "crc_errors": 0, "exceptions": 0, "transport_errors": 0, "latency_mean_ms": 40.1, "latency_p95_ms": 60.2,
                 "read_lateness_p95_ms": 35.0, "read_lateness_max_periods": 0.05}]}))]
pub(crate) struct BusStatistics {
    #[serde(flatten)]
    pub traffic: LinkStatistics,
    /// Share of the time the line carried requests and answers, 0–1.
    pub utilisation: f64,
    pub devices: Vec<DeviceStatistics>,
}

impl From<&BusCounters> for BusStatistics {
    fn from(counters: &BusCounters) -> BusStatistics {
        let mut devices: Vec<DeviceStatistics> = counters
            .devices
            .iter()
            .map(|(id, c)| DeviceStatistics {
                device_id: id.0,
                traffic: c.into(),
                read_lateness_p95_ms: c.p95_lateness().map(|l| l.as_secs_f64() * 1_000.0),
                read_lateness_max_periods: c.max_lateness_periods,
            })
            .collect();
        devices.sort_by_key(|d| d.device_id);
        BusStatistics {
            traffic: (&counters.bus).into(),
            utilisation: counters.utilisation(tokio::time::Instant::now()),
            devices,
        }
    }
}

impl Bus {
    fn new(row: BusRow, stats: &PollStats) -> Bus {
        Bus {
            statistics: stats.links.bus(row.id).as_ref().map(BusStatistics::from),
            id: row.id,
            name: row.name,
            site_id: row.site_id,
            transport: row.transport.0,
            enabled: row.enabled,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BusList {
    pub buses: Vec<Bus>,
}

/// Create a bus (engineer).
#[utoipa::path(post, path = "/api/v1/buses", tag = "buses", request_body = NewBus,
    responses(
        (status = 201, description = "Created", body = Bus),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role is not engineer", body = ErrorBody),
        (status = 409, description = "Name already used", body = ErrorBody),
        (status = 422, description = "A field is invalid; the message names it", body = ErrorBody),
    ))]
#[tracing::instrument(skip(state, body), fields(user = %caller.user))]
pub(crate) async fn create_bus(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<ApiJson<NewBus>, ApiError>,
) -> Result<(StatusCode, Json<Bus>), ApiError> {
    // The role first: a request outside it gets 403 whatever its body.
    caller.require(Right::Configure)?;
    let ApiJson(body) = body?;
    let new = buses::NewBus {
        name: body.name,
        transport: body.transport,
        site_id: body.site_id,
    };
    let row = buses::create_bus(&state.pool, &caller, &new).await?;
    Ok((StatusCode::CREATED, Json(Bus::new(row, &state.stats))))
}

/// List buses.
#[utoipa::path(get, path = "/api/v1/buses", tag = "buses",
    responses((status = 200, body = BusList), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_buses(State(state): State<AppState>, caller: Caller) -> Result<Json<BusList>, ApiError> {
    let buses = buses::list_buses(&state.pool, &caller)
        .await?
        .into_iter()
        .map(|row| Bus::new(row, &state.stats))
        .collect();
    Ok(Json(BusList { buses }))
}

/// One bus, with its traffic statistics: requests, timeouts, CRC errors,
/// exceptions, latency and utilisation, for the bus and per device.
#[utoipa::path(get, path = "/api/v1/buses/{id}", tag = "buses",
    params(("id" = i64, Path, description = "Bus id")),
    responses((status = 200, body = Bus), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_bus(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Bus>, ApiError> {
    let row = buses::get_bus(&state.pool, &caller, BusId(id)).await?;
    Ok(Json(Bus::new(row, &state.stats)))
}
