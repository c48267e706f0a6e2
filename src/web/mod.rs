//! The web layer: JSON API under /api/v1, HTML pages, health and metrics.

pub mod api;
pub(crate) mod auth;
pub mod auth_limit;
pub(crate) mod error;
pub(crate) mod health;
pub(crate) mod json;
pub(crate) mod path;
pub(crate) mod query;
pub(crate) mod request_terms;
pub(crate) mod security;
pub(crate) mod session;
pub mod state;
pub(crate) mod ui;

use axum::Router;
use axum::routing::get;
use tower_http::trace::TraceLayer;

use state::AppState;

/// The whole application's routes, behind the security layers.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .nest("/api/v1", api::router())
        .merge(ui::router().layer(axum::middleware::from_fn_with_state(state.clone(), session::resolve)))
        .route("/healthz", get(health::get_healthz))
        .route("/readyz", get(health::get_readyz))
        .route("/metrics", get(health::get_metrics));
    security::secure(routes)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
