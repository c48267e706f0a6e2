//! The binary stopped the two ways a process dies: SIGTERM (it stops
//! scheduling, finishes the exchange on the wire, writes or spills what it
//! holds and exits within 20 s) and SIGKILL (nothing runs at all). After a
//! restart, what was spilled is stored: at most the readings of the last
//! half second or so before a SIGKILL are lost.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ohmnibus::domain::ids::DeviceId;
use sqlx::PgPool;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::support::{
    Link, PgProxy, STORED, TestDb, U12_ADDRESS, U12_OBIS, WAIT, counting_meter, eventually, insert_countis,
    insert_countis_expecting, polls_in, spill_dir,
};

const BINARY: &str = env!("CARGO_BIN_EXE_ohmnibus");

/// `ohmnibus serve` on `url`, spilling to `spill`, logging to a file there.
async fn serve(url: &str, spill: &Path, run: usize) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::create_dir_all(spill).unwrap();
    let log = std::fs::File::create(spill.join(format!("server{run}.log"))).unwrap();
    let server = Command::new(BINARY)
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("OHMNIBUS_BIND", format!("127.0.0.1:{port}"))
        .env("OHMNIBUS_SPILL_DIR", spill)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let up = eventually(WAIT, || async { TcpStream::connect(("127.0.0.1", port)).await.is_ok() }).await;
    assert!(up, "the server did not listen on {port}");
    server
}

fn log_of(spill: &Path, run: usize) -> String {
    std::fs::read_to_string(spill.join(format!("server{run}.log"))).unwrap_or_default()
}

async fn signal(server: &Child, name: &str) {
    let pid = server.id().unwrap();
    let status = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

fn spilled_lines(spill: &Path) -> usize {
    let text = std::fs::read_to_string(spill.join(ohmnibus::poll::spill::SPILL_FILE)).unwrap_or_default();
    text.lines().count()
}

/// SIGTERM while the database refuses connections: the process exits
/// within 20 s with its readings in the spill file; the next start stores
/// every one of them.
#[tokio::test]
async fn sigterm_in_an_outage_spills_and_the_next_start_stores_every_reading() {
    let db = TestDb::create().await;
    let spill = spill_dir(&db);
    let (meter_port, answered) = counting_meter().await;
    let device = insert_countis(&db.pool, meter_port).await;
    let proxy = PgProxy::start(&db.url).await;
    let url = proxy.url(&db.url);

    let mut server = serve(&url, &spill, 1).await;
    assert!(
        eventually(WAIT, || async { polls_in(&db.pool, STORED, device).await >= 2 }).await,
        "nothing stored with the database up: {}",
        log_of(&spill, 1)
    );
    proxy.set(Link::Refusing);
    // Three reads the database cannot take.
    let cut = answered.at(U12_ADDRESS);
    assert!(eventually(WAIT, || async { answered.at(U12_ADDRESS) >= cut + 3 }).await);

    signal(&server, "-TERM").await;
    let asked = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .unwrap_or_else(|_| panic!("not stopped within 20 s of SIGTERM: {}", log_of(&spill, 1)))
        .unwrap();
    assert!(status.success(), "exit status {status}: {}", log_of(&spill, 1));
    let took = asked.elapsed();
    let polls_answered = answered.at(U12_ADDRESS);
    assert!(
        spilled_lines(&spill) > 0,
        "nothing in the spill file: {}",
        log_of(&spill, 1)
    );
    assert!(
        log_of(&spill, 1).contains("spilling readings"),
        "the spill is not logged: {}",
        log_of(&spill, 1)
    );

    proxy.set(Link::Open);
    let mut again = serve(&url, &spill, 2).await;
    assert!(
        eventually(WAIT, || async {
            polls_in(&db.pool, STORED, device).await >= polls_answered && spilled_lines(&spill) == 0
        })
        .await,
        "after the restart {} of {polls_answered} reads stored, {} lines left in the spill file (stopped in {took:?}): {}",
        polls_in(&db.pool, STORED, device).await,
        spilled_lines(&spill),
        log_of(&spill, 2)
    );
    assert!(
        log_of(&spill, 2).contains("every spilled reading is stored"),
        "{}",
        log_of(&spill, 2)
    );
    signal(&again, "-TERM").await;
    let _ = tokio::time::timeout(Duration::from_secs(20), again.wait()).await;
    std::fs::remove_dir_all(&spill).ok();
}

/// SIGKILL, with the database up and then with it away: only readings not
/// yet handed to the database or the spill file are lost, which is at most
/// the last read or two of a meter read every second.
#[tokio::test]
async fn sigkill_loses_at_most_the_last_moment() {
    for link in [Link::Open, Link::Refusing] {
        let db = TestDb::create().await;
        let spill = spill_dir(&db);
        let (meter_port, answered) = counting_meter().await;
        let device = insert_countis(&db.pool, meter_port).await;
        let proxy = PgProxy::start(&db.url).await;
        let url = proxy.url(&db.url);

        let mut server = serve(&url, &spill, 1).await;
        assert!(eventually(WAIT, || async { polls_in(&db.pool, STORED, device).await >= 2 }).await);
        proxy.set(link);
        let cut = answered.at(U12_ADDRESS);
        assert!(eventually(WAIT, || async { answered.at(U12_ADDRESS) >= cut + 3 }).await);
        signal(&server, "-KILL").await;
        server.wait().await.unwrap();
        let killed_at = chrono::Utc::now();
        let polls_answered = answered.at(U12_ADDRESS);

        proxy.set(Link::Open);
        let mut again = serve(&url, &spill, 2).await;
        assert!(
            eventually(WAIT, || async { spilled_lines(&spill) == 0 }).await,
            "the spill file is not replayed ({link:?}): {}",
            log_of(&spill, 2)
        );
        signal(&again, "-TERM").await;
        let _ = tokio::time::timeout(Duration::from_secs(20), again.wait()).await;
        // The first run's reads are those stamped before it was killed (the
        // second run reads the meter on, stamped after).
        let first_run: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT read_at) FROM readings WHERE device_id = $1 AND obis = $2 AND read_at <= $3",
        )
        .bind(device)
        .bind(U12_OBIS)
        .bind(killed_at)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        let first_run = first_run as usize;
        assert!(
            first_run <= polls_answered,
            "{first_run} reads stored, {polls_answered} answered ({link:?})"
        );
        let lost = polls_answered - first_run;
        assert!(
            lost <= 1,
            "{lost} of {polls_answered} reads lost to SIGKILL ({link:?}): {}",
            log_of(&spill, 1)
        );
        if link == Link::Refusing {
            assert!(
                log_of(&spill, 2).contains("every spilled reading is stored"),
                "{}",
                log_of(&spill, 2)
            );
        }
        std::fs::remove_dir_all(&spill).ok();
    }
}

