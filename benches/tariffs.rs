//! Cost of what billing asks of the tariff engine, through the API as a
//! billing system calls it: classifying a year of quarter hours under the
//! Italian F1/F2/F3 calendar, and a device's statement (energy and maximum
//! demand per band, data quality) for a month of 15-minute intervals, as
//! JSON and as CSV.
//!
//! Run: `cargo bench --bench tariffs` (needs DATABASE_URL or PostgreSQL on
//! 127.0.0.1:5432). Figures: docs/BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::unit::Unit;
use ohmnibus::poll::stats::PollStats;
use ohmnibus::store::database::{connect, create_database_if_missing, migrate};
use ohmnibus::store::load_profile::insert_meter_intervals;
use ohmnibus::store::tokens::insert_token;
use ohmnibus::web::state::AppState;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    router: axum::Router,
    token: String,
}

impl Api {
    /// The answer's status and body bytes.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Vec<u8>) {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token));
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("answer");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, bytes.to_vec())
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, bytes) = self.call(method, path, body).await;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status < 300, "{method} {path}: {status} {value}");
        value
    }

    /// Mean time of `path` over about `budget`, and the size of its answer.
    async fn time(&self, path: &str, budget: Duration) -> (Duration, usize) {
        let mut size = 0;
        for _ in 0..3 {
            size = self.call("GET", path, None).await.1.len();
        }
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed() < budget {
            let (status, bytes) = self.call("GET", path, None).await;
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&bytes));
            calls += 1;
        }
        (start.elapsed() / calls, size)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let url = match create_database_if_missing(&server, "ohmnibus_bench_tariffs").await {
        Ok(url) => url,
        Err(error) => {
            println!("tariffs: skipped, no PostgreSQL ({error})");
            return;
        }
    };
    let pool = connect(&url).await.expect("connect");
    migrate(&pool).await.expect("migrate");
    sqlx::query(
        "TRUNCATE load_profile_intervals, devices, buses, tariff_calendar_versions, tariff_calendars \
         RESTART IDENTITY CASCADE",
    )
    .execute(&pool)
    .await
    .expect("truncate");
    sqlx::query("DELETE FROM sites WHERE name = 'Bench site'")
        .execute(&pool)
        .await
        .expect("old site");
    let state = AppState {
        pool: pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        stats: Arc::new(PollStats::default()),
        clock: Clock::System,
        secret_key: None,
        auth: Default::default(),
    };
    let api = Api {
        router: ohmnibus::web::router(state),
        token: insert_token(&pool, "bench", Role::Engineer).await.expect("token"),
    };

    let site = api
        .json(
            "POST",
            "/api/v1/sites",
            Some(json!({"name": "Bench site", "timezone": "Europe/Rome"})),
        )
        .await;
    let calendar = api
        .json(
            "POST",
            "/api/v1/tariff-calendars",
            Some(json!({"preset": "it-arera-f123"})),
        )
        .await;
    api.json(
        "PATCH",
        &format!("/api/v1/sites/{}", site["id"]),
        Some(json!({"default_calendar_id": calendar["id"]})),
    )
    .await;
    let bus = api
        .json(
            "POST",
            "/api/v1/buses",
            Some(json!({"name": "bench", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": 1}})),
        )
        .await;
    let device = api
        .json(
            "POST",
            "/api/v1/devices",
            Some(json!({"name": "A1000", "bus_id": bus["id"], "profile": "a1000",
                        "iec_address": "12345678", "site_id": site["id"]})),
        )
        .await;
    let device = DeviceId(device["id"].as_i64().expect("device id"));

    // March 2026 (the spring change on the 29th), import and export.
    let from = Utc.with_ymd_and_hms(2026, 2, 28, 23, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2026, 3, 31, 22, 0, 0).unwrap();
    let quarters = (to - from).num_minutes() / 15;
    let intervals: Vec<Interval> = (0..quarters)
        .flat_map(|k| {
            let start = from + chrono::Duration::minutes(15 * k);
            ["1-1:1.29.0", "1-1:2.29.0"].into_iter().map(move |obis| Interval {
                obis: obis.parse().expect("code"),
                start,
                minutes: 15,
                value: 10.0 + (k % 96) as f64 * 0.125,
                unit: Unit::KWh,
                meter_status: String::new(),
                quality: Quality::GOOD,
            })
        })
        .collect();
    insert_meter_intervals(&pool, device, &intervals, chrono::Utc::now())
        .await
        .expect("intervals");

    let budget = Duration::from_secs(3);
    let (per, size) = api
        .time(
            &format!(
                "/api/v1/tariff-calendars/{}/classify?from=2025-12-31T23:00:00Z&to=2026-12-31T23:00:00Z&step_minutes=15",
                calendar["id"]
            ),
            budget,
        )
        .await;
    println!("classify a year of quarter hours (it-arera-f123, 35040 steps, {size} bytes): {per:?}");
    let period = "from=2026-02-28T23:00:00Z&to=2026-03-31T22:00:00Z";
    let (per, size) = api
        .time(&format!("/api/v1/devices/{device}/statement?{period}"), budget)
        .await;
    println!(
        "statement of a month ({} intervals in 2 channels, F1/F2/F3, {size} bytes JSON): {per:?}",
        intervals.len()
    );
    let (per, size) = api
        .time(&format!("/api/v1/devices/{device}/statement.csv?{period}"), budget)
        .await;
    println!("the same statement as CSV ({size} bytes): {per:?}");
}
