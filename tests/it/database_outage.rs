//! The database goes away, both ways (it refuses connections; its network
//! goes silent), while the application polls a meter: polling keeps its
//! rate, `/readyz` says not ready within seconds, readings wait in memory
//! and then in the spill file, and once the database is back every
//! reading taken meanwhile is stored exactly once.
//!
//! A quarantined device's readings, held aside, go the same way and come
//! back held.
//!
//! The outage lasts `OHMNIBUS_OUTAGE_SECONDS` (6 unless set; the 60 s drill
//! of docs/RELIABILITY.md sets 60).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use ohmnibus::domain::role::Role;
use serde_json::json;
use tokio::time::Instant;

use crate::support::{
    HELD, Link, STORED, U12_ADDRESS, U12_OBIS, WAIT, add_bus, add_device, counting_meter, eventually,
    insert_countis_expecting, polls_in, spawn_app_behind_proxy, spill_dir,
};

fn outage_length() -> Duration {
    let seconds = std::env::var("OHMNIBUS_OUTAGE_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(6);
    Duration::from_secs(seconds)
}

async fn readyz(app: &crate::support::TestApp) -> StatusCode {
    app.request("GET", "/readyz", None, None).await.0
}

async fn outage(link: Link) {
    let (app, proxy) = spawn_app_behind_proxy().await;
    let engineer = app.token(Role::Engineer).await;
    let (meter_port, answered) = counting_meter().await;
    let bus = add_bus(&app, &engineer, "line", "modbus_tcp", meter_port).await;
    let device = json!({"name": "incomer", "profile": "countis-e43", "address": 1,
                        "schedule": {"realtime_seconds": 1, "energy_seconds": 3600, "history_seconds": 3600}});
    let device = add_device(&app, &engineer, &bus, device).await;
    let stored_polls = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(DISTINCT read_at) FROM readings WHERE device_id = $1 AND obis = $2")
            .bind(device)
            .bind(U12_OBIS)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert!(
        eventually(WAIT, || async { stored_polls().await >= 2 }).await,
        "no reading stored with the database up"
    );
    assert_eq!(readyz(&app).await, StatusCode::OK);

    let stats = std::sync::Arc::clone(&app.app.state.stats);
    proxy.set(link);
    let cut = Instant::now();
    let polls_at_cut = answered.at(U12_ADDRESS);

    // Not ready within a few seconds, whichever way the database went.
    assert!(
        eventually(Duration::from_secs(4), || async {
            readyz(&app).await == StatusCode::SERVICE_UNAVAILABLE
        })
        .await,
        "/readyz still ready 4 s into an outage ({link:?})"
    );
    let not_ready_after = cut.elapsed();
    assert!(
        not_ready_after < Duration::from_secs(5),
        "/readyz took {not_ready_after:?} to say not ready"
    );

    tokio::time::sleep_until(cut + outage_length()).await;
    let polls_in_outage = answered.at(U12_ADDRESS) - polls_at_cut;
    let spilled = stats.readings_spilled.load(Ordering::SeqCst);
    let spill_file = spill_dir(&app.db).join(ohmnibus::poll::spill::SPILL_FILE);
    let spill_bytes = std::fs::metadata(&spill_file).map(|m| m.len()).unwrap_or(0);
    // Polled every second, as with the database up (a poll may straddle either end).
    let expected = outage_length().as_secs() as usize;
    assert!(
        polls_in_outage + 1 >= expected,
        "{polls_in_outage} real-time reads in a {expected} s outage ({link:?})"
    );
    assert!(spilled > 0, "nothing spilled in a {expected} s outage ({link:?})");
    assert!(
        spill_bytes > 0,
        "the spill file {} is empty during the outage",
        spill_file.display()
    );

    proxy.set(Link::Open);
    let back = Instant::now();
    assert!(
        eventually(WAIT, || async {
            stats.readings_replayed.load(Ordering::SeqCst) >= stats.readings_spilled.load(Ordering::SeqCst)
                && readyz(&app).await == StatusCode::OK
        })
        .await,
        "the spilled readings were not replayed once the database was back ({link:?})"
    );
    let replayed_after = back.elapsed();
    // Stopped, the database kept for the checks below.
    let db = app.stop_keeping_database().await;
    let pool = db.pool.clone();
    drop(proxy);
    let queued = stats.readings_queued.load(Ordering::SeqCst);
    let polls_answered = answered.at(U12_ADDRESS);

    // Every real-time read the meter answered is stored, once. (A stop
    // that falls between two requests of one read, should the read take
    // more than one, drops that read: the meter counted its first answer.)
    let stored: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT read_at) FROM readings WHERE device_id = $1 AND obis = $2")
            .bind(device)
            .bind(U12_OBIS)
            .fetch_one(&pool)
            .await
            .unwrap();
    let stored = stored as usize;
    assert!(
        stored == polls_answered || stored + 1 == polls_answered,
        "{stored} real-time reads stored, {polls_answered} answered by the meter ({link:?})"
    );
    // And every reading the worker handed over (all codes), no more, no fewer.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM readings WHERE device_id = $1")
        .bind(device)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        rows as u64, queued,
        "readings stored vs handed over by the worker ({link:?})"
    );
    println!(
        "{link:?} for {expected} s: not ready after {not_ready_after:?}; {polls_in_outage} real-time reads in the outage; \
         {spilled} readings spilled ({spill_bytes} bytes); all replayed {replayed_after:?} after the database was back; \
         {rows} readings stored, {queued} handed over"
    );
    assert_eq!(
        std::fs::metadata(&spill_file).unwrap().len(),
        0,
        "the spill file is emptied once replayed"
    );
    std::fs::remove_dir_all(spill_dir(&db)).unwrap();
}

