//! IEC 62056-21 end to end: the poller reads the simulated A1000 and TH40C
//! over TCP, an RS485 line and an optical probe (pseudo-terminals), and what
//! it stores equals what the simulated meters hold.

use std::sync::Arc;

use crate::support::{
    SILENT_METER_TIMEOUT, TestApp, WAIT, eventually, iec_meter, quick_iec_line, serve_iec_tcp, spawn_app,
    spawn_app_with_timeout,
};
use chrono::{DateTime, Datelike, DurationRound, TimeDelta, TimeZone, Utc};
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::iec62056::events::{LoggedEventKind, events};
use ohmnibus::sim::iec62056::history::Quantity;
use ohmnibus::sim::iec62056::{Faults, IecKind, ServedLine, SharedMeter, spawn_iec_pty};
use serde_json::{Value, json};

fn now() -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap()
}

fn line(meters: Vec<SharedMeter>, at: DateTime<Utc>) -> ServedLine {
    quick_iec_line(meters, Clock::manual(at))
}

async fn add(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, created) = app.request("POST", path, Some(token), Some(body.clone())).await;
    assert_eq!(status.as_u16(), 201, "{body}: {created}");
    created
}

/// The device's latest registers, once it is online with at least `want` values.
async fn registers(app: &TestApp, token: &str, device: i64, want: usize) -> Vec<Value> {
    let path = format!("/api/v1/devices/{device}/registers");
    let ready = eventually(WAIT, || async {
        let (_, body) = app.request("GET", &path, Some(token), None).await;
        body["registers"].as_array().is_some_and(|r| r.len() >= want)
    })
    .await;
    let device_body = app.device(token, DeviceId(device)).await;
    assert!(ready, "device {device} never stored {want} values: {device_body}");
    let (_, body) = app.request("GET", &path, Some(token), None).await;
    body["registers"].as_array().unwrap().clone()
}

fn stored(registers: &[Value], obis: &str) -> f64 {
    registers
        .iter()
        .find(|r| r["obis"] == obis)
        .and_then(|r| r["value"].as_f64())
        .unwrap_or_else(|| panic!("{obis} not stored"))
}

/// Every energy, its tariffs and billing sets, and the demands: the stored
/// values equal the meter's own registers at the instant of the readout.
fn check_energies(registers: &[Value], meter: &SharedMeter, at: DateTime<Utc>, history: &str) {
    let mut meter = meter.lock().unwrap();
    let mut checked = 0;
    for code in [
        "1-1:1.8.0".to_owned(),
        "1-1:1.8.1".to_owned(),
        "1-1:1.8.4".to_owned(),
        "1-1:2.8.0".to_owned(),
        "1-1:5.8.0".to_owned(),
        format!("1-1:1.8.0*{history}"),
        "1-1:1.6.0".to_owned(),
    ] {
        let expected = meter
            .register_at(&code, at)
            .unwrap_or_else(|| panic!("the meter has {code}"));
        let got = stored(registers, &code);
        assert!(
            (got - expected).abs() < 1e-6,
            "{code}: stored {got}, the meter holds {expected}"
        );
        checked += 1;
    }
    // Tariff registers add up to the total, as stored.
    let sum: f64 = (1..=4).map(|t| stored(registers, &format!("1-1:1.8.{t}"))).sum();
    assert!((sum - stored(registers, "1-1:1.8.0")).abs() < 0.01, "tariffs {sum}");
    assert_eq!(checked, 7);
}

/// Days of load profile the meter of the next test keeps.
const PROFILE_DAYS: u32 = 4;

