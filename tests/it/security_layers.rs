//! What every response carries and every request is bounded by, whatever
//! its route: the headers a browser needs, and a refused oversized body.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ohmnibus::domain::role::Role;

use crate::support::spawn_app;

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_a_huge_body_is_refused() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    for (path, token) in [
        ("/healthz", None),
        ("/login", None),
        ("/api/v1/devices", Some(&engineer)),
    ] {
        let mut request = Request::builder().uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = tower::ServiceExt::oneshot(app.router.clone(), request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
    }
    // Two mebibytes of JSON: refused before it is read, with the headers still on.
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/sites")
        .header("authorization", format!("Bearer {engineer}"))
        .header("content-type", "application/json")
        .body(Body::from(huge))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    // Announced by its length: refused before a byte of it is read.
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/sites")
        .header("authorization", format!("Bearer {engineer}"))
        .header("content-type", "application/json")
        .header("content-length", "4194304")
        .body(Body::from("{}"))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sites WHERE name LIKE 'xxx%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    app.stop().await;
}
