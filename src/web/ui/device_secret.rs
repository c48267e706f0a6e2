//! The device page's programming password (engineer): whose password the
//! device is read with, and a form that sets the device's own, which also
//! lifts the lock a refused password put on it. The value is never shown.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::fleet::when;
use super::signed_in;
use crate::device::iec::IecSettings;
use crate::domain::ids::DeviceId;
use crate::domain::secret::SecretName;
use crate::service::device_secrets::set_device_secret;
use crate::store::device_secrets::SecretInfo;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::path::PagePath;
use crate::web::state::AppState;

/// Whose password an IEC device is read with, in a line.
pub(crate) fn password_line(iec: &IecSettings, secrets: &[SecretInfo]) -> String {
    match secrets.iter().find(|secret| secret.name == SecretName::IecPassword) {
        Some(own) => format!("its own, set by {} at {}", own.set_by, when(Some(own.set_at))),
        None if iec.password.is_some() => "from the profile (the factory password of the meter type)".to_owned(),
        None => "none (the profile gives none)".to_owned(),
    }
}

/// The password form; the field is never filled in.
#[derive(serde::Deserialize)]
pub(crate) struct PasswordForm {
    value: String,
}

/// The "Set" button of the password form (engineer).
pub(crate) async fn post_password(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PagePath(id): PagePath<i64>,
    Form(form): Form<PasswordForm>,
) -> Response {
    let here = format!("/devices/{id}");
    let caller = match signed_in(caller, &here) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let set = set_device_secret(
        &state.pool,
        state.secret_key.as_ref(),
        &caller,
        DeviceId(id),
        SecretName::IecPassword.as_str(),
        &form.value,
        state.clock.now(),
    )
    .await;
    match set {
        Ok(()) => axum::response::Redirect::to(&here).into_response(),
        Err(error) => ApiError::from(error).into_page(),
    }
}
