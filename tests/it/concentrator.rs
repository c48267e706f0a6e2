//! The pulse concentrator end to end: the head-end reads its raw counters
//! and settings and stores engineering values, pulses × weight × CT × VT.

use crate::support::{TestApp, WAIT, eventually, spawn_app};
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::concentrator::{ConcentratorModel, MODE_GME_S0, MODE_POT_FREE};
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::{Value, json};

#[tokio::test]
async fn stored_values_are_pulses_times_weight_and_ratios() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let profile = ProfileSet::builtin().get("pulse-concentrator").unwrap();
    let model = ConcentratorModel::new(9, Tz::UTC, start, MODE_GME_S0);
    let device = SimDevice::new(profile, 5, model, clock.clone());
    // A day of counting, frozen for the comparison.
    clock.advance(chrono::Duration::hours(26));
    let served = device.served();
    let (_stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::RtuOverTcp,
        shutdown,
    )
    .await
    .unwrap();
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": line.port()});
    let bus = app.create_bus(&token, "pulses", transport).await;
    let body = json!({"name": "Concentrator", "profile": "pulse-concentrator", "address": 5});
    let device = app.create_device(&token, bus, body).await;
    let path = format!("/api/v1/devices/{device}/registers");
    let registers = |body: &Value| -> Vec<(String, f64, String)> {
        body["registers"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|r| {
                        (
                            r["obis"].as_str().unwrap().to_owned(),
                            r["value"].as_f64().unwrap(),
                            r["unit"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let read = eventually(WAIT, || async {
        registers(&app.request("GET", &path, Some(&token), None).await.1)
            .iter()
            .any(|r| r.0 == "1-0:1.8.0")
    })
    .await;
    assert!(read, "the concentrator was read");
    let stored = registers(&app.request("GET", &path, Some(&token), None).await.1);
    let value = |code: &str| {
        stored
            .iter()
            .find(|r| r.0 == code)
            .map(|r| (r.1, r.2.as_str()))
            .unwrap_or_else(|| panic!("{code} not stored"))
    };
    let raw = |code: &str| served.lock().unwrap()[code].0;

    // Per-pulse values by hand from the simulated configuration (the manual's rule):
    // input 1: 0.01 kWh × CT 160 × VT 1.0 = 1.6 kWh; input 3: 0.001 × 40 × 6.0 = 0.24 kWh;
    // input 5: 0.01 m³ (ratios are for energy only); input 6: 0.1 Nm³.
    for (code, input, per_pulse, unit) in [
        ("1-1:1.8.0", 1, 1.6, "kWh"),
        ("1-3:1.8.0", 3, 0.24, "kWh"),
        ("7-5:3.0.0", 5, 0.01, "m3"),
        ("7-6:13.0.0", 6, 0.1, "Nm3"),
    ] {
        let pulses = raw(&format!("0-{input}:96.129.0"));
        assert!(pulses > 0.0);
        let (got, got_unit) = value(code);
        assert!(
            (got - pulses * per_pulse).abs() < 1e-6 * got.max(1.0),
            "{code}: {got} vs {pulses} × {per_pulse}"
        );
        assert_eq!(got_unit, unit, "{code}");
    }
    // GME SØ: +A per tariff at 0.001 kWh per pulse, and the total of the four.
    let tariffs: Vec<f64> = (1..=4).map(|t| raw(&format!("0-7:96.129.{t}")) * 0.001).collect();
    for (t, expected) in tariffs.iter().enumerate() {
        let (got, _) = value(&format!("1-0:1.8.{}", t + 1));
        assert!((got - expected).abs() < 1e-9, "T{}", t + 1);
    }
    let (total, _) = value("1-0:1.8.0");
    assert!((total - tariffs.iter().sum::<f64>()).abs() < 1e-9);
    // Inputs 7-12 feed the tariff registers: no independent values for them.
    assert!(
        stored.iter().all(|r| r.0 != "1-7:1.8.0" && r.0 != "0-12:96.128.0"),
        "{stored:?}"
    );
    // Its page lists the inputs and the GME tariff energies.
    let (_, page) = app
        .request("GET", &format!("/devices/{device}"), Some(&token), None)
        .await;
    let page = page.as_str().unwrap();
    assert!(page.contains("<h2>Pulse inputs</h2>") && page.contains("Nm3"), "{page}");
    let t1 = format!("{:.3} kWh", tariffs[0]);
    assert!(page.contains(&t1), "T1 {t1} on the page");
    app.stop().await;
}

#[tokio::test]
async fn a_counter_that_wraps_keeps_counting_and_is_recorded() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let profile = ProfileSet::builtin().get("pulse-concentrator").unwrap();
    // Input 12 starts 300 pulses short of the 32-bit counter's wrap and counts 600 an hour.
    let device = SimDevice::new(
        profile,
        5,
        ConcentratorModel::new(9, Tz::UTC, start, MODE_GME_S0),
        clock.clone(),
    );
    let served = device.served();
    let (_stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::RtuOverTcp,
        shutdown,
    )
    .await
    .unwrap();
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": line.port()});
    let bus = app.create_bus(&token, "pulses", transport).await;
    let body = json!({"name": "c", "profile": "pulse-concentrator", "address": 5,
                      "schedule": {"realtime_seconds": 1, "energy_seconds": 1}});
    let id = app.create_device(&token, bus, body).await.0;
    let count = || async {
        sqlx::query_scalar::<_, f64>(
            "SELECT value FROM latest_readings WHERE device_id = $1 AND obis = '0-12:96.129.0'",
        )
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    };
    assert!(eventually(WAIT, || async { count().await.is_some() }).await);
    let before = count().await.unwrap();
    assert!(before > f64::from(u32::MAX - 400), "{before}");

    clock.advance(chrono::Duration::hours(1));
    let wrapped = eventually(WAIT, || async {
        count().await.is_some_and(|c| c > f64::from(u32::MAX))
    })
    .await;
    assert!(wrapped, "the stored count went on past 2^32 - 1");
    let after = count().await.unwrap();
    let raw = served.lock().unwrap()["0-12:96.129.0"].0;
    assert!(raw < 1_000.0, "the device's own counter wrapped: {raw}");
    assert_eq!(
        after,
        4_294_967_296.0 + raw,
        "continuous count = 2^32 + the device's count"
    );
    let events: Vec<String> = sqlx::query_scalar("SELECT code FROM events WHERE device_id = $1")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, vec!["register_rollover".to_owned()]);
    app.stop().await;
}

/// The device's `pulse_channel_misconfigured` events: code, message, cleared_at.
async fn misconfigured_events(app: &TestApp, token: &str, device: i64) -> Vec<(String, Value)> {
    let path = format!("/api/v1/events?device_id={device}");
    let events = app.request("GET", &path, Some(token), None).await.1;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == "pulse_channel_misconfigured")
        .map(|e| (e["message"].as_str().unwrap().to_owned(), e["cleared_at"].clone()))
        .collect()
}

#[tokio::test]
async fn settings_out_of_range_open_an_event_and_flag_the_input_until_put_right() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let profile = ProfileSet::builtin().get("pulse-concentrator").unwrap();
    // Input 4 holds kWh (code 1), 0.1 per pulse (code 2), CT 0 (the manual:
    // 1-9999), VT loaded 9 (the manual: 1.0-3000.0 loaded x10, so 10-30000),
    // OFF 50 ms: two settings out of range.
    let model = ConcentratorModel::new(9, Tz::UTC, start, MODE_POT_FREE).with_settings(4, [1, 2, 0, 9, 50]);
    let device = SimDevice::new(profile, 5, model, clock.clone());
    let (_stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::RtuOverTcp,
        shutdown,
    )
    .await
    .unwrap();
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": line.port()});
    let bus = app.create_bus(&token, "pulses", transport).await;
    let body = json!({"name": "Boiler house", "profile": "pulse-concentrator", "address": 5,
                      "schedule": {"realtime_seconds": 1, "energy_seconds": 1}});
    let id = app.create_device(&token, bus, body).await.0;

    let opened = eventually(WAIT, || async {
        !misconfigured_events(&app, &token, id).await.is_empty()
    })
    .await;
    assert!(opened, "the event opened");
    let events = misconfigured_events(&app, &token, id).await;
    assert_eq!(
        events,
        vec![(
            "Boiler house: pulse settings out of range: input 4: CT ratio 0 is outside 1-9999 \
             and VT ratio x10 9 is outside 10-30000 (1.0-3000.0)"
                .to_owned(),
            Value::Null
        )]
    );
    // Input 4 has no engineering value; input 2, in range, has.
    let pool = &app.pool;
    let stored = |code: &'static str| async move {
        sqlx::query_scalar::<_, f64>("SELECT value FROM latest_readings WHERE device_id = $1 AND obis = $2")
            .bind(id)
            .bind(code)
            .fetch_optional(pool)
            .await
            .unwrap()
    };
    // The event goes to the database ahead of the read's values: wait for
    // those, then input 4's absence among them means something.
    let derived = eventually(WAIT, || async { stored("1-2:1.8.0").await.is_some() }).await;
    assert!(derived, "input 2's value was not stored");
    assert_eq!(stored("1-4:1.8.0").await, None);
    let page_path = format!("/devices/{id}");
    let page = app.request("GET", &page_path, Some(&token), None).await.1;
    let page = page.as_str().unwrap().to_owned();
    assert!(page.contains("<th class=\"num\">Settings</th>"), "{page}");
    let flag = "out of range: CT ratio 0 is outside 1-9999 and VT ratio x10 9 is outside 10-30000 (1.0-3000.0)";
    let row = page
        .split("<tr>")
        .find(|row| row.contains("Input 4<"))
        .unwrap_or_else(|| panic!("{page}"));
    assert!(row.contains(flag), "{row}");
    let row = page.split("<tr>").find(|row| row.contains("Input 2<")).unwrap();
    assert!(row.contains(">in range<"), "{row}");

    // Put right: kWh, 0.1 per pulse, CT 1, VT 1.0 (loaded 10), OFF 50 ms.
    let body = json!({"kind": "configure_channel", "channel": 4, "unit": "kWh", "pulse_weight": 0.1,
                      "ct_ratio": 1, "vt_ratio": 1.0, "off_time_ms": 50});
    let job = crate::commands::run_command(&app, &token, id, body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let cleared = eventually(WAIT, || async {
        misconfigured_events(&app, &token, id)
            .await
            .iter()
            .all(|(_, cleared_at)| !cleared_at.is_null())
    })
    .await;
    assert!(cleared, "the event cleared");
    // Opened once while it lasted, over every read in between.
    assert_eq!(misconfigured_events(&app, &token, id).await.len(), 1);
    assert!(eventually(WAIT, || async { stored("1-4:1.8.0").await.is_some() }).await);
    let page = app.request("GET", &page_path, Some(&token), None).await.1;
    let page = page.as_str().unwrap().to_owned();
    for n in 1..=12 {
        let input = format!("Input {n}<");
        let row = page.split("<tr>").find(|row| row.contains(&input)).unwrap();
        assert!(row.contains(">in range<"), "{row}");
    }
    app.stop().await;
}

