//! Commands checked on the device: the registers read before and after each
//! write, the meter's rules the head-end keeps (a TH40C's clock: at most 5
//! minutes of change, once a day; TH40C manual, App. E), and what reaches the
//! wire, as a gateway in front of the simulated line records it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::commands::{COUNTIS_UNIT, add_bus, add_device, countis, run_command, serve};
use crate::support::{SILENT_METER_TIMEOUT, TestApp, eventually, spawn_app_with};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::protocol::modbus::frame::{ModbusRequest, parse_pdu, parse_rtu};
use ohmnibus::sim::concentrator::{ConcentratorModel, MODE_POT_FREE};
use ohmnibus::sim::countis::{CountisModel, Firmware, TariffSource, Variant};
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Requests = Arc<Mutex<Vec<(u8, ModbusRequest)>>>;

/// What the gateway keeps from the line.
#[derive(Default)]
struct Filter {
    /// Requests to this unit are dropped (a meter that does not answer there).
    mute: Option<u8>,
    /// So many of the next writes are dropped (lost on the line).
    drop_writes: usize,
}

/// A gateway that records each request in the order it reaches it, and
/// passes it on to the line unless `filter` drops it.
async fn gateway(upstream: SocketAddr) -> (SocketAddr, Requests, Arc<Mutex<Filter>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let requests = Requests::default();
    let mute = Arc::new(Mutex::new(Filter::default()));
    let (recorded, muted) = (Arc::clone(&requests), Arc::clone(&mute));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let (recorded, muted) = (Arc::clone(&recorded), Arc::clone(&muted));
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 512];
                while let Ok(n @ 1..) = client_read.read(&mut chunk).await {
                    buffer.extend_from_slice(&chunk[..n]);
                    while let Ok((unit, pdu, len)) = parse_rtu(&buffer) {
                        let frame: Vec<u8> = buffer.drain(..len).collect();
                        let request = parse_pdu(&pdu).unwrap();
                        let write = !matches!(request, ModbusRequest::ReadHolding { .. });
                        recorded.lock().unwrap().push((unit, request));
                        {
                            let mut filter = muted.lock().unwrap();
                            if filter.mute == Some(unit) {
                                continue;
                            }
                            if write && filter.drop_writes > 0 {
                                filter.drop_writes -= 1;
                                continue;
                            }
                        }
                        if server_write.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                }
            });
            tokio::spawn(async move {
                let mut chunk = [0u8; 512];
                while let Ok(n @ 1..) = server_read.read(&mut chunk).await {
                    if client_write.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, requests, mute)
}

/// 10:00:00 in Rome (UTC+1 in November).
fn ten_in_rome() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap()
}

/// A TH40C at unit 1 whose clock is `offset` off the true time, keeping
/// Rome's time, behind a recording gateway; the app's clock stands at
/// 10:00:00 Rome time.
async fn th40c_line(
    offset: chrono::Duration,
    protected: bool,
) -> (
    TestApp,
    String,
    i64,
    Requests,
    Arc<Mutex<Filter>>,
    ohmnibus::shutdown::Trigger,
) {
    let clock = Clock::manual(ten_in_rome());
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    sqlx::query("UPDATE sites SET time_zone = 'Europe/Rome'")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut model = Th40cModel::new(1, Tz::Europe__Rome, ten_in_rome());
    model.set_clock(ten_in_rome() + offset, ten_in_rome());
    model.write_protected = protected;
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let (_sim, line, stop) = serve(vec![SimDevice::new(profile, 1, model, clock)]).await;
    let (gateway, requests, mute) = gateway(line).await;
    let bus = add_bus(&app, &engineer, gateway.port()).await;
    let id = add_device(&app, &engineer, bus, "th40c", 1, 3600).await;
    polled(&requests, 1).await;
    (app, engineer, id, requests, mute, stop)
}

