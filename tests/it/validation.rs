//! Validation in the derivation pass: a COUNTIS E33 (direct, 100 A per its
//! manual) whose u32 energy register (0.01 kWh) wraps and then jumps by more
//! than the circuit can carry in a quarter hour, and one whose register goes
//! back (a meter replaced).

use crate::support::{TestApp, WAIT, add_unpolled_device, eventually, insert_energy_reads, spawn_app_with_clock};
use chrono::{DateTime, TimeZone, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::store::profile_derivation::fetch_derived_intervals;
use serde_json::json;

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, hour, minute, 0).unwrap()
}

/// A COUNTIS E33 on a bus nobody answers on, whose only readings of
/// `1-1:1.8.0` are `reads`; returns it once `count` intervals are derived.
async fn e33_with_reads(app: &TestApp, reads: &[(DateTime<Utc>, f64)], count: usize) -> DeviceId {
    let engineer = app.token(Role::Engineer).await;
    let id = DeviceId(
        add_unpolled_device(
            app,
            &engineer,
            "modbus_tcp",
            json!({"name": "E33", "profile": "countis-e33", "address": 1}),
        )
        .await,
    );
    insert_energy_reads(app, id, "1-1:1.8.0", reads, chrono::Utc::now()).await;
    let derived = eventually(WAIT, || async {
        app.derive_now().await;
        fetch_derived_intervals(&app.pool, id, &"1-1:1.8.0".parse().unwrap())
            .await
            .unwrap()
            .len()
            == count
    })
    .await;
    assert!(derived, "{count} intervals derived");
    id
}

/// The device's counter events: (code, started_at, message).
async fn counter_events(app: &TestApp, id: DeviceId) -> Vec<(String, DateTime<Utc>, String)> {
    sqlx::query_as("SELECT code, started_at, message FROM events WHERE device_id = $1 AND code LIKE 'register_%'")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_wrapped_register_gives_a_rollover_and_an_impossible_quarter_a_spike() {
    let app = spawn_app_with_clock(Clock::manual(at(11, 5))).await;
    // The E33 counts 0 to 999 999.9 kWh (its manual): past that it rolls
    // over to zero, well before its u32 register in 10 Wh would.
    let reads = [
        (at(10, 0), 999_997.00),
        (at(10, 15), 999_999.00),
        // Rolled over: 1 000 000 − 999 999.00 + 1.00 = 2.00 kWh.
        (at(10, 30), 1.00),
        // 30 kWh in a quarter hour: 100 A × 230 V × 3 phases × 0.25 h = 17.25 kWh at most.
        (at(10, 45), 31.00),
        (at(11, 0), 32.00),
    ];
    let id = e33_with_reads(&app, &reads, 4).await;
    let got = fetch_derived_intervals(&app.pool, id, &"1-1:1.8.0".parse().unwrap())
        .await
        .unwrap();
    let expected = [
        (at(10, 0), 2.00, Quality::GOOD),
        (at(10, 15), 2.00, Quality::ROLLOVER),
        (at(10, 30), 30.00, Quality::SPIKE),
        (at(10, 45), 1.00, Quality::GOOD),
    ];
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((start, minutes, value, quality), (want_start, want_value, want_quality)) in got.iter().zip(expected) {
        assert_eq!((*start, *minutes), (want_start, 15));
        assert!((value - want_value).abs() < 1e-6, "{start}: {value}");
        assert_eq!(*quality, want_quality, "{start}");
    }
    // The wrap is in the event log, once, at the start of its interval.
    let events = counter_events(&app, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].0.as_str(), events[0].1), ("register_rollover", at(10, 15)));
    assert!(events[0].2.contains("1-1:1.8.0"), "{}", events[0].2);
}

#[tokio::test]
async fn a_register_that_goes_back_gives_no_consumption_and_an_event() {
    let app = spawn_app_with_clock(Clock::manual(at(11, 5))).await;
    let reads = [
        (at(10, 0), 5_000.00),
        (at(10, 15), 5_001.00),
        // A new meter, starting near zero: far from the register's wrap point.
        (at(10, 30), 3.00),
        (at(10, 45), 4.50),
    ];
    let id = e33_with_reads(&app, &reads, 3).await;
    let got: Vec<(DateTime<Utc>, f64, Quality)> = fetch_derived_intervals(&app.pool, id, &"1-1:1.8.0".parse().unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|(start, _, value, quality)| (start, value, quality))
        .collect();
    assert_eq!(
        got,
        [
            (at(10, 0), 1.00, Quality::GOOD),
            (at(10, 15), 0.00, Quality::NEGATIVE_DELTA),
            (at(10, 30), 1.50, Quality::GOOD),
        ]
    );
    let events = counter_events(&app, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].0.as_str(), events[0].1), ("register_decreased", at(10, 15)));
}
