//! Ingest: a batch stores each reading exactly once however often it is
//! written, the latest values follow the newest read whatever order the
//! batches come in (a month without a partition: tests/it/partitions.rs), and the latest
//! values and the device rows are not rewritten when nothing changed.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ohmnibus::device::reading::Reading;
use ohmnibus::domain::address::UnitAddress;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::state::DeviceState;
use ohmnibus::domain::transport::Transport;
use ohmnibus::domain::unit::Unit;
use ohmnibus::store::buses::upsert_bus;
use ohmnibus::store::devices::{
    DeviceAddress, DeviceStatus, NewDevice, fetch_device, insert_device, update_device_status,
};
use ohmnibus::store::readings::{fetch_latest, insert_readings};
use ohmnibus::store::readings_writer::ReadingsWriter;
use sqlx::PgPool;

use crate::support::TestDb;

/// The server's time the readings are written at: after every stamp the
/// tests use, none of which is to count as in the future.
fn server_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap()
}

async fn th40c(pool: &PgPool) -> DeviceId {
    let transport = Transport::ModbusTcp {
        host: "127.0.0.1".into(),
        port: 1,
    };
    let bus = upsert_bus(pool, "line", &transport).await.unwrap();
    insert_device(
        &mut pool.acquire().await.unwrap(),
        &NewDevice {
            bus_id: bus.id,
            name: "Main",
            profile: "th40c",
            address: DeviceAddress::Unit(UnitAddress::new(1).unwrap()),
            realtime_seconds: 10,
            energy_seconds: 60,
            history_seconds: 900,
        },
    )
    .await
    .unwrap()
    .id
}

fn reading(obis: &str, value: f64, read_at: DateTime<Utc>) -> Reading {
    Reading {
        obis: obis.parse().unwrap(),
        value,
        unit: Unit::KWh,
        read_at,
        captured_at: None,
        quality: Quality::GOOD,
    }
}

/// Every stored reading of the device: (code, time, value), in key order.
async fn stored(pool: &PgPool, device: DeviceId) -> Vec<(String, DateTime<Utc>, f64)> {
    sqlx::query_as("SELECT obis, read_at, value FROM readings WHERE device_id = $1 ORDER BY obis, read_at")
        .bind(device)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The latest value of one code: (time, value).
async fn latest(pool: &PgPool, device: DeviceId, obis: &str) -> (DateTime<Utc>, f64) {
    let row = fetch_latest(pool, device)
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.obis.to_string() == obis)
        .unwrap();
    (row.read_at, row.value)
}

