//! A command's own page, made for a phone on site: the meter, what the
//! command does, and, while it awaits field programming, what the
//! technician must do, until when, refreshing itself until the outcome.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::command::parameters_line;
use super::command_confirm::in_words;
use super::field_programming::programming_steps;
use super::fleet::when;
use super::signed_in_page;
use crate::domain::command::{CommandKind, CommandParameters};
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::service::devices::get_device;
use crate::service::jobs::get_job;
use crate::service::sites::get_site;
use crate::store::command_jobs::CommandJobRow;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

#[derive(askama::Template)]
#[template(path = "command.html")]
pub(crate) struct CommandPage {
    pub user: String,
    pub id: i64,
    pub device_id: i64,
    pub device_name: String,
    pub site_name: String,
    pub bus_id: i64,
    pub bus_name: String,
    pub address: String,
    /// What the command does, in words.
    pub words: String,
    pub kind: String,
    pub parameters: String,
    pub state: &'static str,
    pub awaiting: bool,
    pub pending: bool,
    /// The command's own instructions, when it carries them.
    pub instructions: String,
    /// Otherwise the meter's steps from its manual.
    pub steps: &'static [&'static str],
    pub window: &'static str,
    pub source: &'static str,
    /// Until when the window is awaited (RFC 3339, and as shown), when the job says.
    pub until: String,
    pub until_text: String,
    pub since: String,
    pub requested_by: String,
    pub finished: String,
    pub error: String,
    pub outcome: String,
    pub written: String,
    pub before: String,
    pub after: String,
    pub can_cancel: bool,
}

pub(crate) async fn get_command_page(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
) -> Response {
    signed_in_page(caller, &format!("/commands/{id}"), |caller| build(&state, caller, id)).await
}

fn shown(value: Option<serde_json::Value>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

async fn build(state: &AppState, caller: Caller, id: i64) -> Result<CommandPage, ApiError> {
    let job = get_job(&state.pool, &caller, id).await?;
    // The field-programming deadline, when the job's progress carries one.
    let until: Option<DateTime<Utc>> = job
        .progress
        .0
        .get("deadline")
        .and_then(|until| until.as_str())
        .and_then(|until| until.parse().ok());
    let command = CommandJobRow::from_job(job).ok_or_else(|| ApiError::not_found(format!("no command {id}")))?;
    let device = get_device(&state.pool, &caller, command.device_id).await?;
    let site = get_site(&state.pool, &caller, device.site_id).await?;
    let words = match (
        CommandKind::parse(&command.kind),
        serde_json::from_value::<CommandParameters>(command.parameters.clone()),
    ) {
        (Some(kind), Ok(parameters)) => in_words(kind, &parameters),
        _ => command.kind.clone(),
    };
    let steps = programming_steps(&device.profile);
    let awaiting = command.state == JobState::AwaitingFieldProgramming;
    let cancellable = matches!(command.state, JobState::Queued | JobState::AwaitingFieldProgramming);
    Ok(CommandPage {
        user: caller.user.clone(),
        id,
        device_id: device.id.0,
        device_name: device.name.clone(),
        site_name: site.name,
        bus_id: device.bus_id.0,
        bus_name: device.bus_name.clone(),
        address: device.address_text(),
        words,
        kind: command.kind.clone(),
        parameters: parameters_line(&command.parameters).trim().to_owned(),
        state: command.state.as_str(),
        awaiting,
        pending: command.state.is_pending(),
        instructions: command.instructions.clone().unwrap_or_default(),
        steps: steps.steps,
        window: steps.window,
        source: steps.source,
        until: until.map(|at| at.to_rfc3339()).unwrap_or_default(),
        until_text: until.map(|at| when(Some(at))).unwrap_or_default(),
        since: when(command.started_at.or(Some(command.created_at))),
        requested_by: command.requested_by.clone(),
        finished: command.finished_at.map(|at| when(Some(at))).unwrap_or_default(),
        error: command
            .error
            .map(|(code, message)| format!("{code}: {message}"))
            .unwrap_or_default(),
        outcome: command.outcome.unwrap_or_default(),
        written: shown(command.written),
        before: shown(command.before),
        after: shown(command.after),
        can_cancel: cancellable && caller.role.permits(Right::Configure),
    })
}