#[tokio::test]
async fn an_a1000_over_tcp_is_read_with_its_history_status_and_load_profile() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let at = now();
    let main = iec_meter(IecKind::A1000, 7, "12345678", at);
    // A meter that keeps four days of load profile: its first backfill
    // (two days per readout) reaches its oldest data after three readouts,
    // then ends at the profile's depth after a few answers without records.
    // The backfill's depth and progress are tested in backfill.rs.
    main.lock().unwrap().config.profile_days = Some(PROFILE_DAYS);
    // It prints what its display lists beyond App. A under the standard's codes.
    main.lock().unwrap().config.display_extras = true;
    // A second meter shares the line: only the addressed one answers.
    let other = iec_meter(IecKind::A1000, 8, "87654321", at);
    let served = line(vec![Arc::clone(&main), other], at);
    let clock = served.clock.clone();
    let (port, _stop) = serve_iec_tcp(served).await;
    let bus = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "iec-tcp", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": port}}),
    )
    .await;
    let device = add(
        &app,
        &token,
        "/api/v1/devices",
        // A readout every second, so the backfill (in chunks of two days,
        // one per readout) completes within the test.
        json!({"name": "A1000", "bus_id": bus["id"], "profile": "a1000", "iec_address": "12345678",
               "schedule": {"energy_seconds": 1}}),
    )
    .await;
    assert_eq!(device["address"], Value::Null);
    assert_eq!(device["iec_address"], "12345678");
    let id = device["id"].as_i64().unwrap();
    let values = registers(&app, &token, id, 60).await;
    check_energies(&values, &main, at, "101");
    // Billing sets *101..*116 are stored as the meter sent them.
    let oldest = main.lock().unwrap().register_at("1-1:1.8.0*102", at).unwrap();
    assert!((stored(&values, "1-1:1.8.0*102") - oldest).abs() < 1e-6);
    // Apparent and reactive import/export energies with their billing
    // sets, the reactive and apparent demands, and the event counters the
    // profile lists (counts carry no unit: kept because they are listed;
    // an item suffix is a number, `*01` is stored as `*1`).
    for code in [
        "1-1:9.8.0",
        "1-1:9.8.3",
        "1-1:3.8.0",
        "1-1:4.8.0",
        "1-1:9.8.0*101",
        "1-1:3.8.0*102",
        "1-1:9.6.0",
        "1-1:7.6.0",
        "0-0:C.51.2",
        "0-0:C.50.51*1",
        "0-0:C.50.91*0",
    ] {
        let sent = main.lock().unwrap().value(code, at).unwrap()[0].number().unwrap();
        assert!((stored(&values, code) - sent).abs() < 1e-6, "{code}: meter {sent}");
    }
    let apparent = values.iter().find(|r| r["obis"] == "1-1:9.8.0").unwrap();
    assert_eq!(apparent["unit"], "kVAh");
    let demand = values.iter().find(|r| r["obis"] == "1-1:9.6.0").unwrap();
    assert!(demand["captured_at"].is_string(), "{demand}");

    // The load profile: every 15-minute interval the meter keeps, equal to
    // the meter's recorded energy (Wh → kWh), and the backfill over once a
    // request reaching the profile's depth found nothing older.
    let done = eventually(WAIT, || async {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM load_profile_intervals WHERE obis = '1-1:1.29.0'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let completed: Option<bool> =
            sqlx::query_scalar("SELECT completed_at IS NOT NULL FROM load_profile_backfills WHERE device_id = $1")
                .bind(id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        count >= i64::from(PROFILE_DAYS) * 96 - 1 && completed == Some(true)
    })
    .await;
    assert!(done, "the load profile was not read");
    let from = at - TimeDelta::days(2);
    let expected: Vec<(DateTime<Utc>, f64)> = main
        .lock()
        .unwrap()
        .history()
        .intervals(from + TimeDelta::minutes(15), at, at)
        .iter()
        .map(|i| (i.start, i.get(Quantity::ImportActive) as f64 / 1000.0))
        .collect();
    let got: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
        "SELECT interval_start, value FROM load_profile_intervals \
         WHERE obis = '1-1:1.29.0' AND interval_start >= $1 AND interval_start < $2 ORDER BY interval_start",
    )
    .bind(from)
    .bind(at)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(expected.len() >= 190, "{} intervals", expected.len());
    assert_eq!(got.len(), expected.len());
    for ((start, value), (want_start, want)) in got.iter().zip(&expected) {
        assert_eq!(start, want_start);
        assert!((value - want).abs() < 1e-9, "{start}: {value} stored, {want} recorded");
    }

    // An hour later, "read now" resumes from the last stored interval: the
    // four new quarter hours of every channel arrive, nothing twice.
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM load_profile_intervals")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    clock.advance(TimeDelta::hours(1));
    read_now(&app, id).await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM load_profile_intervals")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(after - before, 4 * 6, "four quarter hours of six channels");
    let newest: DateTime<Utc> = sqlx::query_scalar("SELECT max(interval_start) FROM load_profile_intervals")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let last_end = (at + TimeDelta::hours(1))
        .duration_trunc(TimeDelta::minutes(15))
        .unwrap();
    assert_eq!(newest, last_end - TimeDelta::minutes(15));
    let (_, devices) = app.request("GET", "/api/v1/devices", Some(&token), None).await;
    assert_eq!(devices["devices"][0]["status"]["state"], "online");
    app.stop().await;
}

