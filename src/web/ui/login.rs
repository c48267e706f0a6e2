//! Signing in to the pages with an API token (kept in an HttpOnly cookie).

use axum::Form;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::LoginPage;
use crate::store::tokens::fetch_token_owner;
use crate::web::auth::SESSION_COOKIE;
use crate::web::error::ApiError;
use crate::web::state::AppState;

fn render(page: LoginPage) -> Response {
    match askama::Template::render(&page) {
        Ok(html) => Html(html).into_response(),
        Err(error) => ApiError::internal(error).into_page(),
    }
}

pub async fn get_login_page() -> Response {
    render(LoginPage { error: String::new() })
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn post_login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    match fetch_token_owner(&state.pool, token).await {
        Ok(Some(_)) => {
            let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000");
            ([(SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Ok(None) => render(LoginPage {
            error: "That token is unknown or revoked.".to_owned(),
        }),
        Err(error) => ApiError::from(error).into_page(),
    }
}

pub async fn post_logout() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
