//! A COUNTIS's own load curve (reference: Socomec COUNTIS Modbus table
//! V200.53, load curve), read by a bus worker from the simulator over real
//! Modbus TCP: the first read takes the 7 days the meter keeps, a later one
//! only what is new; a firmware without it answers exception 02 and is
//! neither a fault nor asked again.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{TestDb, WAIT, device_config, eventually, fetch_load_profile, insert_countis, spawn_app};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use ohmnibus::device::profile::{Profile, RegisterGroup};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::{BusId, DeviceId};
use ohmnibus::domain::role::Role;
use ohmnibus::domain::transport::Transport;
use ohmnibus::poll::command::BusCommand;
use ohmnibus::poll::context::{DeviceConfig, WorkerServices};
use ohmnibus::poll::outbox::spawn_outbox;
use ohmnibus::poll::stats::PollStats;
use ohmnibus::poll::worker::{BusWorker, Stepped, Work};
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::countis::{CountisModel, Firmware, Variant};
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};

const SEED: u64 = 41;
const BUS: BusId = BusId(1);

fn at() -> DateTime<Utc> {
    // Between two 15-minute boundaries: 10:00-10:15 is still running.
    "2026-11-18T10:07:30Z".parse().unwrap()
}

fn config(id: DeviceId, profile: Arc<Profile>) -> DeviceConfig {
    // Register reads once, at the start: the load curve is what is due.
    device_config(id, "incomer", profile)
}

/// A worker for one COUNTIS simulated by `model` on a Modbus TCP line, the
/// device stored in the database first (intervals and events refer to it).
async fn worker(db: &TestDb, profile: &str, model: CountisModel, clock: &Clock) -> Polled {
    let profiles = Arc::new(ProfileSet::builtin());
    let profile = profiles.get(profile).unwrap();
    let device = SimDevice::new(Arc::clone(&profile), 1, model, clock.clone());
    let (stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::ModbusTcp,
        shutdown,
    )
    .await
    .unwrap();
    let id = insert_countis(&db.pool, line.port()).await;
    let stats = Arc::new(PollStats::default());
    let (outbox, _outbox_task) = spawn_outbox(db.pool.clone(), Arc::clone(&stats), clock.clone(), Default::default());
    let services = WorkerServices {
        pool: db.pool.clone(),
        outbox,
        stats: Arc::clone(&stats),
        profiles,
        request_timeout: Duration::from_secs(2),
        iec_exchange_deadline: ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE,
        clock_drift_threshold: Duration::from_secs(30),
        clock: clock.clone(),
        field_programming: Default::default(),
    };
    let (devices, devices_rx) = watch::channel(vec![config(id, profile)]);
    let (jobs, inbox) = mpsc::channel(16);
    let transport = Transport::ModbusTcp {
        host: "127.0.0.1".to_owned(),
        port: line.port(),
    };
    let worker = BusWorker::start(BUS, transport, devices_rx, inbox, services).await;
    Polled {
        worker,
        id,
        stats,
        jobs,
        _devices: devices,
        _stop: stop,
    }
}

/// A worker polling one simulated COUNTIS, and what the test holds of it.
struct Polled {
    worker: BusWorker,
    id: DeviceId,
    stats: Arc<PollStats>,
    jobs: mpsc::Sender<BusCommand>,
    _devices: watch::Sender<Vec<DeviceConfig>>,
    _stop: Trigger,
}

/// Steps the worker through its first register reads to its first
/// load-curve read.
async fn step_to_load_curve(worker: &mut BusWorker, id: DeviceId) {
    for _ in 0..50 {
        if let Some(Stepped::Read { device, work, .. }) = worker.step().await
            && (device, work) == (id, Work::LoadProfile)
        {
            return;
        }
    }
    panic!("no load-curve read planned");
}

fn requests(stats: &PollStats, id: DeviceId) -> u64 {
    stats.links.bus(BUS).unwrap().devices[&id].requests
}

/// The requests of one read of every register group of the profile: its
/// `optional` blocks only on a firmware that has them (a V200.53 firmware
/// answered exception 02 to them once, and they are not asked again).
fn register_requests(profile: &str, optional: bool) -> u64 {
    let profile = ProfileSet::builtin().get(profile).unwrap();
    RegisterGroup::ALL
        .iter()
        .flat_map(|&group| profile.blocks(group))
        .filter(|block| optional || !block.optional)
        .count() as u64
}

