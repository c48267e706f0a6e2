//! The real application on port 0, as `startup::start` builds it for the
//! binary, and an in-process client of its router.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ohmnibus::config::Config;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::startup::{Application, start};
use ohmnibus::store::tokens::insert_token;
use serde_json::Value;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use super::db::TestDb;

pub(crate) struct TestApp {
    pub(crate) app: Application,
    pub(crate) pool: PgPool,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) router: axum::Router,
    /// Last, so the database outlives everything above that uses it.
    pub(crate) db: TestDb,
}

/// Starts the application on a fresh database, polling with short timeouts.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with_timeout(Duration::from_millis(300)).await
}

/// [`spawn_app`] waiting `request_timeout` for each answer (for tests that
/// hold an answer back on purpose).
pub(crate) async fn spawn_app_with_timeout(request_timeout: Duration) -> TestApp {
    spawn_app_with(request_timeout, Clock::System).await
}

/// [`spawn_app`] on `clock`: a manual clock shared with the simulators makes
/// the server's read stamps and the meters' measurements agree.
pub(crate) async fn spawn_app_with_clock(clock: Clock) -> TestApp {
    spawn_app_with(Duration::from_millis(300), clock).await
}

async fn spawn_app_with(request_timeout: Duration, clock: Clock) -> TestApp {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let config = Config {
        database_url: db.url.clone(),
        bind: "127.0.0.1:0".parse().unwrap(),
        profiles_dir: None,
        request_timeout,
        poll_refresh: Duration::from_millis(200),
        derive_every: Duration::from_millis(300),
        clock_drift_threshold: Duration::from_secs(30),
        clock,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (shutdown, receiver) = watch::channel(false);
    let app = start(
        &config,
        pool.clone(),
        Arc::new(ProfileSet::builtin()),
        listener,
        receiver,
    );
    let router = ohmnibus::web::router(app.state.clone());
    TestApp {
        app,
        pool,
        shutdown,
        router,
        db,
    }
}

impl TestApp {
    pub(crate) async fn token(&self, role: Role) -> String {
        insert_token(&self.pool, &format!("test-{role}"), role).await.unwrap()
    }

    /// Sends a request through the real router, in process.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// Sends a request with a raw body.
    pub(crate) async fn request_raw(&self, method: &str, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub(crate) async fn stop(self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.app.wait())
            .await
            .expect("stops in time")
            .unwrap();
    }
}