#[tokio::test]
async fn a_th40c_on_an_rs485_line_and_an_a1000_on_an_optical_probe() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let at = now();
    let seed = th40c_seed(at);
    let th40c = iec_meter(IecKind::Th40c, seed, "40001", at);
    let (_stop, shutdown) = shutdown::channel();
    let (path, _) = spawn_iec_pty(line(vec![Arc::clone(&th40c)], at), shutdown.clone()).unwrap();
    let bus = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "rs485-iec", "transport": {"kind": "iec62056_serial", "path": path.display().to_string()}}),
    )
    .await;
    let device = add(
        &app,
        &token,
        "/api/v1/devices",
        json!({"name": "TH40C", "bus_id": bus["id"], "profile": "th40c", "iec_address": "40001"}),
    )
    .await;

    // An optical probe reaches one meter, whatever its address: none is sent.
    let a1000 = iec_meter(IecKind::A1000, 5, "99", at);
    let (probe_path, _) = spawn_iec_pty(line(vec![Arc::clone(&a1000)], at), shutdown).unwrap();
    let probe = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "probe", "transport": {"kind": "optical", "path": probe_path.display().to_string(), "settle_ms": 0}}),
    )
    .await;
    let optical = add(
        &app,
        &token,
        "/api/v1/devices",
        json!({"name": "A1000 at the probe", "bus_id": probe["id"], "profile": "a1000"}),
    )
    .await;
    assert_eq!(optical["iec_address"], "");

    let values = registers(&app, &token, device["id"].as_i64().unwrap(), 60).await;
    check_energies(&values, &th40c, at, "1");
    // Instantaneous values, as the meter served them.
    for code in ["1-1:32.7.0", "1-1:31.7.0", "1-1:13.7.0"] {
        let expected = th40c.lock().unwrap().register_at(code, at).unwrap();
        assert!((stored(&values, code) - expected).abs() < 1e-9, "{code}");
    }
    check_th40c_records(&app, &token, device["id"].as_i64().unwrap(), &values, seed, at).await;
    let optical_id = optical["id"].as_i64().unwrap();
    let values = registers(&app, &token, optical_id, 60).await;
    check_energies(&values, &a1000, at, "101");

    // A low battery (ERR2 bit 6, A1000 App. B) opens a critical event; once
    // the meter no longer reports it, the next read clears it.
    let open_events = |code: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events WHERE device_id = $1 AND code = $2 AND severity = 'critical' \
                 AND cleared_at IS NULL",
            )
            .bind(optical_id)
            .bind(code)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(open_events("low_battery").await, 0);
    a1000.lock().unwrap().config.error_bits = 0x40;
    read_now(&app, optical_id).await;
    assert_eq!(open_events("low_battery").await, 1);
    a1000.lock().unwrap().config.error_bits = 0;
    read_now(&app, optical_id).await;
    assert_eq!(open_events("low_battery").await, 0);
    let cleared: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE code = 'low_battery' AND cleared_at IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(cleared, 1);
    app.stop().await;
}

/// The start of the calendar month `back` months before the one of `at`
/// (UTC, the meter's zone): the TH40C's billing resets, on the 1st at 00:00.
fn month_start(at: DateTime<Utc>, back: u32) -> DateTime<Utc> {
    let months = at.year() * 12 + at.month0() as i32 - back as i32;
    Utc.with_ymd_and_hms(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1, 0, 0, 0)
        .unwrap()
}

