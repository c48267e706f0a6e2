//! Fairness on a shared line: one dead and one slow device on a bus of five
//! must not make the healthy devices' reads late by more than one period.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::support::{SILENT_METER_TIMEOUT, WAIT, count_readings, eventually, spawn_app_with_timeout};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::role::Role;
use ohmnibus::shutdown;
use ohmnibus::sim::bus::SimBus;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::server::{TcpFraming, spawn_tcp};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The slow and the dead device come first on the bus, so their reads are
/// due before the healthy devices' ones.
const SLOW_UNIT: u8 = 1;
const DEAD_UNIT: u8 = 2;
const HEALTHY_UNITS: [u8; 3] = [3, 4, 5];
/// How long the slow device takes to answer each request.
const SLOW_ANSWER: Duration = Duration::from_millis(40);
/// Real-time period: the line (20 ms device turnaround each way) then carries
/// about half its capacity, as a commissioned RS485 bus should.
const REALTIME_PERIOD_SECONDS: u64 = 3;
/// Real-time reads each healthy device must make while the dead device backs
/// off, after it turned unreachable.
const PERIODS_AFTER_LOSS: i64 = 3;

/// A gateway in front of the simulated line that holds back the slow
/// device's answers: RTU over TCP, one request at a time, the unit address is
/// the request's first byte.
async fn slow_gateway(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream).await.unwrap();
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let last_unit = Arc::new(AtomicU8::new(0));
            let unit = Arc::clone(&last_unit);
            tokio::spawn(async move {
                let mut buffer = [0u8; 512];
                while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
                    unit.store(buffer[0], Ordering::SeqCst);
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buffer = [0u8; 512];
                while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
                    if last_unit.load(Ordering::SeqCst) == SLOW_UNIT {
                        tokio::time::sleep(SLOW_ANSWER).await;
                    }
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn a_dead_and_a_slow_device_do_not_make_healthy_reads_late() {
    let app = spawn_app_with_timeout(SILENT_METER_TIMEOUT).await;
    let token = app.token(Role::Engineer).await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let devices = std::iter::once(SLOW_UNIT)
        .chain(HEALTHY_UNITS)
        .map(|unit| {
            SimDevice::new(
                profile.clone(),
                unit,
                Th40cModel::new(u64::from(unit), Tz::UTC, at),
                Clock::manual(at),
            )
        })
        .collect();
    let (_stop, shutdown) = shutdown::channel();
    let (line, _) = spawn_tcp(SimBus::new(devices), "127.0.0.1:0", TcpFraming::RtuOverTcp, shutdown)
        .await
        .unwrap();
    let gateway = slow_gateway(line).await;
    let transport = json!({"kind": "rtu_over_tcp", "host": "127.0.0.1", "port": gateway.port()});
    let bus_id = app.create_bus(&token, "shared", transport).await;
    let started = tokio::time::Instant::now();
    let mut ids = Vec::new();
    for unit in 1..=5u8 {
        let body = json!({"name": format!("meter {unit}"), "profile": "th40c", "address": unit,
                          "schedule": {"realtime_seconds": REALTIME_PERIOD_SECONDS, "energy_seconds": 60}});
        ids.push(app.create_device(&token, bus_id, body).await.0);
    }

    let state = |id: i64| app.device_state(&token, DeviceId(id));
    // Every device's first energy read (43 requests each), the dead device's
    // retries until it is unreachable, and several periods of its back-off.
    let dead = ids[usize::from(DEAD_UNIT) - 1];
    let realtime_reads = |id: i64| count_readings(&app, id, "1-1:32.7.0");
    let lost = eventually(WAIT, || async { state(dead).await == "unreachable" }).await;
    assert!(lost, "the dead device never turned unreachable");
    let mut at_loss = Vec::new();
    for unit in HEALTHY_UNITS {
        at_loss.push(realtime_reads(ids[usize::from(unit) - 1]).await);
    }
    let settled = eventually(WAIT, || async {
        for (unit, before) in HEALTHY_UNITS.iter().zip(&at_loss) {
            let id = ids[usize::from(*unit) - 1];
            if realtime_reads(id).await < before + PERIODS_AFTER_LOSS
                || count_readings(&app, id, "1-1:1.8.0").await == 0
            {
                return false;
            }
        }
        true
    })
    .await;
    assert!(
        settled,
        "the healthy devices were not read while the dead one backed off"
    );
    let elapsed = started.elapsed();

    let bus = app.bus(&token, bus_id).await;
    let statistics = |id: i64| {
        bus["statistics"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_id"] == id)
            .unwrap()
            .clone()
    };
    for unit in HEALTHY_UNITS {
        let id = ids[usize::from(unit) - 1];
        let healthy = statistics(id);
        let latest = healthy["read_lateness_max_periods"].as_f64().unwrap();
        assert!(
            latest < 1.0,
            "healthy meter {unit} started a read {latest} periods late: {healthy}"
        );
        // A real-time read in (nearly) every period since the devices were added.
        let reads = realtime_reads(id).await;
        let periods = (elapsed.as_secs() / REALTIME_PERIOD_SECONDS) as i64;
        assert!(
            reads >= periods - 1,
            "healthy meter {unit}: {reads} real-time reads in {elapsed:?}"
        );
        assert_eq!(healthy["timeouts"], 0);
    }
    let slow = statistics(ids[usize::from(SLOW_UNIT) - 1]);
    assert!(
        slow["latency_mean_ms"].as_f64().unwrap() >= SLOW_ANSWER.as_secs_f64() * 1_000.0,
        "{slow}"
    );
    assert_eq!(
        state(ids[usize::from(SLOW_UNIT) - 1]).await,
        "online",
        "the slow device is read, slowly"
    );
    assert_eq!(state(ids[usize::from(DEAD_UNIT) - 1]).await, "unreachable");
    app.stop().await;
}
