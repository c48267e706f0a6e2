//! `/api/v1/events`: the event log (meter conditions and head-end events)
//! and its acknowledgement by an operator.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::severity::Severity;
use crate::service::events::{self, EventSelection};
use crate::store::events::EventRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::path::ApiPath;
use crate::web::query::ApiQuery;
use crate::web::state::AppState;

/// One event: a condition with its start and, once over, its clear time.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "device_id": 3, "code": "comm_lost", "severity": "warning",
    "started_at": "2026-11-22T08:00:00Z", "cleared_at": null,
    "message": "Workshop feeder stopped answering: no answer within 1s", "acknowledged_by": null}))]
pub(crate) struct Event {
    pub id: i64,
    /// The device it concerns; null for an event of the head-end itself.
    pub device_id: Option<i64>,
    /// Stable snake_case code: `comm_lost`, `comm_restored`, `register_rollover`,
    /// `register_decreased`, `clock_drift`, `billing_reset`, `profile_gap`, `tou_mismatch`, `balance_mismatch`, `password_refused`,
    /// `clock_needs_site_programming`, `command_verification_failed`, `field_programming_needed`, `field_programming_expired`,
    /// `future_timestamp`, `meter_identity_changed`, `meter_replaced`,
    /// `pulse_channel_misconfigured`, `status_word_unreadable`, `load_curve_unsupported`, `load_curve_garbled`,
    /// `meter_logbook` (an entry of the meter's event logbook its profile names no code for),
    /// `meter_logbook_unsupported`, a meter condition named by its profile (`over_voltage`, `low_battery`…), or an
    /// occurrence the meter logged with its start and stop (`voltage_loss_l1`,
    /// `power_down`, `terminal_cover_open`…).
    pub code: String,
    pub severity: Severity,
    pub started_at: DateTime<Utc>,
    /// Null while the condition lasts.
    pub cleared_at: Option<DateTime<Utc>>,
    pub message: String,
    /// The operator who acknowledged it, if anyone has.
    pub acknowledged_by: Option<String>,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Event {
        Event {
            id: row.id,
            device_id: row.device_id.map(|d| d.0),
            code: row.code.to_string(),
            severity: row.severity,
            started_at: row.started_at,
            cleared_at: row.cleared_at,
            message: row.message,
            acknowledged_by: row.acknowledged_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventList {
    /// Newest first, at most 1000.
    pub events: Vec<Event>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventQuery {
    /// Only this device's events.
    pub device_id: Option<i64>,
    /// `true`: only events still open; `false`: only cleared ones.
    pub active: Option<String>,
    /// Only events started at or after this instant (RFC 3339).
    pub since: Option<String>,
}

impl EventQuery {
    fn selection(&self) -> EventSelection<'_> {
        EventSelection {
            device_id: self.device_id,
            active: self.active.as_deref(),
            since: self.since.as_deref(),
        }
    }
}

/// List events, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    responses(
        (status = 200, body = EventList),
        (status = 401, body = ErrorBody),
        (status = 400, description = "A malformed parameter, named (`invalid_parameter`)", body = ErrorBody),
    ))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<EventList>, ApiError> {
    let events = events::list_events(&state.pool, &caller, &query.selection())
        .await
        .map_err(ApiError::from_query)?;
    Ok(Json(EventList {
        events: events.into_iter().map(Event::from).collect(),
    }))
}

/// Acknowledge an event (operator). The first acknowledgement stands.
#[utoipa::path(post, path = "/api/v1/events/{id}/ack", tag = "events",
    params(("id" = i64, Path, description = "Event id")),
    responses(
        (status = 200, description = "Acknowledged", body = Event),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Role is not operator or engineer", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn ack_event(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Event>, ApiError> {
    Ok(Json(events::acknowledge_event(&state.pool, &caller, id).await?.into()))
}