/// The first seed from 3 on whose TH40C has had a current loss in the
/// current billing period by `at`, so that the current-loss events are
/// checked whatever the date; 3 in the first hours of a month, when no
/// seed may have one yet (the check then is that none is raised).
fn th40c_seed(at: DateTime<Utc>) -> u64 {
    (3..40)
        .find(|seed| {
            (1..=3).any(|phase| !events(*seed, LoggedEventKind::CurrentLoss, phase, month_start(at, 0), at).is_empty())
        })
        .unwrap_or(3)
}

/// What the TH40C (address 40001) printed of App. A's records, as
/// stored: its identifiers and second warning word, and for every period
/// X = 1..7 (X = 1 the current billing period) the current-loss count,
/// minutes, last start and end per phase and the voltage-loss, unbalance
/// and supply-absence blocks, against the simulator's own list of events
/// in that period; and the last current loss of each phase as an event.
async fn check_th40c_records(app: &TestApp, token: &str, device: i64, values: &[Value], seed: u64, at: DateTime<Utc>) {
    for code in ["1-0:0.0.0", "1-0:0.0.1", "1-0:0.0.2"] {
        assert_eq!(stored(values, code), 40001.0, "{code}");
    }
    assert_eq!(stored(values, "0-0:F.F.2"), 0.0);
    let time = |at: DateTime<Utc>| at.timestamp() as f64;
    let maybe = |code: &str| {
        values
            .iter()
            .find(|r| r["obis"] == code)
            .and_then(|r| r["value"].as_f64())
    };
    let mut occurrences = 0;
    for x in 1..=7u32 {
        let from = month_start(at, x - 1);
        let until = if x == 1 { at } else { month_start(at, x - 2) };
        for phase in 1..=3u8 {
            let records = [
                (
                    LoggedEventKind::CurrentLoss,
                    format!("1-1:{}.32.0*{x}", 11 + 20 * phase),
                    format!("1-1:{}.33.0*{x}", 11 + 20 * phase),
                    format!("1-1:{}.130.0*{x}", 180 + phase),
                    format!("1-1:{}.150.0*{x}", 180 + phase),
                ),
                (
                    LoggedEventKind::VoltageLoss,
                    format!("0-0:C.50.4{x}*{phase}"),
                    format!("0-0:C.50.4{x}*1{phase}"),
                    format!("0-0:C.50.4{x}*2{phase}"),
                    format!("0-0:C.50.4{x}*3{phase}"),
                ),
                (
                    LoggedEventKind::CurrentUnbalance,
                    format!("0-0:C.50.6{x}*{phase}"),
                    format!("0-0:C.50.6{x}*1{phase}"),
                    format!("0-0:C.50.6{x}*2{phase}"),
                    format!("0-0:C.50.6{x}*3{phase}"),
                ),
                // Supply absence numbers its counts and minutes 0-2 (App. A);
                // a suffix is stored as a number (`*01` as `*1`).
                (
                    LoggedEventKind::PhaseFailure,
                    format!("0-0:C.50.5{x}*{}", phase - 1),
                    format!("0-0:C.50.5{x}*1{}", phase - 1),
                    format!("0-0:C.50.5{x}*2{phase}"),
                    format!("0-0:C.50.5{x}*3{phase}"),
                ),
            ];
            for (kind, count, minutes, start, end) in records {
                let list = events(seed, kind, phase, from, until);
                assert_eq!(stored(values, &count), list.len() as f64, "{count}");
                let lasted: i64 = list.iter().map(|e| (e.stop.min(until) - e.start).num_minutes()).sum();
                assert_eq!(stored(values, &minutes), lasted as f64, "{minutes}");
                occurrences += list.len();
                match list.last() {
                    Some(last) => {
                        assert!(last.start >= from && last.start <= until, "{start} in its period");
                        assert_eq!(stored(values, &start), time(last.start), "{start}");
                        let stop = (last.stop <= until).then(|| time(last.stop));
                        assert_eq!(maybe(&end), stop, "{end}");
                    }
                    None => assert_eq!((maybe(&start), maybe(&end)), (None, None), "{start}"),
                }
            }
        }
    }
    assert!(occurrences > 20, "seven months hold occurrences ({occurrences})");

    // The current period's last current loss per phase is an event at the
    // meter's times, as voltage losses are.
    for phase in 1..=3u8 {
        let code = format!("current_loss_l{phase}");
        let spans: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT started_at, cleared_at FROM events WHERE device_id = $1 AND code = $2 ORDER BY started_at",
        )
        .bind(device)
        .bind(&code)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let list = events(seed, LoggedEventKind::CurrentLoss, phase, month_start(at, 0), at);
        let expected: Vec<_> = list
            .last()
            .map(|last| (last.start, (last.stop <= at).then_some(last.stop)))
            .into_iter()
            .collect();
        assert_eq!(spans, expected, "{code}");
    }

    // The device page names them from the profile.
    let (_, page) = app
        .request("GET", &format!("/devices/{device}"), Some(token), None)
        .await;
    let page = page.as_str().unwrap();
    for expected in [
        "Identifier 1",
        "warning code 2 (0-0:F.F.2, warning)",
        "kept as its value: no source names its bits",
        "L1 current losses (*1, last period)",
        "Voltage loss: l3 events, period 7",
        "Supply absence: L1 events, period 2",
    ] {
        assert!(page.contains(expected), "{expected:?} missing from the page:\n{page}");
    }
}