async fn stored(pool: &PgPool, id: DeviceId) -> Vec<(DateTime<Utc>, i32, f64, String, String)> {
    sqlx::query_as(
        "SELECT interval_start, interval_minutes, value, unit, meter_status FROM load_profile_intervals \
         WHERE device_id = $1 AND source = 'meter' AND obis = '1-1:1.5.0' ORDER BY interval_start",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn wait_for_rows(pool: &PgPool, id: DeviceId, rows: usize) -> Vec<(DateTime<Utc>, i32, f64, String, String)> {
    eventually(WAIT, || async { stored(pool, id).await.len() >= rows }).await;
    stored(pool, id).await
}

/// What the meter should record for `[start, start + 15 min)`, worked out
/// here from the site's power: the average of P+ (kW, primary side) by
/// the minute, sent in counts of 2 W on the secondary side of the E43's
/// 800/5 A CT (ratio 160), and scaled back by the reference's rule:
/// counts x numerator (2) / denominator (1) x CT ratio, in kW.
fn expected_kw(model: &CountisModel, start: DateTime<Utc>) -> f64 {
    let minutes: f64 = (0..15)
        .map(|minute| {
            let middle = start + TimeDelta::seconds(60 * minute + 30);
            model.phases(middle).total_active().max(0.0)
        })
        .sum();
    let average_kw = minutes / 15.0;
    let counts = (average_kw * 1000.0 / 160.0 / 2.0).round();
    counts * 2.0 / 1.0 * 160.0 / 1000.0
}

#[tokio::test]
async fn the_first_read_takes_the_seven_days_kept_and_the_next_only_what_is_new() {
    let db = TestDb::create().await;
    let clock = Clock::manual(at());
    let model = CountisModel::new(Variant::E43, Firmware::V201, SEED, Tz::UTC, at());
    let reference = model.clone();
    // Named, so that the line and the device list live to the end.
    let polled = worker(&db, "countis-e43", model, &clock).await;
    let Polled {
        mut worker,
        id,
        stats,
        jobs,
        ..
    } = polled;

    step_to_load_curve(&mut worker, id).await;
    // 7 days of closed 15-minute periods, 10:00 a week before to 09:45
    // today; the running period (10:00, incomplete) waits for the next read.
    let rows = wait_for_rows(&db.pool, id, 672).await;
    assert_eq!(rows.len(), 672);
    let first: DateTime<Utc> = "2026-11-11T10:00:00Z".parse().unwrap();
    assert_eq!(rows[0].0, first);
    assert_eq!(rows[671].0, "2026-11-18T09:45:00Z".parse::<DateTime<Utc>>().unwrap());
    let mut daylight = 0;
    for (start, minutes, value, unit, status) in &rows {
        assert_eq!(
            (*minutes, unit.as_str(), status.as_str()),
            (15, "kW", "full"),
            "{start}"
        );
        let expected = expected_kw(&reference, *start);
        assert!(
            (value - expected).abs() < 1e-9,
            "{start}: stored {value} kW, expected {expected} kW"
        );
        daylight += usize::from(*value > 0.0);
    }
    assert!(daylight > 100, "the site draws power: {daylight} periods above zero");
    let backfill = requests(&stats, id);

    // Half an hour on: 10:00 and 10:15 have closed; 10:30 runs.
    clock.advance(TimeDelta::minutes(30));
    let before = requests(&stats, id);
    jobs.send(BusCommand::ReadNow { job: 1, device: id }).await.unwrap();
    assert_eq!(worker.step().await, Some(Stepped::Queued));
    assert_eq!(worker.step().await, Some(Stepped::ReadNow(id)));
    let rows = wait_for_rows(&db.pool, id, 674).await;
    assert_eq!(rows.len(), 674, "nothing stored twice");
    let tail: Vec<_> = rows[672..].iter().map(|row| row.0.to_rfc3339()).collect();
    assert_eq!(tail, ["2026-11-18T10:00:00+00:00", "2026-11-18T10:15:00+00:00"]);
    for (start, _, value, _, _) in &rows[672..] {
        assert!((value - expected_kw(&reference, *start)).abs() < 1e-9, "{start}");
    }
    // The register groups, then the CT primary and secondary, the pointer
    // and one block: the newest block already reaches what is stored.
    let asked = requests(&stats, id) - before;
    assert_eq!(asked, register_requests("countis-e43", true) + 4);
    assert!(
        backfill > 40,
        "the first read went back block by block ({backfill} requests)"
    );
}

#[tokio::test]
async fn a_firmware_without_the_load_curve_is_an_event_not_a_fault_and_is_not_asked_again() {
    let db = TestDb::create().await;
    let clock = Clock::manual(at());
    let mut model = CountisModel::new(Variant::E33, Firmware::V200, SEED, Tz::UTC, at());
    model.load_curve = false;
    // Named, so that the line and the device list live to the end.
    let polled = worker(&db, "countis-e33", model, &clock).await;
    let Polled {
        mut worker,
        id,
        stats,
        jobs,
        ..
    } = polled;

    step_to_load_curve(&mut worker, id).await;
    let events = || async {
        sqlx::query_as::<_, (String, String)>("SELECT code, severity FROM events WHERE device_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&db.pool)
            .await
            .unwrap()
    };
    assert!(eventually(WAIT, || async { !events().await.is_empty() }).await);
    assert_eq!(
        events().await,
        [("load_curve_unsupported".to_owned(), "info".to_owned())],
        "no comm_lost, no other event"
    );
    let before = requests(&stats, id);
    let statistics = stats.links.bus(BUS).unwrap().devices[&id].clone();
    assert_eq!(statistics.timeouts + statistics.transport_errors, 0);

    // An operator's read: register groups only, the load curve is not asked.
    jobs.send(BusCommand::ReadNow { job: 1, device: id }).await.unwrap();
    assert_eq!(worker.step().await, Some(Stepped::Queued));
    assert_eq!(worker.step().await, Some(Stepped::ReadNow(id)));
    assert_eq!(requests(&stats, id) - before, register_requests("countis-e33", false));
    assert!(stored(&db.pool, id).await.is_empty());
    assert_eq!(events().await.len(), 1);
}

#[tokio::test]
async fn a_garbled_block_is_an_event_naming_the_device_and_the_blocks_before_it_are_kept() {
    let db = TestDb::create().await;
    let clock = Clock::manual(at());
    let mut model = CountisModel::new(Variant::E43, Firmware::V201, SEED, Tz::UTC, at());
    model.garbled_block = Some(2);
    let polled = worker(&db, "countis-e43", model, &clock).await;
    let Polled { mut worker, id, .. } = polled;

    step_to_load_curve(&mut worker, id).await;
    // Blocks 0 and 1: the running period and 57 closed ones, 09:45 back to
    // 19:45 the day before (57 x 15 minutes = 14 h 15 min).
    let rows = wait_for_rows(&db.pool, id, 57).await;
    assert_eq!(rows.len(), 57);
    assert_eq!(rows[0].0, "2026-11-17T19:45:00Z".parse::<DateTime<Utc>>().unwrap());
    assert_eq!(rows[56].0, "2026-11-18T09:45:00Z".parse::<DateTime<Utc>>().unwrap());
    let events: Vec<(String, String, String)> =
        sqlx::query_as("SELECT code, severity, message FROM events WHERE device_id = $1")
            .bind(id)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let (code, severity, message) = &events[0];
    assert_eq!((code.as_str(), severity.as_str()), ("load_curve_garbled", "warning"));
    assert!(
        message.starts_with("incomer:") && message.contains("record size 5") && message.contains("block 3"),
        "{message}"
    );
}

/// Served end to end: the application polls a COUNTIS E43 on a Modbus TCP
/// line; the load-profile API shows the meter's own curve, with the
/// meter's status, and the device page the meter's vendor and product
/// names with its identity.
#[tokio::test]
async fn the_api_shows_the_load_curve_and_the_page_the_meters_names() {
    let app = spawn_app().await;
    let engineer = app.token(Role::Engineer).await;
    let now = Utc::now();
    let model = CountisModel::new(Variant::E43, Firmware::V201, SEED, Tz::UTC, now);
    let profile = ProfileSet::builtin().get("countis-e43").unwrap();
    let device = SimDevice::new(profile, 2, model, Clock::System);
    let (_stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::ModbusTcp,
        shutdown,
    )
    .await
    .unwrap();
    let transport = serde_json::json!({"kind": "modbus_tcp", "host": "127.0.0.1", "port": line.port()});
    let bus = app.create_bus(&engineer, "countis line", transport).await;
    let body = serde_json::json!({"name": "E43 feeder", "profile": "countis-e43", "address": 2});
    let id = app.create_device(&engineer, bus, body).await;

    let (from, to) = (now - TimeDelta::hours(6), now + TimeDelta::minutes(1));
    let shown = eventually(WAIT, || async {
        fetch_load_profile(&app, &engineer, id.0, "1-1:1.5.0", from, to)
            .await
            .len()
            >= 20
    })
    .await;
    let intervals = fetch_load_profile(&app, &engineer, id.0, "1-1:1.5.0", from, to).await;
    assert!(shown, "{intervals:?}");
    for interval in &intervals {
        assert_eq!(interval["unit"], "kW", "{interval}");
        assert_eq!(interval["source"], "meter", "{interval}");
        assert_eq!(interval["meter_status"], "full", "{interval}");
    }
    let (status, page) = app
        .request("GET", &format!("/devices/{id}"), Some(&engineer), None)
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(
        page.contains("countis e43 / SOCOMEC / COUNTIS E43"),
        "the page names the meter"
    );
}
