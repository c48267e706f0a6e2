//! Server-side billing periods for a meter that keeps no history (a COUNTIS
//! E33) on a site in New York whose schedule falls in the hour skipped by
//! the 2026 spring DST change, and the API that sets the schedule.

use std::sync::Arc;

use crate::support::{add_unpolled_device, spawn_app_with_clock};
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use ohmnibus::derive::{DeriveServices, run_passes};
use ohmnibus::device::reading::Reading;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::BusId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::source::BillingSource;
use ohmnibus::store::billing::fetch_billing_periods;
use ohmnibus::store::readings::insert_readings;
use serde_json::json;

fn utc(d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, mi, 0).unwrap()
}

fn import(value: f64, at: DateTime<Utc>) -> Reading {
    Reading {
        obis: "1-1:1.8.0".parse().unwrap(),
        value,
        unit: "kWh".parse().unwrap(),
        read_at: at,
        captured_at: None,
        quality: Quality::GOOD,
    }
}

/// `GET /api/v1/devices/{id}/billing-periods`, answered 200.
async fn billing_periods(app: &crate::support::TestApp, token: &str, id: impl std::fmt::Display) -> serde_json::Value {
    let (status, body) = app
        .request(
            "GET",
            &format!("/api/v1/devices/{id}/billing-periods"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A port nothing listens on: the device is never read, only the readings
/// the test stores exist.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_server_closes_a_period_at_the_first_instant_after_the_dst_gap() {
    let clock = Clock::manual(utc(8, 9, 0));
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    sqlx::query("UPDATE sites SET time_zone = 'America/New_York'")
        .execute(&app.pool)
        .await
        .unwrap();
    let bus =
        json!({"name": "line-1", "transport": {"kind": "modbus_tcp", "host": "127.0.0.1", "port": closed_port()}});
    let (status, bus) = app.request("POST", "/api/v1/buses", Some(&engineer), Some(bus)).await;
    assert_eq!(status, StatusCode::CREATED, "{bus}");
    let bus_id = BusId(bus["id"].as_i64().unwrap());
    let device = json!({"name": "Lighting", "profile": "countis-e33", "address": 5});
    let id = app.create_device(&engineer, bus_id, device).await;
    let site = bus["site_id"].as_i64().unwrap_or(1);
    let (status, body) = app
        .request(
            "PATCH",
            &format!("/api/v1/sites/{site}"),
            Some(&engineer),
            Some(json!({"billing_day": 8, "billing_hour": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["billing_day"], 8);
    assert_eq!(body["billing_hour"], 2);

    let services = DeriveServices {
        pool: app.pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        clock: clock.clone(),
    };
    // 2026-03-08 02:00 New York does not exist (EST → EDT): the period
    // closes at 03:00 EDT = 07:00 UTC. Only a read before it: nothing yet.
    insert_readings(&app.pool, &[(id, import(100.0, utc(8, 6, 30)))], chrono::Utc::now())
        .await
        .unwrap();
    run_passes(&services).await;
    assert!(fetch_billing_periods(&app.pool, id).await.unwrap().is_empty());

    // A read after it: 07:00 is halfway from 06:30 to 07:30, so the register
    // stood at 100 + (102 − 100) / 2 = 101 kWh.
    insert_readings(&app.pool, &[(id, import(102.0, utc(8, 7, 30)))], chrono::Utc::now())
        .await
        .unwrap();
    run_passes(&services).await;
    run_passes(&services).await;
    let periods = fetch_billing_periods(&app.pool, id).await.unwrap();
    assert_eq!(periods.len(), 1, "{periods:?}");
    let period = &periods[0];
    assert_eq!(period.reset_at, utc(8, 7, 0));
    assert_eq!(period.source, BillingSource::Server);
    assert_eq!(period.quality.names(), vec!["interpolated"]);
    assert_eq!(period.registers.len(), 1);
    assert_eq!(period.registers[0].obis.to_string(), "1-1:1.8.0");
    assert_eq!(period.registers[0].unit.as_str(), "kWh");
    assert!(
        (period.registers[0].value - 101.0).abs() < 1e-9,
        "{}",
        period.registers[0].value
    );

    let resets: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE device_id = $1 AND code = 'billing_reset'")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(resets, 1);

    // The billing page shows the period with its register, by name.
    let viewer = app.token(Role::Viewer).await;
    let (status, page) = app
        .request("GET", &format!("/devices/{id}/billing"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains("2026-03-08 07:00"), "the reset time: {page}");
    assert!(
        page.contains("Closed by the server") && page.contains("flags: interpolated"),
        "{page}"
    );
    assert!(page.contains("1-1:1.8.0") && page.contains("101.000"), "{page}");
    let (status, _) = app.request("GET", "/devices/999999/billing", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn the_schedule_is_validated_and_set_by_engineers_only() {
    let app = crate::support::spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let viewer = app.token(Role::Viewer).await;
    let (status, list) = app.request("GET", "/api/v1/sites", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let site = &list["sites"][0];
    assert_eq!(site["time_zone"], "UTC");
    assert!(site["billing_day"].is_null());
    let id = site["id"].as_i64().unwrap();
    let path = format!("/api/v1/sites/{id}");

    let (status, _) = app
        .request(
            "PATCH",
            &path,
            Some(&viewer),
            Some(json!({"billing_day": 1, "billing_hour": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, field) in [
        (json!({"billing_day": 29, "billing_hour": 0}), "billing_day"),
        (json!({"billing_day": 0, "billing_hour": 0}), "billing_day"),
        (json!({"billing_day": 1, "billing_hour": 24}), "billing_hour"),
        (json!({"billing_day": 1, "billing_hour": null}), "billing_hour"),
    ] {
        let (status, answer) = app.request("PATCH", &path, Some(&engineer), Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body} → {message}");
    }
    let (status, answer) = app
        .request(
            "PATCH",
            &path,
            Some(&engineer),
            Some(json!({"billing_day": 28, "billing_hour": 23})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = app
        .request(
            "PATCH",
            &path,
            Some(&engineer),
            Some(json!({"billing_day": null, "billing_hour": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["billing_day"].is_null());
    let (status, _) = app
        .request(
            "PATCH",
            "/api/v1/sites/999",
            Some(&engineer),
            Some(json!({"billing_day": 1, "billing_hour": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// Each period says when it began and ended, and a maximum demand stamped
/// outside its period is told. Laid out by hand: a meter's resets on
/// Sep 1, Oct 1 and Nov 1 (00:00 UTC); the October period's demand
/// occurred on Oct 14 (inside), the November one's on Sep 20 (outside).
#[tokio::test]
async fn billing_periods_give_their_bounds_and_flag_a_demand_outside_them() {
    use ohmnibus::domain::ids::DeviceId;
    use ohmnibus::domain::unit::Unit;
    use ohmnibus::metering::billing::{BillingPeriod, BillingRegister};
    use ohmnibus::store::billing::insert_billing_periods;

    let first = |month: u32| Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap();
    let app = spawn_app_with_clock(Clock::manual(first(12))).await;
    let engineer = app.token(Role::Engineer).await;
    let body = json!({"name": "TH40C", "profile": "th40c", "address": 1});
    let id = DeviceId(add_unpolled_device(&app, &engineer, "modbus_tcp", body).await);
    let demand = |captured_at| BillingRegister {
        obis: "1-1:1.6.0".parse().unwrap(),
        value: 12.5,
        unit: Unit::KW,
        captured_at: Some(captured_at),
    };
    let period = |month: u32, registers: Vec<BillingRegister>| BillingPeriod {
        reset_at: first(month),
        source: BillingSource::Meter,
        reset_count: None,
        registers,
        quality: Quality::GOOD,
    };
    let october = Utc.with_ymd_and_hms(2026, 10, 14, 9, 15, 0).unwrap();
    let september = Utc.with_ymd_and_hms(2026, 9, 20, 9, 15, 0).unwrap();
    let periods = [
        period(9, Vec::new()),
        period(10, Vec::new()),
        period(11, vec![demand(october)]),
        period(12, vec![demand(september)]),
    ];
    insert_billing_periods(&app.pool, id, &periods, first(12))
        .await
        .unwrap();

    let body = billing_periods(&app, &engineer, id).await;
    let listed = body["periods"].as_array().unwrap();
    let bounds: Vec<(String, String)> = listed
        .iter()
        .map(|p| {
            (
                p["start"].as_str().unwrap_or("null").to_owned(),
                p["end"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let stamp = |month: u32| format!("2026-{month:02}-01T00:00:00Z");
    assert_eq!(
        bounds,
        vec![
            (stamp(11), stamp(12)),
            (stamp(10), stamp(11)),
            (stamp(9), stamp(10)),
            ("null".into(), stamp(9))
        ]
    );
    // The period ending Dec 1 holds a demand of Sep 20: outside; the one
    // ending Nov 1 a demand of Oct 14: inside.
    assert_eq!(listed[0]["registers"][0]["captured_outside_period"], true);
    assert_eq!(listed[1]["registers"][0]["captured_outside_period"], false);
    let (_, page) = app
        .request("GET", &format!("/devices/{id}/billing"), Some(&engineer), None)
        .await;
    assert_eq!(page.as_str().unwrap().matches("outside the period").count(), 1);
}

/// A COUNTIS E33 replaced between two reads around a billing instant: the
/// server's period holds the old meter's register, not a line drawn from
/// the old meter's 48 000 kWh to the new one's 12 kWh. Laid out by hand:
/// schedule day 1 at 00:00 UTC; the old meter read 47 900 kWh on March 31
/// 12:00 and 48 000 kWh at 23:00; the new meter, whose replacement was
/// confirmed from its first read (April 1 01:00, 12 kWh), read 20 kWh at
/// 02:00. The April 1 period: 48 000 kWh, estimated (the old meter's last
/// read; the line would give 24 006 kWh).
#[tokio::test]
async fn a_period_at_a_meter_replacement_holds_the_meter_in_place_not_a_line_across_two() {
    let april = |h: u32| Utc.with_ymd_and_hms(2026, 4, 1, h, 0, 0).unwrap();
    let clock = Clock::manual(april(3));
    let app = spawn_app_with_clock(clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let body = json!({"name": "Lighting", "profile": "countis-e33", "address": 5});
    let id = add_unpolled_device(&app, &engineer, "modbus_tcp", body).await;
    let site: i64 = sqlx::query_scalar("SELECT site_id FROM devices WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (status, body) = app
        .request(
            "PATCH",
            &format!("/api/v1/sites/{site}"),
            Some(&engineer),
            Some(json!({"billing_day": 1, "billing_hour": 0, "time_zone": "UTC"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reads = [
        import(47_900.0, utc(31, 12, 0)),
        import(48_000.0, utc(31, 23, 0)),
        import(12.0, april(1)),
        import(20.0, april(2)),
    ];
    let reads: Vec<_> = reads
        .into_iter()
        .map(|r| (ohmnibus::domain::ids::DeviceId(id), r))
        .collect();
    insert_readings(&app.pool, &reads, april(3)).await.unwrap();
    // The replacement as a confirmation leaves it: the second series began
    // at the new meter's first read.
    sqlx::query(
        "INSERT INTO device_identities (device_id, expected, expected_since, seen, seen_at, series, series_started_at) \
         VALUES ($1, 'E33 new', $2, 'E33 new', $3, 2, $2)",
    )
    .bind(id)
    .bind(april(1))
    .bind(april(2))
    .execute(&app.pool)
    .await
    .unwrap();

    let services = DeriveServices {
        pool: app.pool.clone(),
        profiles: Arc::new(ProfileSet::builtin()),
        clock: clock.clone(),
    };
    run_passes(&services).await;
    let periods = fetch_billing_periods(&app.pool, ohmnibus::domain::ids::DeviceId(id))
        .await
        .unwrap();
    let april_first: Vec<_> = periods.iter().filter(|p| p.reset_at == april(0)).collect();
    assert_eq!(april_first.len(), 1, "{periods:?}");
    let period = april_first[0];
    assert_eq!(period.source, BillingSource::Server);
    assert_eq!(period.registers.len(), 1, "{period:?}");
    assert_eq!(period.registers[0].value, 48_000.0, "{period:?}");
    assert_eq!(period.quality.names(), vec!["estimated"]);

    // A month on, the new meter's May period: its registers and April's
    // are two meters', which the API and the billing page say. Its value
    // is on the new meter's line: 20 kWh at April 1 02:00, 900 kWh at May 1
    // 01:00 (719 h), so 20 + 880 × 718 / 719 at May 1 00:00.
    let may = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    let new_read = (
        ohmnibus::domain::ids::DeviceId(id),
        import(900.0, may + chrono::TimeDelta::hours(1)),
    );
    insert_readings(&app.pool, &[new_read], may).await.unwrap();
    clock.advance(may + chrono::TimeDelta::hours(2) - april(3));
    run_passes(&services).await;
    let body = billing_periods(&app, &engineer, id).await;
    let listed = body["periods"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{body}");
    assert_eq!(listed[0]["end"], "2026-05-01T00:00:00Z");
    assert_eq!(listed[0]["start"], "2026-04-01T00:00:00Z");
    assert_eq!(listed[0]["meter_replaced_at"], "2026-04-01T01:00:00Z");
    assert_eq!(listed[0]["flags"], json!(["interpolated"]));
    let value = listed[0]["registers"][0]["value"].as_f64().unwrap();
    assert!((value - (20.0 + 880.0 * 718.0 / 719.0)).abs() < 1e-6, "{value}");
    // April's period ends before the replacement (and is the oldest).
    assert!(listed[1].get("meter_replaced_at").is_none(), "{body}");
    let (_, page) = app
        .request("GET", &format!("/devices/{id}/billing"), Some(&engineer), None)
        .await;
    let page = page.as_str().unwrap();
    assert_eq!(page.matches("Meter replaced on").count(), 1, "{page}");
}