/// Queues a "read now" and waits for it to finish successfully.
async fn read_now(app: &TestApp, device: i64) {
    let operator = app.token(Role::Operator).await;
    let (status, job) = app
        .request("POST", &format!("/api/v1/devices/{device}/read"), Some(&operator), None)
        .await;
    assert_eq!(status.as_u16(), 202, "{job}");
    let path = format!("/api/v1/reads/{}", job["id"]);
    let finished = eventually(WAIT, || async {
        let (_, job) = app.request("GET", &path, Some(&operator), None).await;
        job["state"] == "succeeded"
    })
    .await;
    let (_, job) = app.request("GET", &path, Some(&operator), None).await;
    assert!(finished, "the read did not finish: {job}");
}

#[tokio::test]
async fn iec_devices_are_refused_where_they_cannot_be_read() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let modbus = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "modbus", "transport": {"kind": "modbus_tcp", "host": "127.0.0.1", "port": 502}}),
    )
    .await;
    let iec = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "iec", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": 4059}}),
    )
    .await;
    let probe = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "probe", "transport": {"kind": "optical", "path": "/dev/ttyUSB9"}}),
    )
    .await;
    for (body, field, reason) in [
        (
            json!({"name": "x", "bus_id": modbus["id"], "profile": "a1000", "address": 1}),
            "profile",
            "read over IEC 62056-21",
        ),
        (
            json!({"name": "x", "bus_id": iec["id"], "profile": "countis-e43", "iec_address": "1"}),
            "profile",
            "read over Modbus",
        ),
        (
            json!({"name": "x", "bus_id": iec["id"], "profile": "a1000"}),
            "iec_address",
            "required on a shared IEC 62056-21 line",
        ),
        (
            json!({"name": "x", "bus_id": iec["id"], "profile": "a1000", "iec_address": "12/34"}),
            "iec_address",
            "letters, digits or spaces",
        ),
        (
            json!({"name": "x", "bus_id": iec["id"], "profile": "a1000", "iec_address": "1", "address": 1}),
            "address",
            "not a Modbus unit",
        ),
        (
            json!({"name": "x", "bus_id": modbus["id"], "profile": "th40c"}),
            "address",
            "required on a Modbus bus",
        ),
    ] {
        let (status, error) = app
            .request("POST", "/api/v1/devices", Some(&token), Some(body.clone()))
            .await;
        assert_eq!(status.as_u16(), 422, "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")) && message.contains(reason),
            "{body}: {message}"
        );
    }
    // One meter per probe.
    add(
        &app,
        &token,
        "/api/v1/devices",
        json!({"name": "a", "bus_id": probe["id"], "profile": "a1000"}),
    )
    .await;
    let (status, error) = app
        .request(
            "POST",
            "/api/v1/devices",
            Some(&token),
            Some(json!({"name": "b", "bus_id": probe["id"], "profile": "th40c"})),
        )
        .await;
    assert_eq!(status.as_u16(), 422);
    assert!(error["error"]["message"].as_str().unwrap().starts_with("bus_id:"));
    // Two meters of one line cannot share a device address.
    add(
        &app,
        &token,
        "/api/v1/devices",
        json!({"name": "c", "bus_id": iec["id"], "profile": "a1000", "iec_address": "7"}),
    )
    .await;
    let (status, error) = app
        .request(
            "POST",
            "/api/v1/devices",
            Some(&token),
            Some(json!({"name": "d", "bus_id": iec["id"], "profile": "th40c", "iec_address": "7"})),
        )
        .await;
    assert_eq!(status.as_u16(), 409, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().starts_with("iec_address:"));
    // A bus with a rate IEC 62056-21 does not have is refused by field.
    let (status, error) = app
        .request(
            "POST",
            "/api/v1/buses",
            Some(&token),
            Some(json!({"name": "fast", "transport": {"kind": "iec62056_serial", "path": "/dev/ttyS0", "max_baud": 38400}})),
        )
        .await;
    assert_eq!(status.as_u16(), 422);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("transport.max_baud:")
    );
    app.stop().await;
}