/// The transaction that wrote the row last: it changes whenever the row is rewritten.
async fn writer(pool: &PgPool, sql: &'static str, device: DeviceId) -> String {
    sqlx::query_scalar(sql).bind(device).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn a_batch_stored_twice_or_overlapping_a_stored_one_stores_each_reading_once() {
    let db = TestDb::create().await;
    let id = th40c(&db.pool).await;
    let at = Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap();
    let first: Vec<_> = [
        reading("1-1:1.8.0", 10.0, at),
        reading("1-1:2.8.0", 20.0, at),
        reading("1-1:1.8.0", 11.0, at + TimeDelta::seconds(10)),
    ]
    .into_iter()
    .map(|r| (id, r))
    .collect();
    insert_readings(&db.pool, &first, server_now()).await.unwrap();
    insert_readings(&db.pool, &first, server_now()).await.unwrap();
    // A batch holding a stored row (with another value: the stored one
    // stays) and a new one, and a new row twice within itself.
    let second: Vec<_> = [
        reading("1-1:1.8.0", 99.0, at),
        reading("1-1:2.8.0", 21.0, at + TimeDelta::seconds(10)),
        reading("1-1:2.8.0", 21.0, at + TimeDelta::seconds(10)),
    ]
    .into_iter()
    .map(|r| (id, r))
    .collect();
    insert_readings(&db.pool, &second, server_now()).await.unwrap();
    let ten = at + TimeDelta::seconds(10);
    assert_eq!(
        stored(&db.pool, id).await,
        vec![
            ("1-1:1.8.0".to_owned(), at, 10.0),
            ("1-1:1.8.0".to_owned(), ten, 11.0),
            ("1-1:2.8.0".to_owned(), at, 20.0),
            ("1-1:2.8.0".to_owned(), ten, 21.0),
        ]
    );
    assert_eq!(latest(&db.pool, id, "1-1:1.8.0").await, (ten, 11.0));
    assert_eq!(latest(&db.pool, id, "1-1:2.8.0").await, (ten, 21.0));
}

#[tokio::test]
async fn the_latest_value_is_the_newest_read_whatever_order_the_batches_come_in() {
    let db = TestDb::create().await;
    let id = th40c(&db.pool).await;
    let t0 = Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap();
    let code = "1-1:1.8.0";
    insert_readings(
        &db.pool,
        &[(id, reading(code, 20.0, t0 + TimeDelta::seconds(20)))],
        server_now(),
    )
    .await
    .unwrap();
    // An older batch (a replayed spill) after a newer one changes nothing.
    insert_readings(&db.pool, &[(id, reading(code, 10.0, t0))], server_now())
        .await
        .unwrap();
    assert_eq!(latest(&db.pool, id, code).await, (t0 + TimeDelta::seconds(20), 20.0));
    // Within one batch the newest read wins, wherever it stands.
    let batch = [
        (id, reading(code, 31.0, t0 + TimeDelta::seconds(40))),
        (id, reading(code, 30.0, t0 + TimeDelta::seconds(30))),
    ];
    insert_readings(&db.pool, &batch, server_now()).await.unwrap();
    assert_eq!(latest(&db.pool, id, code).await, (t0 + TimeDelta::seconds(40), 31.0));
    assert_eq!(stored(&db.pool, id).await.len(), 4, "the series keeps every read");
}

#[tokio::test]
async fn an_unchanged_latest_value_is_rewritten_only_once_a_minute_a_changed_one_at_once() {
    let db = TestDb::create().await;
    let id = th40c(&db.pool).await;
    let t0 = Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap();
    let code = "1-1:1.8.0";
    let row_writer = "SELECT xmin::text FROM latest_readings WHERE device_id = $1";
    insert_readings(&db.pool, &[(id, reading(code, 5.0, t0))], server_now())
        .await
        .unwrap();
    let first = writer(&db.pool, row_writer, id).await;
    // The same value 10 s and 59 s later: the row stays as it is.
    for seconds in [10, 59] {
        insert_readings(
            &db.pool,
            &[(id, reading(code, 5.0, t0 + TimeDelta::seconds(seconds)))],
            server_now(),
        )
        .await
        .unwrap();
    }
    assert_eq!(writer(&db.pool, row_writer, id).await, first, "not rewritten");
    assert_eq!(latest(&db.pool, id, code).await, (t0, 5.0));
    // A minute after the stored read it is refreshed.
    insert_readings(
        &db.pool,
        &[(id, reading(code, 5.0, t0 + TimeDelta::seconds(60)))],
        server_now(),
    )
    .await
    .unwrap();
    assert_ne!(writer(&db.pool, row_writer, id).await, first, "refreshed");
    assert_eq!(latest(&db.pool, id, code).await, (t0 + TimeDelta::seconds(60), 5.0));
    // A new value, and a new quality, are written at the next read.
    insert_readings(
        &db.pool,
        &[(id, reading(code, 6.0, t0 + TimeDelta::seconds(61)))],
        server_now(),
    )
    .await
    .unwrap();
    assert_eq!(latest(&db.pool, id, code).await, (t0 + TimeDelta::seconds(61), 6.0));
    let mut flagged = reading(code, 6.0, t0 + TimeDelta::seconds(62));
    flagged.quality = Quality::ESTIMATED;
    insert_readings(&db.pool, &[(id, flagged)], server_now()).await.unwrap();
    let row = fetch_latest(&db.pool, id).await.unwrap().remove(0);
    assert_eq!(
        (row.read_at, row.quality),
        (t0 + TimeDelta::seconds(62), Quality::ESTIMATED)
    );
    assert_eq!(stored(&db.pool, id).await.len(), 6, "the series keeps every read");
}

#[tokio::test]
async fn a_device_row_is_rewritten_when_its_status_changes_and_its_times_once_a_minute() {
    let db = TestDb::create().await;
    let id = th40c(&db.pool).await;
    let row_writer = "SELECT xmin::text FROM devices WHERE id = $1";
    let t0 = Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap();
    let online = |at: DateTime<Utc>| DeviceStatus {
        state: DeviceState::Online,
        last_success_at: Some(at),
        last_attempt_at: at,
        consecutive_failures: 0,
        last_error: None,
    };
    update_device_status(&db.pool, id, &online(t0)).await.unwrap();
    let first = writer(&db.pool, row_writer, id).await;
    let device = fetch_device(&db.pool, id).await.unwrap().unwrap();
    assert_eq!((device.state, device.last_success_at), (DeviceState::Online, Some(t0)));
    // Polls 10 s and 59 s later that change nothing but the time.
    for seconds in [10, 59] {
        update_device_status(&db.pool, id, &online(t0 + TimeDelta::seconds(seconds)))
            .await
            .unwrap();
    }
    assert_eq!(writer(&db.pool, row_writer, id).await, first, "not rewritten");
    // A minute on, the times are brought up to date.
    let minute = t0 + TimeDelta::seconds(60);
    update_device_status(&db.pool, id, &online(minute)).await.unwrap();
    let device = fetch_device(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(device.last_success_at, Some(minute));
    // A failure is stored at once, and so is every further one (the count
    // changes), and the success that ends them.
    let failed = |failures: u32, at: DateTime<Utc>| DeviceStatus {
        state: if failures >= 3 {
            DeviceState::Unreachable
        } else {
            DeviceState::Online
        },
        last_success_at: Some(minute),
        last_attempt_at: at,
        consecutive_failures: failures,
        last_error: Some("timeout".to_owned()),
    };
    for failures in 1..=3 {
        let at = minute + TimeDelta::seconds(i64::from(failures));
        update_device_status(&db.pool, id, &failed(failures, at)).await.unwrap();
        let device = fetch_device(&db.pool, id).await.unwrap().unwrap();
        assert_eq!(
            (
                device.consecutive_failures,
                device.last_error.as_deref(),
                device.last_attempt_at
            ),
            (failures as i32, Some("timeout"), Some(at))
        );
    }
    assert_eq!(
        fetch_device(&db.pool, id).await.unwrap().unwrap().state,
        DeviceState::Unreachable
    );
    let back = minute + TimeDelta::seconds(4);
    update_device_status(&db.pool, id, &online(back)).await.unwrap();
    let device = fetch_device(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(
        (
            device.state,
            device.consecutive_failures,
            device.last_error,
            device.last_success_at
        ),
        (DeviceState::Online, 0, None, Some(back))
    );
}

#[tokio::test]
async fn the_outbox_writer_writes_a_latest_value_only_when_it_changed_and_the_newest_of_a_burst() {
    let db = TestDb::create().await;
    let id = th40c(&db.pool).await;
    let t0 = Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap();
    let (energy, power) = ("1-1:1.8.0", "1-1:1.7.0");
    let at = |seconds: i64| t0 + TimeDelta::seconds(seconds);
    let mut writer = ReadingsWriter::default();
    writer
        .write(
            &db.pool,
            &[(id, reading(energy, 5.0, t0)), (id, reading(power, 1.0, t0))],
            server_now(),
        )
        .await
        .unwrap();
    writer.flush(&db.pool, server_now()).await.unwrap();
    assert!(!writer.has_pending());
    assert_eq!(latest(&db.pool, id, energy).await, (t0, 5.0));
    // The energy repeats: it waits for no write; the power changes, read
    // after read, and only its newest value is written.
    for (seconds, power_value) in [(10, 2.0), (20, 3.0), (30, 4.0)] {
        let batch = [
            (id, reading(energy, 5.0, at(seconds))),
            (id, reading(power, power_value, at(seconds))),
        ];
        writer.write(&db.pool, &batch, server_now()).await.unwrap();
    }
    writer.flush(&db.pool, server_now()).await.unwrap();
    assert_eq!(latest(&db.pool, id, power).await, (at(30), 4.0));
    assert_eq!(
        latest(&db.pool, id, energy).await,
        (t0, 5.0),
        "unchanged, within the minute"
    );
    // The same batch again (a retry): the series takes nothing twice.
    let again = [(id, reading(energy, 5.0, at(30))), (id, reading(power, 9.0, at(30)))];
    writer.write(&db.pool, &again, server_now()).await.unwrap();
    writer.flush(&db.pool, server_now()).await.unwrap();
    let series = stored(&db.pool, id).await;
    assert_eq!(series.len(), 8, "four reads of two codes: {series:?}");
    assert!(
        series.contains(&(power.to_owned(), at(30), 4.0)),
        "the stored row stays"
    );
}
