//! Signing in to the pages with an API token, which starts a server-side
//! session (`web::session`): the browser keeps the session's id, never the
//! token. Signing out ends the session.

use axum::Extension;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::LoginPage;
use super::render;
use crate::service::sessions::{sign_in, sign_out};
use crate::web::auth::authenticate_from;
use crate::web::auth_limit::ClientAddress;
use crate::web::error::ApiError;
use crate::web::session::{SignedIn, over_https, session_cookies};
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
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let token = form.token.trim();
    let next = local_path(form.next.as_deref());
    let refused = || {
        render(&LoginPage {
            error: "That token is unknown, expired or revoked.".to_owned(),
            next: next.clone(),
        })
    };
    match authenticate_from(&state, client, token).await {
        Ok(_) => {}
        Err(error) if error.status == StatusCode::UNAUTHORIZED => return refused(),
        Err(error) => return error.into_page(),
    }
    let policy = state.auth.sessions;
    match sign_in(&state.pool, policy, token).await {
        Ok(Some(session)) => {
            let secure = over_https(uri.scheme_str(), &headers);
            let cookies = session_cookies(Some(&session.id), policy.max.as_secs(), secure);
            let mut response = Redirect::to(&next).into_response();
            for value in cookies {
                response.headers_mut().append(SET_COOKIE, value);
            }
            response
        }
        Ok(None) => refused(),
        Err(error) => ApiError::from(error).into_page(),
    }
}

/// Ends the session (its form carries the CSRF token like any other) and
/// clears the cookie.
pub(crate) async fn post_logout(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    signed_in: Option<Extension<SignedIn>>,
) -> Response {
    if let Some(Extension(signed_in)) = signed_in
        && let Err(error) = sign_out(&state.pool, &signed_in.id).await
    {
        return ApiError::from(error).into_page();
    }
    let mut response = Redirect::to("/login").into_response();
    for value in session_cookies(None, 0, over_https(uri.scheme_str(), &headers)) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
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
