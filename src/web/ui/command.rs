//! The device page's command form (engineer) and how it tells the latest
//! command's outcome.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::fleet::when;
use super::signed_in;
use crate::domain::command::CommandParameters;
use crate::domain::ids::DeviceId;
use crate::domain::job::JobState;
use crate::service::commands::{CommandRequest, start_command};
use crate::store::command_jobs::CommandJobRow;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// The latest command as the page says it.
pub(crate) fn command_sentence(job: CommandJobRow) -> String {
    // As typed in the form: ` tariff=2 channels=1,5`.
    let parameters: String = match &job.parameters {
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
    };
    let what = format!("{}{parameters} by {}", job.kind, job.requested_by);
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

/// The command form: a kind, and its parameters typed as `name=value`
/// separated by spaces (`primary_a=400 secondary_a=5`); a list's items
/// separated by commas (`channels=1,5`); numbers decimal or hexadecimal
/// with 0x.
#[derive(serde::Deserialize)]
pub(crate) struct CommandForm {
    kind: String,
    #[serde(default)]
    parameters: String,
    #[serde(default)]
    broadcast: Option<String>,
}

fn number(name: &str, token: &str) -> Result<serde_json::Value, ApiError> {
    let integer = match token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => token.parse::<i64>().ok(),
    };
    if let Some(integer) = integer {
        return Ok(integer.into());
    }
    match token.parse::<f64>() {
        Ok(real) if real.is_finite() => Ok(real.into()),
        _ => Err(ApiError::invalid(name, format!("{token:?} is not a number"))),
    }
}

/// The form's parameters as the API's named parameters.
fn parse_parameters(text: &str, broadcast: bool) -> Result<CommandParameters, ApiError> {
    let mut object = serde_json::Map::new();
    for pair in text.split_whitespace() {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| ApiError::invalid("parameters", format!("{pair:?} is not name=value")))?;
        let value = match name {
            "unit" => serde_json::Value::from(value),
            "channels" | "values" => value
                .split(',')
                .filter(|item| !item.is_empty())
                .map(|item| number(name, item))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
            _ => number(name, value)?,
        };
        object.insert(name.to_owned(), value);
    }
    if broadcast {
        object.insert("broadcast".to_owned(), true.into());
    }
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|error| ApiError::invalid("parameters", error.to_string()))
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
    let parameters = match parse_parameters(&form.parameters, form.broadcast.is_some()) {
        Ok(parameters) => parameters,
        Err(error) => return error.into_page(),
    };
    let request = CommandRequest {
        kind: &form.kind,
        parameters,
        dry_run: false,
    };
    let now = state.clock.now();
    match start_command(&state.pool, &state.profiles, &caller, None, DeviceId(id), request, now).await {
        Ok(_) => axum::response::Redirect::to(&here).into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_named_numbers_lists_or_a_unit() {
        let parsed = parse_parameters("channels=1,0x05 unit=kWh vt_ratio=1.5", true).unwrap();
        assert_eq!(parsed.channels, Some(vec![1, 5]));
        assert_eq!(parsed.unit.as_deref(), Some("kWh"));
        assert_eq!(parsed.vt_ratio, Some(1.5));
        assert!(parsed.broadcast);
        let refused = parse_parameters("tariff=two", false).unwrap_err();
        assert!(refused.message.contains("tariff"), "{}", refused.message);
        let unknown = parse_parameters("colour=2", false).unwrap_err();
        assert!(unknown.message.contains("colour"), "{}", unknown.message);
    }
}
