//! The events page: the event log with filters (device, open or cleared,
//! since when), and an Acknowledge button for operators.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::fleet::when;
use super::{signed_in, signed_in_page};
use crate::domain::role::Right;
use crate::service::devices::list_devices;
use crate::service::events::{EventSelection, acknowledge_event, list_events};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

#[derive(askama::Template)]
#[template(path = "events.html")]
pub(crate) struct EventsPage {
    pub user: String,
    pub can_ack: bool,
    pub devices: Vec<DeviceOption>,
    /// The filters as asked, to show them again.
    pub device_id: Option<i64>,
    pub active: String,
    pub since: String,
    /// The query string of these filters, to come back to after an acknowledgement.
    pub query: String,
    pub rows: Vec<EventView>,
}

pub(crate) struct DeviceOption {
    pub id: i64,
    pub name: String,
}

pub(crate) struct EventView {
    pub id: i64,
    pub device_id: i64,
    pub device: String,
    pub code: String,
    pub severity: String,
    pub started: String,
    pub cleared: String,
    pub message: String,
    pub acknowledged_by: String,
}

/// The filters of the page, as the API's `GET /api/v1/events` takes them.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct EventsQuery {
    device_id: Option<i64>,
    active: Option<String>,
    since: Option<String>,
}

pub(crate) async fn get_events_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(query): Query<EventsQuery>,
) -> Response {
    signed_in_page(caller, "/events", |caller| build(&state, caller, &query)).await
}

async fn build(state: &AppState, caller: Caller, query: &EventsQuery) -> Result<EventsPage, ApiError> {
    let selection = EventSelection {
        device_id: query.device_id,
        active: query.active.as_deref(),
        since: query.since.as_deref(),
    };
    let events = list_events(&state.pool, &caller, &selection).await?;
    let devices = list_devices(&state.pool, &caller).await?;
    let name_of = |id: i64| {
        devices
            .iter()
            .find(|d| d.id.0 == id)
            .map_or_else(|| format!("device {id}"), |d| d.name.clone())
    };
    let rows = events
        .into_iter()
        .map(|event| {
            let device_id = event.device_id.map_or(0, |d| d.0);
            EventView {
                id: event.id,
                device_id,
                device: if device_id == 0 {
                    "head-end".to_owned()
                } else {
                    name_of(device_id)
                },
                code: event.code.to_string(),
                severity: event.severity.to_string(),
                started: when(Some(event.started_at)),
                cleared: event
                    .cleared_at
                    .map_or_else(|| "active".to_owned(), |at| when(Some(at))),
                message: event.message,
                acknowledged_by: event.acknowledged_by.unwrap_or_default(),
            }
        })
        .collect();
    let active = query.active.clone().unwrap_or_default();
    let since = query.since.clone().unwrap_or_default();
    let mut pairs = Vec::new();
    if let Some(id) = query.device_id {
        pairs.push(format!("device_id={id}"));
    }
    if !active.is_empty() {
        pairs.push(format!("active={active}"));
    }
    if !since.is_empty() {
        pairs.push(format!("since={}", since.replace('+', "%2B").replace(':', "%3A")));
    }
    Ok(EventsPage {
        can_ack: caller.role.permits(Right::Operate),
        user: caller.user,
        devices: devices
            .iter()
            .map(|d| DeviceOption {
                id: d.id.0,
                name: d.name.clone(),
            })
            .collect(),
        device_id: query.device_id,
        active,
        since,
        query: pairs.join("&"),
        rows,
    })
}

#[derive(serde::Deserialize)]
pub(crate) struct AckForm {
    /// The filters of the page the button was on.
    #[serde(default)]
    back: String,
}

pub(crate) async fn post_ack(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    axum::Form(form): axum::Form<AckForm>,
) -> Response {
    let caller = match signed_in(caller, "/events") {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    match acknowledge_event(&state.pool, &caller, id).await {
        // Back to the same list; only our own query strings are followed.
        Ok(_)
            if form
                .back
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "=&_%-.".contains(c)) =>
        {
            Redirect::to(&format!("/events?{}", form.back)).into_response()
        }
        Ok(_) => Redirect::to("/events").into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}
