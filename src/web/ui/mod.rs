//! HTML pages for operators: fleet overview, device detail and its commands, billing and statement,
//! buses, events, jobs, a command's page for the technician on site, sites and their balance, tariff
//! calendars, login.

pub(crate) mod audit;
pub(crate) mod billing;
pub(crate) mod bus;
pub(crate) mod command;
mod command_confirm;
mod command_form;
mod command_form_post;
mod command_page;
pub(crate) mod device;
mod device_iec;
mod device_registers;
pub(crate) mod device_secret;
pub(crate) mod events;
mod field_programming;
pub(crate) mod fleet;
pub(crate) mod jobs;
mod latest;
pub(crate) mod login;
pub(crate) mod pages;
pub(crate) mod sites;
pub(crate) mod statement;
pub(crate) mod tariff_calendars;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use super::auth::Caller;
use super::error::ApiError;
use super::state::AppState;

const STYLE: &str = include_str!("../../../static/style.css");

async fn get_style() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/css"), (CACHE_CONTROL, "max-age=300")], STYLE)
}

/// The pages' scripts are files of their own: the Content-Security-Policy
/// (`web::security`) takes scripts from this server only, none inline.
const RELOAD_SCRIPT: &str = include_str!("../../../static/reload.js");
const COUNTDOWN_SCRIPT: &str = include_str!("../../../static/countdown.js");

async fn get_reload_script() -> impl IntoResponse {
    script(RELOAD_SCRIPT)
}

async fn get_countdown_script() -> impl IntoResponse {
    script(COUNTDOWN_SCRIPT)
}

fn script(text: &'static str) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript"), (CACHE_CONTROL, "max-age=300")],
        text,
    )
}

/// A page's caller, or the login page when there is none.
pub(crate) fn signed_in(caller: Result<Caller, ApiError>, here: &str) -> Result<Caller, Box<Response>> {
    caller.map_err(|error| {
        Box::new(if error.status == axum::http::StatusCode::UNAUTHORIZED {
            Redirect::to(&format!("/login?next={here}")).into_response()
        } else {
            error.into_page()
        })
    })
}

/// A page as HTML, or the error page when it does not render.
pub(crate) fn render(page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => ApiError::internal(error).into_page(),
    }
}

/// The page `build` makes for the signed-in caller, rendered; the login
/// page (back to `here`) when nobody is signed in, the error page when the
/// page cannot be built.
pub(crate) async fn signed_in_page<P, F>(
    caller: Result<Caller, ApiError>,
    here: &str,
    build: impl FnOnce(Caller) -> F,
) -> Response
where
    P: askama::Template,
    F: Future<Output = Result<P, ApiError>>,
{
    let caller = match signed_in(caller, here) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    match build(caller).await {
        Ok(page) => render(&page),
        Err(error) => error.into_page(),
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(fleet::get_fleet_page))
        .route("/devices/{id}", get(device::get_device_page))
        .route("/devices/{id}/billing", get(billing::get_billing_page))
        .route("/devices/{id}/statement", get(statement::get_statement_page))
        .route("/devices/{id}/read", axum::routing::post(device::post_read_now))
        .route("/devices/{id}/commands", axum::routing::post(command::post_command))
        .route(
            "/devices/{id}/identity/confirm",
            axum::routing::post(device::post_confirm_replacement),
        )
        .route(
            "/devices/{id}/password",
            axum::routing::post(device_secret::post_password),
        )
        .route("/commands/{id}", get(command_page::get_command_page))
        .route("/jobs", get(jobs::get_jobs_page))
        .route("/jobs/{id}/cancel", axum::routing::post(jobs::post_cancel))
        .route("/audit", get(audit::get_audit_page))
        .route("/events", get(events::get_events_page))
        .route("/sites", get(sites::get_sites_page))
        .route("/sites/{id}/balance", get(sites::get_site_balance_page))
        .route("/events/{id}/ack", axum::routing::post(events::post_ack))
        .route("/buses/{id}", get(bus::get_bus_page))
        .route("/tariff-calendars", get(tariff_calendars::get_calendars_page))
        .route("/tariff-calendars/{id}", get(tariff_calendars::get_calendar_page))
        .route("/buses/{id}/scan", axum::routing::post(bus::post_bus_scan))
        .route("/buses/{id}/devices", axum::routing::post(bus::post_bus_device))
        .route("/login", get(login::get_login_page).post(login::post_login))
        .route("/logout", axum::routing::post(login::post_logout))
        .route("/static/style.css", get(get_style))
        .route("/static/reload.js", get(get_reload_script))
        .route("/static/countdown.js", get(get_countdown_script))
}