/// Waits until the worker has polled `unit` (so it holds the device).
async fn polled(requests: &Requests, unit: u8) {
    let seen = eventually(Duration::from_secs(30), || async {
        requests.lock().unwrap().iter().any(|(to, _)| *to == unit)
    })
    .await;
    assert!(seen, "unit {unit} polled");
}

/// The writes that reached the line, in order.
fn writes(requests: &Requests) -> Vec<(u8, ModbusRequest)> {
    requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, request)| !matches!(request, ModbusRequest::ReadHolding { .. }))
        .cloned()
        .collect()
}

/// The three requests around the first write: the read before, the write,
/// the read after.
fn around_first_write(requests: &Requests) -> Vec<(u8, ModbusRequest)> {
    let list = requests.lock().unwrap().clone();
    let at = list
        .iter()
        .position(|(_, request)| !matches!(request, ModbusRequest::ReadHolding { .. }))
        .expect("a write was sent");
    list[at - 1..=at + 1].to_vec()
}

/// The device's events: code, severity, and whether still open.
async fn events(app: &TestApp, device: i64) -> Vec<(String, String, bool)> {
    sqlx::query_as::<_, (String, String, bool)>(
        "SELECT code, severity, cleared_at IS NULL FROM events WHERE device_id = $1 \
         AND code IN ('clock_needs_site_programming', 'command_verification_failed') ORDER BY id",
    )
    .bind(device)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The TH40C's clock as its registers 0x1040-0x1045 hold it (App. G: year,
/// month, day, hour, minute, second, one register each).
fn clock_words(y: u16, mo: u16, d: u16, h: u16, mi: u16, s: u16) -> Value {
    json!({"0x1040": [y, mo, d, h, mi, s]})
}

const CLOCK_READ: ModbusRequest = ModbusRequest::ReadHolding {
    start: 0x1040,
    count: 6,
};

#[tokio::test]
async fn a_th40c_two_minutes_behind_is_set_then_a_second_set_that_day_is_refused_unwritten() {
    let (app, engineer, id, requests, _mute, _stop) = th40c_line(chrono::Duration::minutes(-2), false).await;
    let job = run_command(&app, &engineer, id, json!({"kind": "set_clock"})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    // Before: 09:58:00 on 20 November 2026; after: the server's 10:00:00.
    assert_eq!(job["before"], clock_words(26, 11, 20, 9, 58, 0));
    assert_eq!(job["after"], clock_words(26, 11, 20, 10, 0, 0));
    // App. E: six bytes YY MM DD hh mm ss: 1A 0B | 14 0A | 00 00.
    let written = [0x1A0B, 0x140A, 0x0000];
    assert_eq!(job["written"][0]["values"], json!(written));
    assert_eq!(
        around_first_write(&requests),
        vec![
            (1, CLOCK_READ),
            (
                1,
                ModbusRequest::WriteMultiple {
                    start: 0x7000,
                    values: written.to_vec()
                }
            ),
            (1, CLOCK_READ),
        ]
    );

    // The same day again: refused by the head-end; nothing more written.
    let job = run_command(&app, &engineer, id, json!({"kind": "set_clock"})).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "clock_set_today", "{job}");
    assert_eq!(job["written"], json!([]));
    assert_eq!(writes(&requests).len(), 1, "one write only: {:?}", writes(&requests));
    assert_eq!(
        events(&app, id).await,
        vec![("clock_needs_site_programming".to_owned(), "warning".to_owned(), true)]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_th40c_six_minutes_off_is_refused_and_nothing_reaches_the_meter() {
    let (app, engineer, id, requests, _mute, _stop) = th40c_line(chrono::Duration::minutes(6), false).await;
    let job = run_command(&app, &engineer, id, json!({"kind": "set_clock"})).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "clock_too_far", "{job}");
    assert_eq!(job["before"], clock_words(26, 11, 20, 10, 6, 0));
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("360 s ahead of"), "{message}");
    assert_eq!(writes(&requests), vec![], "no write reached the line");
    assert!(requests.lock().unwrap().contains(&(1, CLOCK_READ)));
    assert_eq!(
        events(&app, id).await,
        vec![("clock_needs_site_programming".to_owned(), "warning".to_owned(), true)]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_write_protected_th40c_is_reported_as_write_protected() {
    let (app, engineer, id, requests, _mute, _stop) = th40c_line(chrono::Duration::minutes(-1), true).await;
    let job = run_command(&app, &engineer, id, json!({"kind": "set_clock"})).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "write_protected", "{job}");
    assert_eq!(writes(&requests).len(), 1, "sent once, refused with exception 01");
    app.stop().await;
}

const DATE_READ: ModbusRequest = ModbusRequest::ReadHolding {
    start: 0x1040,
    count: 3,
};

#[tokio::test]
async fn an_address_change_is_recorded_once_the_meter_answers_at_the_new_address() {
    let (app, engineer, id, requests, _mute, _stop) = th40c_line(chrono::Duration::zero(), false).await;
    let job = run_command(&app, &engineer, id, json!({"kind": "set_address", "address": 7})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    // App. E: FC6 at 0xC035; the meter answers from 7, and is read there.
    assert_eq!(
        around_first_write(&requests),
        vec![
            (1, DATE_READ),
            (
                1,
                ModbusRequest::WriteSingle {
                    address: 0xC035,
                    value: 7
                }
            ),
            (7, DATE_READ),
        ]
    );
    assert_eq!(app.device(&engineer, DeviceId(id)).await["address"], 7);
    app.stop().await;
}

#[tokio::test]
async fn an_address_change_the_meter_does_not_answer_at_is_not_recorded() {
    let (app, engineer, id, requests, mute, _stop) = th40c_line(chrono::Duration::zero(), false).await;
    // Nothing answers at 9: the write is answered (from 9, App. E), the
    // reads there are not, three times; the device record stays at 1.
    mute.lock().unwrap().mute = Some(9);
    let job = run_command(&app, &engineer, id, json!({"kind": "set_address", "address": 9})).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "verification_failed", "{job}");
    let at_nine: Vec<_> = requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(unit, _)| *unit == 9)
        .cloned()
        .collect();
    assert_eq!(at_nine, vec![(9, DATE_READ); 3]);
    assert_eq!(app.device(&engineer, DeviceId(id)).await["address"], 1);
    assert_eq!(
        events(&app, id).await,
        vec![("command_verification_failed".to_owned(), "warning".to_owned(), false)]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tariff_the_inputs_choose_fails_verification_and_raises_an_event() {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap();
    let clock = Clock::manual(at);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let profile = ProfileSet::builtin().get("countis-e43").unwrap();
    let mut model = CountisModel::new(Variant::E43, Firmware::V201, 5, Tz::UTC, at);
    model.tariff_source = TariffSource::Inputs;
    let (_sim, line, _stop) = serve(vec![SimDevice::new(profile, COUNTIS_UNIT, model, clock)]).await;
    let (gateway, requests, _mute) = gateway(line).await;
    let bus = add_bus(&app, &engineer, gateway.port()).await;
    let id = add_device(&app, &engineer, bus, "countis-e43", COUNTIS_UNIT, 3600).await;
    polled(&requests, COUNTIS_UNIT).await;

    let job = run_command(&app, &engineer, id, json!({"kind": "set_tariff", "tariff": 3})).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "verification_failed", "{job}");
    assert_eq!(job["before"], json!({"0xC801": [1]}));
    assert_eq!(job["after"], json!({"0xC801": [1]}));
    let tariff = ModbusRequest::ReadHolding {
        start: 0xC801,
        count: 1,
    };
    assert_eq!(
        around_first_write(&requests),
        vec![
            (COUNTIS_UNIT, tariff.clone()),
            (
                COUNTIS_UNIT,
                ModbusRequest::WriteSingle {
                    address: 0x9E21,
                    value: 3
                }
            ),
            (COUNTIS_UNIT, tariff),
        ]
    );
    assert_eq!(
        events(&app, id).await,
        vec![("command_verification_failed".to_owned(), "warning".to_owned(), false)]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_broadcast_tariff_is_verified_by_reading_every_device_that_takes_it() {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap();
    let clock = Clock::manual(at);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let other = {
        let profile = ProfileSet::builtin().get("countis-e43").unwrap();
        let model = CountisModel::new(Variant::E43, Firmware::V201, 6, Tz::UTC, at);
        SimDevice::new(profile, 6, model, clock.clone())
    };
    let th40c = {
        let profile = ProfileSet::builtin().get("th40c").unwrap();
        SimDevice::new(profile, 1, Th40cModel::new(1, Tz::UTC, at), clock.clone())
    };
    let (_sim, line, _stop) = serve(vec![countis(at, &clock), other, th40c]).await;
    let (gateway, requests, _mute) = gateway(line).await;
    let bus = add_bus(&app, &engineer, gateway.port()).await;
    let five = add_device(&app, &engineer, bus, "countis-e43", COUNTIS_UNIT, 3600).await;
    let six = add_device(&app, &engineer, bus, "countis-e43", 6, 3600).await;
    add_device(&app, &engineer, bus, "th40c", 1, 3600).await;
    // A COUNTIS on the bus that does not answer: left unverified, and said so.
    add_device(&app, &engineer, bus, "countis-e43", 9, 3600).await;
    for unit in [COUNTIS_UNIT, 6, 1, 9] {
        polled(&requests, unit).await;
    }

    let body = json!({"kind": "set_tariff", "tariff": 2, "broadcast": true});
    let job = run_command(&app, &engineer, five, body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["outcome"],
        "sent to all devices (no answer expected); not verified on countis-e43@9 (reading before: no answer)"
    );
    let shown = |tariff: u16| json!({format!("device {five}"): {"0xC801": [tariff]}, format!("device {six}"): {"0xC801": [tariff]}});
    assert_eq!(job["before"], shown(1));
    assert_eq!(job["after"], shown(2));
    // Each COUNTIS read before and after the one write to unit 0; the
    // TH40C, whose profile has no such write, is not read for it.
    let all = requests.lock().unwrap().clone();
    let write_at = all.iter().position(|(unit, _)| *unit == 0).unwrap();
    let at_nine: Vec<_> = all[..write_at].iter().rev().take(3).cloned().collect();
    let tariff_read = ModbusRequest::ReadHolding {
        start: 0xC801,
        count: 1,
    };
    assert_eq!(at_nine, vec![(9, tariff_read); 3], "tried three times");
    let list: Vec<_> = all.into_iter().filter(|(unit, _)| *unit != 9).collect();
    let at = list
        .iter()
        .position(|(unit, _)| *unit == 0)
        .expect("the broadcast was sent");
    let tariff = ModbusRequest::ReadHolding {
        start: 0xC801,
        count: 1,
    };
    assert_eq!(
        list[at - 2..=at + 2],
        [
            (COUNTIS_UNIT, tariff.clone()),
            (6, tariff.clone()),
            (
                0,
                ModbusRequest::WriteSingle {
                    address: 0x9E21,
                    value: 2
                }
            ),
            (COUNTIS_UNIT, tariff.clone()),
            (6, tariff),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_clock_set_stored_for_today_is_known_to_the_claimer_and_nothing_is_written() {
    let (app, engineer, id, requests, _filter, _stop) = th40c_line(chrono::Duration::minutes(-1), false).await;
    // A set that succeeded at 00:30 Rome time today (23:30 UTC the day
    // before), stored as a previous server run left it.
    let set_at = Utc.with_ymd_and_hms(2026, 11, 19, 23, 30, 0).unwrap();
    sqlx::query(
        "INSERT INTO jobs (kind, bus_id, device_id, state, parameters, result, requested_by, finished_at) \
         SELECT 'command', bus_id, id, 'succeeded', '{\"kind\": \"set_clock\"}', \
                jsonb_build_object('outcome', null, 'clock_set_at', $2::timestamptz), 'earlier', $2 \
         FROM devices WHERE id = $1",
    )
    .bind(id)
    .bind(set_at)
    .execute(&app.pool)
    .await
    .unwrap();
    let job = run_command(&app, &engineer, id, json!({"kind": "set_clock"})).await;
    assert_eq!(job["error"]["code"], "clock_set_today", "{job}");
    assert_eq!(writes(&requests), vec![], "no write reached the line");
    app.stop().await;
}

#[tokio::test]
async fn a_lost_write_is_sent_again_only_when_sending_it_twice_is_harmless() {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap();
    let clock = Clock::manual(at);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let (_sim, line, _stop) = serve(vec![countis(at, &clock)]).await;
    let (gateway, requests, filter) = gateway(line).await;
    let bus = add_bus(&app, &engineer, gateway.port()).await;
    let id = add_device(&app, &engineer, bus, "countis-e43", COUNTIS_UNIT, 3600).await;
    polled(&requests, COUNTIS_UNIT).await;
    let set = ModbusRequest::WriteSingle {
        address: 0x9E21,
        value: 4,
    };
    let reset = ModbusRequest::WriteSingle {
        address: 0x9E40,
        value: 0x20,
    };

    // A tariff set twice is set once: the lost write is sent again.
    filter.lock().unwrap().drop_writes = 1;
    let job = run_command(&app, &engineer, id, json!({"kind": "set_tariff", "tariff": 4})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["after"], json!({"0xC801": [4]}));
    assert_eq!(
        writes(&requests),
        vec![(COUNTIS_UNIT, set.clone()), (COUNTIS_UNIT, set.clone())]
    );

    // A reset is not sent twice: it may have reached the meter.
    filter.lock().unwrap().drop_writes = 1;
    let job = run_command(&app, &engineer, id, json!({"kind": "reset_partial"})).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"], json!({"code": "device", "message": "no answer"}));
    assert_eq!(
        writes(&requests),
        vec![(COUNTIS_UNIT, set.clone()), (COUNTIS_UNIT, set), (COUNTIS_UNIT, reset)]
    );
    app.stop().await;
}

#[tokio::test]
async fn settings_read_back_as_written_on_a_countis_and_a_concentrator() {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap();
    let clock = Clock::manual(at);
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    let concentrator = {
        let profile = ProfileSet::builtin().get("pulse-concentrator").unwrap();
        let model = ConcentratorModel::new(9, Tz::UTC, at, MODE_POT_FREE);
        SimDevice::new(profile, 3, model, clock.clone())
    };
    let (_sim, line, _stop) = serve(vec![countis(at, &clock), concentrator]).await;
    let (gateway, requests, _filter) = gateway(line).await;
    let bus = add_bus(&app, &engineer, gateway.port()).await;
    let e43 = add_device(&app, &engineer, bus, "countis-e43", COUNTIS_UNIT, 3600).await;
    let pulses = add_device(&app, &engineer, bus, "pulse-concentrator", 3, 3600).await;
    polled(&requests, COUNTIS_UNIT).await;
    polled(&requests, 3).await;

    // E43/E44 manual: CT 1-12000 A primary, 1 or 5 A secondary; the
    // simulated meter starts at 800/5.
    let body = json!({"kind": "set_ct_ratio", "primary_a": 400, "secondary_a": 1});
    let job = run_command(&app, &engineer, e43, body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["before"], json!({"0xE002": [800], "0xE001": [5]}));
    assert_eq!(job["after"], json!({"0xE002": [400], "0xE001": [1]}));

    // Input 2's five settings at 0x0102 + 7: kWh (code 1), 0.1 per pulse
    // (code 2), CT 40, VT 2.5 (written x10: 25), OFF time 30 ms.
    let body = json!({"kind": "configure_channel", "channel": 2, "unit": "kWh", "pulse_weight": 0.1,
                      "ct_ratio": 40, "vt_ratio": 2.5, "off_time_ms": 30});
    let job = run_command(&app, &engineer, pulses, body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["after"], json!({"0x0109": [1, 2, 40, 25, 30]}));

    // Inputs 1 and 3 reset: bits 0 and 2 of 0x0300, FC6 with 0x0005 (the
    // register reads nothing back, as its profile says).
    let job = run_command(
        &app,
        &engineer,
        pulses,
        json!({"kind": "reset_counters", "channels": [1, 3]}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let reset = ModbusRequest::WriteSingle {
        address: 0x0300,
        value: 0x0005,
    };
    assert_eq!(writes(&requests).last(), Some(&(3, reset)));
    app.stop().await;
}

#[tokio::test]
async fn a_broadcast_clock_set_is_checked_and_verified_on_every_th40c_of_the_bus() {
    let clock = Clock::manual(ten_in_rome());
    let app = spawn_app_with(SILENT_METER_TIMEOUT, clock.clone()).await;
    let engineer = app.token(Role::Engineer).await;
    sqlx::query("UPDATE sites SET time_zone = 'Europe/Rome'")
        .execute(&app.pool)
        .await
        .unwrap();
    let meter = |unit: u8, offset: chrono::Duration| {
        let mut model = Th40cModel::new(u64::from(unit), Tz::Europe__Rome, ten_in_rome());
        model.set_clock(ten_in_rome() + offset, ten_in_rome());
        let profile = ProfileSet::builtin().get("th40c").unwrap();
        SimDevice::new(profile, unit, model, clock.clone())
    };
    let devices = vec![
        meter(1, chrono::Duration::minutes(-2)),
        meter(2, chrono::Duration::seconds(90)),
    ];
    let (_sim, line, _stop) = serve(devices).await;
    let (gateway, requests, _filter) = gateway(line).await;
    let bus = add_bus(&app, &engineer, gateway.port()).await;
    let one = add_device(&app, &engineer, bus, "th40c", 1, 3600).await;
    let two = add_device(&app, &engineer, bus, "th40c", 2, 3600).await;
    polled(&requests, 1).await;
    polled(&requests, 2).await;

    let job = run_command(&app, &engineer, one, json!({"kind": "set_clock", "broadcast": true})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    // 09:58:00 and 10:01:30 before, both the server's 10:00:00 after.
    assert_eq!(
        job["before"],
        json!({format!("device {one}"): clock_words(26, 11, 20, 9, 58, 0),
               format!("device {two}"): clock_words(26, 11, 20, 10, 1, 30)})
    );
    let now = clock_words(26, 11, 20, 10, 0, 0);
    assert_eq!(
        job["after"],
        json!({format!("device {one}"): now.clone(), format!("device {two}"): now})
    );
    let list = requests.lock().unwrap().clone();
    let at = list.iter().position(|(unit, _)| *unit == 0).unwrap();
    assert_eq!(
        list[at - 2..=at + 2],
        [
            (1, CLOCK_READ),
            (2, CLOCK_READ),
            (
                0,
                ModbusRequest::WriteMultiple {
                    start: 0x7000,
                    values: vec![0x1A0B, 0x140A, 0x0000]
                }
            ),
            (1, CLOCK_READ),
            (2, CLOCK_READ),
        ]
    );

    // Both were set today: a second broadcast is refused, nothing written.
    let job = run_command(&app, &engineer, two, json!({"kind": "set_clock", "broadcast": true})).await;
    assert_eq!(job["error"]["code"], "clock_set_today", "{job}");
    assert_eq!(writes(&requests).len(), 1);
    app.stop().await;
}