#[tokio::test]
async fn a_database_refusing_connections_loses_no_reading() {
    outage(Link::Refusing).await;
}

#[tokio::test]
async fn a_database_gone_silent_loses_no_reading() {
    outage(Link::Frozen).await;
}

/// The complete lines of the spill file: (marked held, not marked).
fn spilled_lines(file: &std::path::Path) -> (usize, usize) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|line| line.ends_with('}')).collect();
    let held = lines.iter().filter(|line| line.contains("\"held\":true")).count();
    (held, lines.len() - held)
}

/// A device whose installation record names another meter than the one
/// answering is quarantined from its first read. Its readings taken while
/// the database refuses connections are spilled marked held and, once it
/// is back, stored in `held_readings`, each read the meter answered once
/// and none in `readings`; the engineer's confirmation then releases them
/// as usual.
#[tokio::test]
async fn a_quarantined_devices_readings_are_spilled_held_and_stored_held_once() {
    let (app, proxy) = spawn_app_behind_proxy().await;
    let engineer = app.token(Role::Engineer).await;
    let (meter_port, answered) = counting_meter().await;
    // The counting meter answers zeros: its serial words are not these.
    let device = insert_countis_expecting(&app.pool, meter_port, "2026-0000-0001").await;
    let pool = app.pool.clone();
    assert!(
        eventually(WAIT, || async { polls_in(&pool, HELD, device).await >= 2 }).await,
        "no reading held with the database up"
    );
    assert_eq!(
        polls_in(&pool, STORED, device).await,
        0,
        "the other meter's reads are held"
    );

    let stats = std::sync::Arc::clone(&app.app.state.stats);
    let spill_file = spill_dir(&app.db).join(ohmnibus::poll::spill::SPILL_FILE);
    proxy.set(Link::Refusing);
    let cut = answered.at(U12_ADDRESS);
    assert!(
        eventually(WAIT, || async {
            answered.at(U12_ADDRESS) >= cut + 3 && spilled_lines(&spill_file).0 > 0
        })
        .await,
        "nothing held spilled in the outage: {} reads since the cut",
        answered.at(U12_ADDRESS) - cut
    );
    let (held_lines, plain_lines) = spilled_lines(&spill_file);
    assert_eq!(plain_lines, 0, "every spilled reading of the device is marked held");

    proxy.set(Link::Open);
    assert!(
        eventually(WAIT, || async {
            stats.readings_replayed.load(Ordering::SeqCst) >= stats.readings_spilled.load(Ordering::SeqCst)
                && std::fs::metadata(&spill_file).map(|m| m.len()).unwrap_or(0) == 0
        })
        .await,
        "the spilled held readings were not replayed"
    );
    assert!(stats.readings_replayed.load(Ordering::SeqCst) >= held_lines as u64);
    // Every read answered in the outage is held.
    assert!(
        eventually(WAIT, || async { polls_in(&pool, HELD, device).await >= cut + 3 }).await,
        "{} reads held, {} answered by the end of the outage",
        polls_in(&pool, HELD, device).await,
        cut + 3
    );
    assert_eq!(polls_in(&pool, STORED, device).await, 0);

    // Confirmed, the held readings become the device's.
    let (_, shown) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{device}/identity"),
            Some(&engineer),
            None,
        )
        .await;
    let seen = shown["seen"].as_str().expect("an identity seen").to_owned();
    assert_ne!(seen, "2026-0000-0001");
    let held_before: i64 = sqlx::query_scalar("SELECT count(*) FROM held_readings WHERE device_id = $1")
        .bind(device)
        .fetch_one(&pool)
        .await
        .unwrap();
    let (status, confirmed) = app
        .request(
            "POST",
            &format!("/api/v1/devices/{device}/identity/confirm"),
            Some(&engineer),
            Some(json!({"identity": seen})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert!(
        confirmed["released_readings"].as_i64().unwrap() >= held_before,
        "{confirmed}"
    );
    let released = polls_in(&pool, STORED, device).await;
    assert!(
        eventually(WAIT, || async { polls_in(&pool, STORED, device).await > released }).await,
        "the confirmed meter's reads are not stored"
    );

    let db = app.stop_keeping_database().await;
    drop(proxy);
    let polls_answered = answered.at(U12_ADDRESS);
    // Every read the meter answered is stored once, held or (released or
    // read after the confirmation) the device's, never both.
    let stored = polls_in(&db.pool, STORED, device).await;
    let held = polls_in(&db.pool, HELD, device).await;
    let both: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM readings r JOIN held_readings h USING (device_id, obis, read_at) WHERE r.device_id = $1",
    )
    .bind(device)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(both, 0, "a read stored both held and as the device's");
    let total = stored + held;
    assert!(
        total == polls_answered || total + 1 == polls_answered,
        "{stored} reads stored and {held} held, {polls_answered} answered by the meter"
    );
    std::fs::remove_dir_all(spill_dir(&db)).ok();
}
