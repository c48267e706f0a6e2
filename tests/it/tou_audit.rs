//! The TOU audit: meters with the same March 2026 load profile in Rome and
//! their own tariff registers at both ends of the month, on a site billed
//! under the Italian F1/F2/F3 bands. One meter's registers agree with the
//! server's split within 1 %, one's put 40 kWh of F1 in F2 (as a meter
//! whose calendar or clock is wrong would), one has a hole in its load
//! profile, and two agree but roll over at the top of their digits during
//! the month. Band totals are counted here quarter hour by quarter hour.

use crate::support::{TestApp, add_bus, add_device, spawn_app_deriving_on_demand};
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Europe::Rome;
use ohmnibus::device::profile_interval::Interval;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::source::BillingSource;
use ohmnibus::domain::unit::Unit;
use ohmnibus::metering::billing::{BillingPeriod, BillingRegister};
use ohmnibus::store::billing::insert_billing_periods;
use ohmnibus::store::load_profile::insert_meter_intervals;
use serde_json::{Value, json};

fn period() -> (DateTime<Utc>, DateTime<Utc>) {
    let from = Rome.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
    let to = Rome.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap().with_timezone(&Utc);
    (from, to)
}

/// F1 Monday–Friday 08–19, F2 Monday–Friday 07–08 and 19–23 and Saturday
/// 07–23, F3 the rest (ARERA 181/06; no holiday in March 2026).
fn band(at: DateTime<Utc>) -> usize {
    let local = at.with_timezone(&Rome);
    let hour = local.hour();
    match local.weekday() {
        Weekday::Sun => 2,
        Weekday::Sat if (7..23).contains(&hour) => 1,
        Weekday::Sat => 2,
        _ => match hour {
            8..=18 => 0,
            7 | 19..=22 => 1,
            _ => 2,
        },
    }
}

/// Quarter hours of the month, 1 kWh each on weekdays' working hours and
/// 0.5 kWh otherwise; `skip` leaves one day out.
fn quarters(skip: Option<u32>) -> Vec<(DateTime<Utc>, f64)> {
    let (from, to) = period();
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let value = if band(at) == 0 { 1.0 } else { 0.5 };
        if skip != Some(at.with_timezone(&Rome).day()) {
            out.push((at, value));
        }
        at += Duration::minutes(15);
    }
    out
}

/// kWh per band, F1..F3.
fn per_band(quarters: &[(DateTime<Utc>, f64)]) -> [f64; 3] {
    let mut sums = [0.0; 3];
    for (at, value) in quarters {
        sums[band(*at)] += value;
    }
    sums
}

async fn store_intervals(app: &TestApp, id: i64, quarters: &[(DateTime<Utc>, f64)]) {
    let intervals: Vec<Interval> = quarters
        .iter()
        .map(|(start, value)| Interval {
            obis: "1-1:1.29.0".parse().unwrap(),
            start: *start,
            minutes: 15,
            value: *value,
            unit: Unit::KWh,
            meter_status: "00".into(),
            quality: Quality::GOOD,
        })
        .collect();
    insert_meter_intervals(&app.pool, DeviceId(id), &intervals, chrono::Utc::now())
        .await
        .unwrap();
}

/// The meter's billing periods at both ends of the month: rates 1–3 grew
/// by `grew` kWh from 1000, 2000 and 3000 kWh.
async fn store_periods(app: &TestApp, id: i64, grew: [f64; 3]) {
    store_periods_from(app, id, [1000.0, 2000.0, 3000.0], grew, None).await;
}

