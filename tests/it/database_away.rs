//! A bus worker never waits for the database: with the database refusing
//! connections, or accepting them and never answering, it polls at the
//! rate it polls with the database up. What it read waits in the outbox.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::{TestDb, counting_meter, device_config};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::{BusId, DeviceId};
use ohmnibus::domain::transport::Transport;
use ohmnibus::poll::context::{DeviceConfig, WorkerServices};
use ohmnibus::poll::outbox::spawn_outbox;
use ohmnibus::poll::stats::PollStats;
use ohmnibus::poll::worker::run_bus;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// Real-time reads are due this often: the worker is idle between them, so
/// its rate is the schedule's, not the machine's.
const PERIOD: Duration = Duration::from_millis(100);
/// How long requests are counted, after the worker has settled.
const WINDOW: Duration = Duration::from_secs(3);
const SETTLE: Duration = Duration::from_millis(700);

/// A pool on a database that refuses connections (nothing listens).
fn refusing_pool() -> PgPool {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    lazy_pool(port)
}

/// A pool on a database that accepts connections and never answers.
async fn silent_pool() -> PgPool {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    lazy_pool(port)
}

fn lazy_pool(port: u16) -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/ohmnibus"))
        .unwrap()
}

/// Requests per second the worker sends to a device on `pool`'s database,
/// counted over [`WINDOW`], and the readings it handed over meanwhile.
async fn poll_rate(pool: PgPool) -> (f64, u64) {
    let (port, requests) = counting_meter().await;
    let stats = Arc::new(PollStats::default());
    let (outbox, outbox_task) = spawn_outbox(pool.clone(), Arc::clone(&stats), Clock::System, Default::default());
    let profiles = Arc::new(ProfileSet::builtin());
    let profile = profiles.get("countis-e43").unwrap();
    let device = DeviceConfig {
        realtime: PERIOD,
        ..device_config(DeviceId(1), "meter", profile)
    };
    let services = WorkerServices {
        pool,
        outbox,
        stats: Arc::clone(&stats),
        profiles,
        request_timeout: Duration::from_millis(500),
        iec_exchange_deadline: ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE,
        clock_drift_threshold: Duration::from_secs(30),
        clock: Clock::System,
        field_programming: Default::default(),
    };
    let (_devices, devices_rx) = watch::channel(vec![device]);
    let (_jobs, inbox) = mpsc::channel(16);
    let (stop, shutdown) = ohmnibus::shutdown::channel();
    let transport = Transport::ModbusTcp {
        host: "127.0.0.1".to_owned(),
        port,
    };
    let worker = tokio::spawn(run_bus(BusId(1), transport, devices_rx, inbox, services, shutdown));
    tokio::time::sleep(SETTLE).await;
    let before = requests.total();
    tokio::time::sleep(WINDOW).await;
    let counted = requests.total() - before;
    stop.fire();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("the worker stops although the database is away")
        .unwrap();
    outbox_task.abort();
    let queued = stats.readings_queued.load(Ordering::SeqCst);
    (counted as f64 / WINDOW.as_secs_f64(), queued)
}

#[tokio::test]
async fn the_worker_polls_at_its_rate_whether_the_database_refuses_or_never_answers() {
    let db = TestDb::create().await;
    let pool = db.pool.clone();
    let (up, up_queued) = poll_rate(pool).await;
    // Several requests per real-time read, ten reads a second.
    assert!(up >= 10.0, "{up} requests/s with the database up");
    assert!(up_queued > 0);
    for (what, pool) in [
        ("refuses connections", refusing_pool()),
        ("never answers", silent_pool().await),
    ] {
        let (away, queued) = poll_rate(pool).await;
        assert!(
            (away - up).abs() <= up * 0.1,
            "with a database that {what}: {away:.1} requests/s, {up:.1} with it up"
        );
        assert!(queued > 0, "readings were handed over while the database {what}");
    }
}