/// Real-time reads of `device` held (its quarantine) and stamped by `until`.
async fn held_polls(pool: &PgPool, device: DeviceId, until: chrono::DateTime<chrono::Utc>) -> usize {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT read_at) FROM held_readings WHERE device_id = $1 AND obis = $2 AND read_at <= $3",
    )
    .bind(device)
    .bind(U12_OBIS)
    .bind(until)
    .fetch_one(pool)
    .await
    .unwrap();
    count as usize
}

/// SIGTERM in an outage with the device in quarantine (its installation
/// record names another meter than the one answering): its held readings
/// are spilled, marked held, and the next start stores them in
/// `held_readings`, every read the meter answered, none as the device's.
#[tokio::test]
async fn sigterm_in_an_outage_spills_held_readings_and_the_next_start_holds_them() {
    let db = TestDb::create().await;
    let spill = spill_dir(&db);
    let (meter_port, answered) = counting_meter().await;
    let device = insert_countis_expecting(&db.pool, meter_port, "2026-0000-0001").await;
    let proxy = PgProxy::start(&db.url).await;
    let url = proxy.url(&db.url);

    let mut server = serve(&url, &spill, 1).await;
    let now = chrono::Utc::now;
    assert!(
        eventually(WAIT, || async { held_polls(&db.pool, device, now()).await >= 2 }).await,
        "nothing held with the database up: {}",
        log_of(&spill, 1)
    );
    proxy.set(Link::Refusing);
    let cut = answered.at(U12_ADDRESS);
    assert!(eventually(WAIT, || async { answered.at(U12_ADDRESS) >= cut + 3 }).await);

    signal(&server, "-TERM").await;
    let status = tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .unwrap_or_else(|_| panic!("not stopped within 20 s of SIGTERM: {}", log_of(&spill, 1)))
        .unwrap();
    assert!(status.success(), "exit status {status}: {}", log_of(&spill, 1));
    let stopped_at = now();
    let polls_answered = answered.at(U12_ADDRESS);
    let text = std::fs::read_to_string(spill.join(ohmnibus::poll::spill::SPILL_FILE)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "nothing in the spill file: {}", log_of(&spill, 1));
    assert!(
        lines.iter().all(|line| line.contains("\"held\":true")),
        "a reading of the quarantined device spilled unmarked: {text}"
    );

    proxy.set(Link::Open);
    let mut again = serve(&url, &spill, 2).await;
    assert!(
        eventually(WAIT, || async {
            held_polls(&db.pool, device, stopped_at).await + 1 >= polls_answered && spilled_lines(&spill) == 0
        })
        .await,
        "after the restart {} of {polls_answered} reads held, {} lines left in the spill file: {}",
        held_polls(&db.pool, device, stopped_at).await,
        spilled_lines(&spill),
        log_of(&spill, 2)
    );
    signal(&again, "-TERM").await;
    let _ = tokio::time::timeout(Duration::from_secs(20), again.wait()).await;
    // Each read the first run's meter answered is held once (one less only
    // for a read the stop cut between two of its requests).
    let held = held_polls(&db.pool, device, stopped_at).await;
    assert!(
        held == polls_answered || held + 1 == polls_answered,
        "{held} reads held, {polls_answered} answered"
    );
    assert_eq!(
        polls_in(&db.pool, STORED, device).await,
        0,
        "no held read stored as the device's"
    );
    std::fs::remove_dir_all(&spill).ok();
}
