//! Failed authentication is limited per client address: after ten failures
//! in a minute the address gets 429 with `Retry-After`, whatever it
//! presents, by bearer token or by the login form; other addresses and
//! successes are not held back. Time moves by the application's manual
//! clock, not by waiting.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use serde_json::Value;

use crate::support::{TestApp, spawn_app_with_clock};

async fn send(app: &TestApp, from: &str, request: Request<Body>) -> (StatusCode, Option<String>, String) {
    let mut request = request;
    let peer: SocketAddr = from.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, retry, String::from_utf8_lossy(&body).into_owned())
}

fn bearer(token: &str) -> Request<Body> {
    Request::builder()
        .uri("/api/v1/devices")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn login(token: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}&next=%2F")))
        .unwrap()
}

#[tokio::test]
async fn an_address_that_fails_too_often_waits_whatever_it_presents() {
    let clock = Clock::manual(Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap());
    let app = spawn_app_with_clock(clock.clone()).await;
    let viewer = app.token(Role::Viewer).await;
    let guesser = "198.51.100.7:40000";

    // Successes are not counted.
    for _ in 0..20 {
        assert_eq!(send(&app, guesser, bearer(&viewer)).await.0, StatusCode::OK);
    }
    // Nor is a request without a credential.
    for _ in 0..20 {
        let request = Request::builder().uri("/api/v1/devices").body(Body::empty()).unwrap();
        assert_eq!(send(&app, guesser, request).await.0, StatusCode::UNAUTHORIZED);
    }
    // Ten guesses, five by bearer token and five by the login form.
    for n in 0..5 {
        let (status, _, _) = send(&app, guesser, bearer(&format!("ohm_guess{n}"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, page) = send(&app, guesser, login(&format!("ohm_guess{n}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("unknown, expired or revoked"), "{page}");
    }
    // The eleventh is refused before it is looked at; so is the right token.
    clock.advance(Duration::seconds(15));
    let (status, retry, body) = send(&app, guesser, bearer("ohm_guess11")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("45"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "too_many_failed_authentications");
    assert!(body["error"]["message"].as_str().unwrap().contains("45 s"));
    let (status, retry, _) = send(&app, guesser, bearer(&viewer)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("45"));
    let (status, retry, page) = send(&app, guesser, login(&viewer)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("45"));
    assert!(page.contains("too many failed authentications"), "{page}");

    // Another address is not held back, nor is the same host on another port counted apart.
    assert_eq!(
        send(&app, "198.51.100.8:40000", bearer(&viewer)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, "198.51.100.7:50000", bearer(&viewer)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A minute after the first failure, the address may try again.
    clock.advance(Duration::seconds(45));
    assert_eq!(send(&app, guesser, bearer(&viewer)).await.0, StatusCode::OK);
    assert_eq!(
        send(&app, guesser, bearer("ohm_again")).await.0,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}
