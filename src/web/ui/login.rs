//! Signing in to the pages with an API token (kept in an HttpOnly cookie).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::LoginPage;
use super::render;
use crate::web::auth::{SESSION_COOKIE, authenticate_from};
use crate::web::auth_limit::ClientAddress;
use crate::web::state::AppState;

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// Where to go after signing in: a local path only, never another site.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.to_owned(),
        _ => "/".to_owned(),
    }
}

pub(crate) async fn get_login_page(Query(query): Query<LoginQuery>) -> Response {
    render(&LoginPage {
        error: String::new(),
        next: local_path(query.next.as_deref()),
    })
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    next: Option<String>,
}

pub(crate) async fn post_login(
    State(state): State<AppState>,
    client: ClientAddress,
    Form(form): Form<LoginForm>,
) -> Response {
    let token = form.token.trim();
    match authenticate_from(&state, client, token).await {
        Ok(_) => {
            let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000");
            ([(SET_COOKIE, cookie)], Redirect::to(&local_path(form.next.as_deref()))).into_response()
        }
        Err(error) if error.status == StatusCode::UNAUTHORIZED => render(&LoginPage {
            error: "That token is unknown, expired or revoked.".to_owned(),
            next: local_path(form.next.as_deref()),
        }),
        Err(error) => error.into_page(),
    }
}

pub(crate) async fn post_logout() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    ([(SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/devices/3")), "/devices/3");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(None), "/");
    }
}
