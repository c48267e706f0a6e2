//! The device page's command forms (engineer): a post first shows what
//! would be written (a dry run) for confirmation, the confirmed post queues
//! the command; and how the latest command's outcome is told.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::command_confirm::{confirm_page, refusal_page};
use super::command_form_post::parse_form;
use super::fleet::when;
use super::{render, signed_in};
use crate::domain::ids::DeviceId;
use crate::domain::job::JobState;
use crate::domain::role::Right;
use crate::service::commands::{CommandRequest, Started, start_command};
use crate::service::devices::get_device;
use crate::store::command_jobs::CommandJobRow;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

/// A command's named parameters as a line: ` tariff=2 channels=1,5`.
pub(crate) fn parameters_line(parameters: &serde_json::Value) -> String {
    match parameters {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(name, value)| match value {
                serde_json::Value::Array(items) => {
                    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                    format!(" {name}={}", items.join(","))
                }
                serde_json::Value::String(text) => format!(" {name}={text}"),
                other => format!(" {name}={other}"),
            })
            .collect(),
        _ => String::new(),
    }
}

/// The latest command as the page says it.
pub(crate) fn command_sentence(job: CommandJobRow) -> String {
    let what = format!(
        "{}{} by {}",
        job.kind,
        parameters_line(&job.parameters),
        job.requested_by
    );
    match job.state {
        JobState::Succeeded => format!(
            "{what}: succeeded{}, at {}.",
            job.outcome.map(|note| format!(", {note}")).unwrap_or_default(),
            when(job.finished_at)
        ),
        JobState::Failed => format!(
            "{what}: failed: {}.",
            job.error.map(|(_, message)| message).unwrap_or_default()
        ),
        JobState::AwaitingFieldProgramming => format!(
            "{what}: awaiting field programming. {}",
            job.instructions.unwrap_or_default()
        ),
        other => format!("{what}: {}…", other.as_str()),
    }
}

/// A command form's "Send" (a dry run, answered with the confirmation
/// page) and the confirmation's "Confirm" (the same fields and
/// `confirm`: queued, then the command's page). A refusal comes back as
/// the form again, the field at fault marked (422).
pub(crate) async fn post_command(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    Form(posted): Form<Vec<(String, String)>>,
) -> Response {
    let here = format!("/devices/{id}");
    let caller = match signed_in(caller, &here) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    // The role first, whatever the form holds, as the API does.
    if let Err(error) = caller.require(Right::Configure) {
        return ApiError::from(error).into_page();
    }
    let device = match get_device(&state.pool, &caller, DeviceId(id)).await {
        Ok(device) => device,
        Err(error) => return ApiError::from(error).into_page(),
    };
    // The CSRF field was checked on the way in (`web::session`); it is no
    // parameter, and the confirmation renders its own.
    let posted: Vec<(String, String)> = posted
        .into_iter()
        .filter(|(name, _)| name != crate::web::session::CSRF_FIELD)
        .collect();
    let confirmed = posted.iter().any(|(name, _)| name == "confirm");
    let started = match parse_form(&posted) {
        Ok((kind, parameters)) => {
            let request = CommandRequest {
                kind: &kind,
                parameters,
                dry_run: !confirmed,
            };
            let now = state.clock.now();
            start_command(&state.pool, &state.profiles, &caller, None, device.id, request, now)
                .await
                .map_err(ApiError::from)
        }
        Err(error) => Err(error),
    };
    match started {
        Ok(Started::Queued(job)) => Redirect::to(&format!("/commands/{}", job.id)).into_response(),
        Ok(Started::DryRun(dry)) => render(&confirm_page(caller.user, &device, *dry, &posted)),
        Err(error) if error.status == StatusCode::UNPROCESSABLE_ENTITY => {
            match refusal_page(&state, &caller, &device, &posted, error.message).await {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response(),
                Err(error) => error.into_page(),
            }
        }
        Err(error) => error.into_page(),
    }
}