/// A line that garbles, splits and corrupts still yields the meter's values
/// (the session repeats on a bad BCC and joins partial blocks); a meter that
/// never answers turns unreachable with an event, and its neighbour on the
/// same line keeps being read.
#[tokio::test]
async fn faults_on_the_line_are_survived_and_a_silent_meter_is_isolated() {
    let app = spawn_app_with_timeout(SILENT_METER_TIMEOUT).await;
    let token = app.token(Role::Engineer).await;
    let at = now();
    let meter_a = iec_meter(IecKind::A1000, 11, "111", at);
    // A meter programmed to print its last two billing sets: the faults
    // below split and repeat every block, and the silent meter's attempts
    // each wait behind a whole readout of its neighbour.
    meter_a.lock().unwrap().config.readout_sets = 2;
    // Two days of load profile: one backfill readout with records, then a
    // few short answers without, not twenty readouts, on a line whose
    // faults repeat every block.
    meter_a.lock().unwrap().config.profile_days = Some(2);
    let mut served = line(vec![Arc::clone(&meter_a)], at);
    served.faults = Faults {
        bad_bcc_once: true,
        // Blocks of 30 lines: a readout of a few blocks, each one split.
        partial_lines: Some(30),
        garbage: vec![0x00, 0x7F, b'x'],
        ..Faults::default()
    };
    let (port, _stop) = serve_iec_tcp(served).await;
    let bus = add(
        &app,
        &token,
        "/api/v1/buses",
        json!({"name": "noisy", "transport": {"kind": "iec62056_tcp", "host": "127.0.0.1", "port": port}}),
    )
    .await;
    let good = add(
        &app,
        &token,
        "/api/v1/devices",
        json!({"name": "A1000", "bus_id": bus["id"], "profile": "a1000", "iec_address": "111",
               "schedule": {"energy_seconds": 2}}),
    )
    .await;
    let silent = add(
        &app,
        &token,
        "/api/v1/devices",
        json!({"name": "Nobody", "bus_id": bus["id"], "profile": "a1000", "iec_address": "999",
               "schedule": {"energy_seconds": 2}}),
    )
    .await;
    let values = registers(&app, &token, good["id"].as_i64().unwrap(), 60).await;
    check_energies(&values, &meter_a, at, "101");
    let silent_path = format!("/api/v1/devices/{}", silent["id"]);
    let unreachable = eventually(WAIT, || async {
        let (_, device) = app.request("GET", &silent_path, Some(&token), None).await;
        device["status"]["state"] == "unreachable"
    })
    .await;
    let (_, device) = app.request("GET", &silent_path, Some(&token), None).await;
    assert!(unreachable, "{device}");
    assert!(
        device["status"]["last_error"].as_str().unwrap().contains("no answer"),
        "{device}"
    );
    let lost: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE device_id = $1 AND code = 'comm_lost'")
        .bind(silent["id"].as_i64().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(lost, 1);
    // The neighbour kept its schedule: read again since.
    let good_path = format!("/api/v1/devices/{}", good["id"]);
    let (_, device) = app.request("GET", &good_path, Some(&token), None).await;
    assert_eq!(device["status"]["state"], "online", "{device}");
    assert_eq!(device["status"]["consecutive_failures"], 0, "{device}");
    app.stop().await;
}