/// The same from `start` kWh, for a meter whose registers roll over to 0
/// at `wrap` kWh.
async fn store_periods_from(app: &TestApp, id: i64, start: [f64; 3], grew: [f64; 3], wrap: Option<f64>) {
    let (from, to) = period();
    let registers = |values: [f64; 3]| -> Vec<BillingRegister> {
        let mut registers: Vec<BillingRegister> = values
            .iter()
            .enumerate()
            .map(|(i, value)| BillingRegister {
                obis: format!("1-1:1.8.{}", i + 1).parse().unwrap(),
                value: *value,
                unit: Unit::KWh,
                captured_at: None,
            })
            .collect();
        registers.push(BillingRegister {
            obis: "1-1:1.8.0".parse().unwrap(),
            value: values.iter().sum(),
            unit: Unit::KWh,
            captured_at: None,
        });
        registers
    };
    let end: [f64; 3] = std::array::from_fn(|i| {
        let grown = start[i] + grew[i];
        wrap.map_or(grown, |wrap| grown % wrap)
    });
    let period = |reset_at, values| BillingPeriod {
        reset_at,
        source: BillingSource::Meter,
        reset_count: None,
        registers: registers(values),
        quality: Quality::GOOD,
    };
    insert_billing_periods(
        &app.pool,
        DeviceId(id),
        &[period(from, start), period(to, end)],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
}

async fn events(app: &TestApp, token: &str, id: i64) -> Vec<Value> {
    let (status, body) = app
        .request("GET", &format!("/api/v1/events?device_id={id}"), Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["code"] == "tou_mismatch")
        .cloned()
        .collect()
}

async fn outcome(app: &TestApp, id: i64) -> Option<String> {
    sqlx::query_scalar(
        "SELECT a.outcome FROM tou_audits a JOIN billing_periods p ON p.id = a.billing_period_id \
         WHERE p.device_id = $1",
    )
    .bind(id)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn tariff_registers_off_by_more_than_the_tolerance_raise_one_tou_mismatch_naming_the_bands() {
    // Two months after the period: the estimation pass (40 days back)
    // leaves the hole of the third meter alone.
    let app = spawn_app_deriving_on_demand(Clock::manual(period().1 + Duration::days(60))).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let bus = add_bus(&app, &engineer, "line", "modbus_tcp", 1).await;
    let mut ids = Vec::new();
    for (address, name) in [(1, "Agrees"), (2, "Shifted"), (3, "Holey"), (4, "Rolled over")] {
        let device = json!({"name": name, "profile": "th40c", "address": address});
        ids.push(add_device(&app, &engineer, &bus, device).await);
    }
    // A TH40C set to three decimals: 8 digits roll over after 99 999.999
    // kWh (TH40C manual, "Caratteristiche"), not after 999 999.99.
    let device = json!({"name": "Rolled over at 3 decimals", "profile": "th40c", "address": 5});
    ids.push(add_device(&app, &engineer, &bus, device).await);
    let (status, body) = app
        .request(
            "PATCH",
            &format!("/api/v1/devices/{}", ids[4]),
            Some(&engineer),
            Some(json!({"energy_decimals": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, calendar) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"preset": "it-arera-f123"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{calendar}");
    let (status, bus_body) = app
        .request("GET", &format!("/api/v1/buses/{bus}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{bus_body}");
    let site = bus_body["site_id"].as_i64().unwrap_or(1);
    let (status, body) = app
        .request(
            "PATCH",
            &format!("/api/v1/sites/{site}"),
            Some(&engineer),
            Some(json!({"default_calendar_id": calendar["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let full = quarters(None);
    let split = per_band(&full);
    let total: f64 = split.iter().sum();
    // Within tolerance: 0.5 % of the month's energy moved from F1 to F3.
    let nudge = total * 0.005;
    for id in &ids {
        let data = if *id == ids[2] {
            quarters(Some(17))
        } else {
            full.clone()
        };
        store_intervals(&app, *id, &data).await;
    }
    store_periods(&app, ids[0], [split[0] - nudge, split[1], split[2] + nudge]).await;
    store_periods(&app, ids[1], [split[0] - 40.0, split[1] + 40.0, split[2]]).await;
    store_periods(&app, ids[2], [split[0] - 40.0, split[1] + 40.0, split[2]]).await;
    assert!(40.0 > total * 0.01, "the shift must exceed 1 % of {total} kWh");
    // Registers a few kWh below the top roll over during the month: F1
    // and F3 of the fourth meter end below where they started, as do F1
    // of the fifth (whose top is lower). A rollover is no mismatch.
    let grew = [split[0] - nudge, split[1], split[2] + nudge];
    store_periods_from(&app, ids[3], [999_990.0, 2000.0, 999_999.0], grew, Some(1_000_000.0)).await;
    store_periods_from(&app, ids[4], [99_990.0, 2000.0, 3000.0], grew, Some(100_000.0)).await;

    app.derive_now().await;
    app.derive_now().await;

    assert_eq!(outcome(&app, ids[0]).await.as_deref(), Some("matched"));
    assert_eq!(outcome(&app, ids[1]).await.as_deref(), Some("mismatch"));
    assert_eq!(outcome(&app, ids[2]).await.as_deref(), Some("incomplete"));
    assert_eq!(outcome(&app, ids[3]).await.as_deref(), Some("matched"));
    assert_eq!(outcome(&app, ids[4]).await.as_deref(), Some("matched"));
    assert!(events(&app, &viewer, ids[0]).await.is_empty());
    assert!(events(&app, &viewer, ids[3]).await.is_empty());
    assert!(events(&app, &viewer, ids[4]).await.is_empty());
    assert!(events(&app, &viewer, ids[2]).await.is_empty());
    let raised = events(&app, &viewer, ids[1]).await;
    assert_eq!(raised.len(), 1, "one event per period, however many rounds: {raised:?}");
    let event = &raised[0];
    assert_eq!(event["severity"], "warning");
    assert_eq!(
        event["started_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(),
        period().1
    );
    let message = event["message"].as_str().unwrap();
    assert!(message.contains("bands F1, F2"), "{message}");
    assert!(
        message.contains("1-1:1.8.1") && message.contains("1-1:1.8.2"),
        "{message}"
    );
    assert!(!message.contains("F3 ("), "{message}");
    let meter_f1 = format!("meter {:.3} kWh, server {:.3} kWh", split[0] - 40.0, split[0]);
    assert!(message.contains(&meter_f1), "{message}");
}

/// The last day of March, the hole of the retry test: at the end of the
/// profile, so no estimate fills it (nothing measured after it).
const LATE_DAY: u32 = 31;

/// The quarters of [`LATE_DAY`] alone.
fn late_day() -> Vec<(DateTime<Utc>, f64)> {
    quarters(None)
        .into_iter()
        .filter(|(at, _)| at.with_timezone(&Rome).day() == LATE_DAY)
        .collect()
}

#[tokio::test]
async fn an_incomplete_audit_is_retried_when_the_missing_intervals_arrive_within_45_days() {
    let (_, to) = period();
    let clock = Clock::manual(to + Duration::days(1));
    let app = spawn_app_deriving_on_demand(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let (status, calendar) = app
        .request(
            "POST",
            "/api/v1/tariff-calendars",
            Some(&engineer),
            Some(json!({"preset": "it-arera-f123"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{calendar}");
    // The meters sit on a site of their own, not their bus's (which has no
    // calendar): the audit follows the device's site.
    let (status, site) = app
        .request(
            "POST",
            "/api/v1/sites",
            Some(&engineer),
            Some(json!({"name": "Plant A", "timezone": "Europe/Rome"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{site}");
    let (status, body) = app
        .request(
            "PATCH",
            &format!("/api/v1/sites/{}", site["id"]),
            Some(&engineer),
            Some(json!({"default_calendar_id": calendar["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bus = add_bus(&app, &engineer, "line", "modbus_tcp", 1).await;
    let mut ids = Vec::new();
    for (address, name) in [(1, "Read late"), (2, "Read too late")] {
        let device = json!({"name": name, "profile": "th40c", "address": address, "site_id": site["id"]});
        ids.push(add_device(&app, &engineer, &bus, device).await);
    }
    let split = per_band(&quarters(None));
    for id in &ids {
        store_intervals(&app, *id, &quarters(Some(LATE_DAY))).await;
        // 40 kWh of F1 counted in F2: a mismatch once the data is whole.
        store_periods(&app, *id, [split[0] - 40.0, split[1] + 40.0, split[2]]).await;
    }

    app.derive_now().await;
    for id in &ids {
        assert_eq!(outcome(&app, *id).await.as_deref(), Some("incomplete"));
        assert!(events(&app, &viewer, *id).await.is_empty());
    }

    let audited_at = |id: i64| {
        sqlx::query_scalar::<_, DateTime<Utc>>(
            "SELECT a.audited_at FROM tou_audits a JOIN billing_periods p ON p.id = a.billing_period_id \
             WHERE p.device_id = $1",
        )
        .bind(id)
        .fetch_one(&app.pool)
    };
    let first_try = audited_at(ids[1]).await.unwrap();

    // The first meter's last day arrives: the next pass compares.
    store_intervals(&app, ids[0], &late_day()).await;
    app.derive_now().await;
    app.derive_now().await;
    // Nothing new of the second meter's period: its audit was not redone.
    assert_eq!(audited_at(ids[1]).await.unwrap(), first_try);
    assert_eq!(outcome(&app, ids[0]).await.as_deref(), Some("mismatch"));
    let raised = events(&app, &viewer, ids[0]).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(
        raised[0]["message"].as_str().unwrap().contains("bands F1, F2"),
        "{raised:?}"
    );

    // The second meter's arrives 45 days after the period: too late.
    clock.advance(Duration::days(45));
    store_intervals(&app, ids[1], &late_day()).await;
    app.derive_now().await;
    assert_eq!(outcome(&app, ids[1]).await.as_deref(), Some("incomplete"));
    assert!(events(&app, &viewer, ids[1]).await.is_empty());
}
