//! The jobs page: every job (on-demand reads, scans, commands), newest
//! first, with the filters and paging of `GET /api/v1/jobs`; it refreshes
//! itself while a job on it is pending. An engineer may cancel a command
//! still queued or awaiting field programming.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::command::parameters_line;
use super::command_form::Choice;
use super::fleet::when;
use super::{signed_in, signed_in_page};
use crate::domain::job::{JobKind, JobState};
use crate::domain::role::Right;
use crate::service::buses::list_buses;
use crate::service::devices::list_devices;
use crate::service::jobs::{JobSelection, cancel_command, list_jobs};
use crate::store::command_jobs::CommandJobRow;
use crate::store::jobs::JobRow;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

#[derive(askama::Template)]
#[template(path = "jobs.html")]
pub(crate) struct JobsPage {
    pub user: String,
    /// The choices of each filter, the one asked selected.
    pub kinds: Vec<Choice>,
    pub states: Vec<Choice>,
    pub devices: Vec<Choice>,
    pub buses: Vec<Choice>,
    pub rows: Vec<JobView>,
    /// The link to the next (older) page, if there is one.
    pub next: Option<String>,
    /// Whether a job on the page is still to finish (the page then refreshes).
    pub pending: bool,
}

pub(crate) struct JobView {
    pub id: i64,
    /// A command's page; empty for other jobs.
    pub link: String,
    pub created: String,
    pub finished: String,
    pub kind: &'static str,
    /// The device's id and name; an empty name for a scan.
    pub device_id: i64,
    pub device_name: String,
    pub bus_id: i64,
    pub bus_name: String,
    pub what: String,
    pub state: &'static str,
    pub progress: String,
    pub before: String,
    pub after: String,
    pub error_code: String,
    pub error_message: String,
    pub requested_by: String,
    pub cancellable: bool,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct JobsQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    device_id: String,
    #[serde(default)]
    bus_id: String,
    cursor: Option<String>,
}

const KINDS: [&str; 3] = ["read_now", "scan", "command"];
const STATES: [&str; 6] = [
    "queued",
    "running",
    "awaiting_field_programming",
    "succeeded",
    "failed",
    "cancelled",
];

fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::ReadNow => "read_now",
        JobKind::Scan => "scan",
        JobKind::Command => "command",
    }
}

pub(crate) async fn get_jobs_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(query): Query<JobsQuery>,
) -> Response {
    signed_in_page(caller, "/jobs", |caller| build(&state, caller, query)).await
}

fn id_filter(field: &str, text: &str) -> Result<Option<i64>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        text => text
            .parse()
            .map(Some)
            .map_err(|_| ApiError::parameter(field, format!("{text:?} is not an id"))),
    }
}

async fn build(state: &AppState, caller: Caller, query: JobsQuery) -> Result<JobsPage, ApiError> {
    let selection = JobSelection {
        kind: Some(&query.kind),
        state: Some(&query.state),
        device_id: id_filter("device_id", &query.device_id)?,
        bus_id: id_filter("bus_id", &query.bus_id)?,
        limit: None,
        cursor: query.cursor.as_deref(),
    };
    let page = list_jobs(&state.pool, &caller, &selection)
        .await
        .map_err(ApiError::from_query)?;
    let devices: HashMap<i64, String> = list_devices(&state.pool, &caller)
        .await?
        .into_iter()
        .map(|d| (d.id.0, d.name))
        .collect();
    let buses: HashMap<i64, String> = list_buses(&state.pool, &caller)
        .await?
        .into_iter()
        .map(|b| (b.id.0, b.name))
        .collect();
    let may_cancel = caller.role.permits(Right::Configure);
    let rows: Vec<JobView> = page
        .jobs
        .into_iter()
        .map(|job| job_view(job, &devices, &buses, may_cancel))
        .collect();
    let next = page.next_cursor.map(|cursor| {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("kind", &query.kind),
            ("state", &query.state),
            ("device_id", &query.device_id),
            ("bus_id", &query.bus_id),
        ] {
            if !value.is_empty() {
                pairs.append_pair(name, value);
            }
        }
        pairs.append_pair("cursor", &cursor);
        format!("/jobs?{}", pairs.finish())
    });
    let sorted = |names: HashMap<i64, String>, asked: &str| {
        let mut list: Vec<Choice> = names
            .into_iter()
            .map(|(id, name)| Choice {
                selected: id.to_string() == asked.trim(),
                value: id.to_string(),
                label: name,
            })
            .collect();
        list.sort_by(|a, b| a.label.cmp(&b.label));
        list
    };
    let fixed = |names: &[&str], asked: &str| {
        names
            .iter()
            .map(|name| Choice {
                value: name.to_string(),
                label: name.to_string(),
                selected: *name == asked,
            })
            .collect()
    };
    Ok(JobsPage {
        user: caller.user,
        pending: rows.iter().any(|row| STATES[..3].contains(&row.state)),
        kinds: fixed(&KINDS, &query.kind),
        states: fixed(&STATES, &query.state),
        devices: sorted(devices, &query.device_id),
        buses: sorted(buses, &query.bus_id),
        rows,
        next,
    })
}