/// The manual: "RS485 communication, address: 1…255", set in the
/// programming menu. 0 is the Modbus broadcast, no device's own.
#[tokio::test]
async fn a_concentrator_takes_addresses_1_to_255_set_on_its_front_panel() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": 1});
    let bus = app.create_bus(&token, "pulses", transport).await;
    let create = |address: i64| {
        let body = json!({"name": format!("c{address}"), "profile": "pulse-concentrator", "address": address,
                          "bus_id": bus.0});
        app.request("POST", "/api/v1/devices", Some(&token), Some(body))
    };
    for address in [1, 248, 255] {
        let (status, body) = create(address).await;
        assert_eq!(status, StatusCode::CREATED, "{address}: {body}");
    }
    for address in [0, 256] {
        let (status, body) = create(address).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{address}: {body}");
        assert_eq!(
            body["error"]["message"],
            format!("address: address {address} is out of range: a device address is 1-255")
        );
    }
    // The address is changed on the device's front panel, never over the bus.
    let (_, devices) = app.request("GET", "/api/v1/devices", Some(&token), None).await;
    let id = devices["devices"][0]["id"].as_i64().unwrap();
    let (status, body) =
        crate::commands::command(&app, &token, id, json!({"kind": "set_address", "address": 200})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("on its front panel only") && message.contains("password 2001"),
        "{message}"
    );
    app.stop().await;
}
