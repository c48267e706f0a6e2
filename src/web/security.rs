//! What every response and request passes through, whatever its route:
//! security headers, a bound on request bodies, on how long a request may
//! take, and on how many are served at once; and a handler that panics
//! answers the documented 500 instead of dropping the connection.

use std::time::Duration;

use super::error::ApiError;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

/// The largest request body taken (a load-profile correction of a year of
/// quarter hours is well under it); a larger one is refused with 413.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long a request may take before it is answered 408.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests served at once; more wait their turn.
pub(crate) const MAX_CONCURRENT_REQUESTS: usize = 256;

/// Pages take scripts, styles and images from this server only, and may
/// not be framed. Inline styles stay allowed: a page indents a site tree
/// with a computed `style` attribute.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The headers set on every response.
pub(crate) const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// What a request whose handler panicked is answered: the one error shape,
/// `500 internal`, with the panic in the log (not in the answer).
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    ApiError::internal(format_args!("a request handler panicked: {what}")).into_response()
}

/// Wraps `router` in the layers above.
pub(crate) fn secure<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let mut router = router
        .layer(CatchPanicLayer::custom(panicked))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn boom() -> &'static str {
        panic!("the handler's own bug")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_the_documented_500_with_the_headers_on() {
        let router = secure(Router::new().route("/boom", get(boom)));
        let request = Request::builder().uri("/boom").body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "internal", "message": "internal error; see the server log"}})
        );
    }
}
