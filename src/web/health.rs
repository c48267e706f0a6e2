//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::state::AppState;
use crate::store::database::ping;

/// `/healthz`: the process is up.
pub(crate) async fn get_healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`: the database answers.
pub(crate) async fn get_readyz(State(state): State<AppState>) -> impl IntoResponse {
    if ping(&state.pool).await {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
    }
}

/// `/metrics`: Prometheus text format.
pub(crate) async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], state.stats.render())
}
