//! The device page's command form (engineer) and how it tells the latest
//! command's outcome.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::fleet::when;
use super::signed_in;
use crate::domain::ids::DeviceId;
use crate::domain::job::JobState;
use crate::service::jobs::{CommandRequest, start_command};
use crate::store::command_jobs::CommandJobRow;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// The latest command as the page says it.
pub(crate) fn command_sentence(job: CommandJobRow) -> String {
    let values = job
        .values
        .map(|values| {
            let values: Vec<String> = values.iter().map(i32::to_string).collect();
            format!(" [{}]", values.join(", "))
        })
        .unwrap_or_default();
    let what = format!(
        "{}{values}{} by {}",
        job.command,
        if job.broadcast { " (broadcast)" } else { "" },
        job.requested_by
    );
    match job.state {
        JobState::Succeeded => format!(
            "{what}: succeeded{}, at {}.",
            job.outcome.map(|note| format!(", {note}")).unwrap_or_default(),
            when(job.finished_at)
        ),
        JobState::Failed => format!("{what}: failed: {}.", job.error.unwrap_or_default()),
        other => format!("{what}: {}…", other.as_str()),
    }
}

/// The command form: values as numbers separated by commas or spaces
/// (decimal, or hexadecimal with 0x); empty for a clock set to now.
#[derive(serde::Deserialize)]
pub(crate) struct CommandForm {
    command: String,
    #[serde(default)]
    values: String,
    #[serde(default)]
    broadcast: Option<String>,
}

fn parse_values(text: &str) -> Result<Option<Vec<i64>>, ApiError> {
    let tokens: Vec<&str> = text.split([',', ' ']).filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return Ok(None);
    }
    tokens
        .iter()
        .map(|token| {
            let parsed = match token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")) {
                Some(hex) => i64::from_str_radix(hex, 16),
                None => token.parse(),
            };
            parsed.map_err(|_| ApiError::invalid("values", format!("{token:?} is not a number")))
        })
        .collect::<Result<Vec<i64>, ApiError>>()
        .map(Some)
}

/// The "Send" button of the command form (engineer).
pub(crate) async fn post_command(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<i64>,
    Form(form): Form<CommandForm>,
) -> Response {
    let here = format!("/devices/{id}");
    let caller = match signed_in(caller, &here) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let values = match parse_values(&form.values) {
        Ok(values) => values,
        Err(error) => return error.into_page(),
    };
    let request = CommandRequest {
        command: &form.command,
        values: values.as_deref(),
        broadcast: form.broadcast.is_some(),
    };
    match start_command(&state.pool, &state.profiles, &caller, None, DeviceId(id), request).await {
        Ok(_) => axum::response::Redirect::to(&here).into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decimal_or_hexadecimal_separated_by_commas_or_spaces() {
        assert_eq!(parse_values("").unwrap(), None);
        assert_eq!(parse_values(" , ").unwrap(), None);
        assert_eq!(parse_values("2").unwrap(), Some(vec![2]));
        assert_eq!(parse_values("0x1F, 3 0X0a").unwrap(), Some(vec![31, 3, 10]));
        let error = parse_values("2, two").unwrap_err();
        assert_eq!(error.message, "values: \"two\" is not a number");
    }
}