fn shown(value: Option<&serde_json::Value>) -> String {
    value
        .filter(|v| !v.is_null())
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn job_view(job: JobRow, devices: &HashMap<i64, String>, buses: &HashMap<i64, String>, may_cancel: bool) -> JobView {
    let name = |names: &HashMap<i64, String>, id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
    let parameters = &job.parameters.0;
    let progress = &job.progress.0;
    let result = job.result.as_ref().map(|r| &r.0);
    let (what, progress_text) = match job.kind {
        JobKind::ReadNow => (
            "Read now".to_owned(),
            result
                .and_then(|r| r.get("readings"))
                .map(|n| format!("{n} values"))
                .unwrap_or_default(),
        ),
        JobKind::Scan => (
            format!(
                "Scan addresses {}-{}",
                shown(parameters.get("first_address")),
                shown(parameters.get("last_address"))
            ),
            match progress.get("probed") {
                Some(probed) => format!(
                    "{probed} probed, {} found",
                    progress.get("found").and_then(|f| f.as_array()).map_or(0, Vec::len)
                ),
                None => String::new(),
            },
        ),
        JobKind::Command => (String::new(), String::new()),
    };
    let command = CommandJobRow::from_job(job.clone());
    let (what, progress_text, before, after) = match &command {
        Some(c) => (
            format!("{}{}", c.kind, parameters_line(&c.parameters)),
            [
                shown(c.written.as_ref()).as_str(),
                c.outcome.as_deref().unwrap_or_default(),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("; "),
            shown(c.before.as_ref()),
            shown(c.after.as_ref()),
        ),
        None => (what, progress_text, String::new(), String::new()),
    };
    let awaiting = matches!(job.state, JobState::Queued | JobState::AwaitingFieldProgramming);
    JobView {
        id: job.id,
        link: if command.is_some() {
            format!("/commands/{}", job.id)
        } else {
            String::new()
        },
        created: when(Some(job.created_at)),
        finished: job.finished_at.map(|at| when(Some(at))).unwrap_or_default(),
        kind: kind_name(job.kind),
        device_id: job.device_id.map_or(0, |d| d.0),
        device_name: job.device_id.map(|d| name(devices, d.0)).unwrap_or_default(),
        bus_id: job.bus_id.0,
        bus_name: name(buses, job.bus_id.0),
        what,
        state: job.state.as_str(),
        progress: progress_text,
        before,
        after,
        error_code: job.error_code.unwrap_or_default(),
        error_message: job.error_message.unwrap_or_default(),
        requested_by: job.requested_by,
        cancellable: may_cancel && job.kind == JobKind::Command && awaiting,
    }
}

/// Where to go back to after a cancel: a page of this server only.
#[derive(serde::Deserialize)]
pub(crate) struct CancelForm {
    #[serde(default)]
    back: String,
}

/// The "Cancel" button of a command still queued or awaiting field
/// programming (engineer).
pub(crate) async fn post_cancel(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    Form(form): Form<CancelForm>,
) -> Response {
    let caller = match signed_in(caller, "/jobs") {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    // A path of this server only: not `//host` nor `/\host`, which browsers read as another host.
    let back = if form.back.starts_with('/') && !form.back.starts_with("//") && !form.back.contains('\\') {
        form.back
    } else {
        "/jobs".to_owned()
    };
    match cancel_command(&state.pool, &caller, id).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}
