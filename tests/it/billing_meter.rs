//! Billing periods from a meter's own history: the simulated A1000's
//! history sets, each with its reset time (`0-0:0.1.2*101`…`*116`), become
//! periods the API lists, all 16 on the first read; a TH40C, over Modbus
//! and over IEC 62056-21, keeps no reset time, so a shift of its history is
//! placed at its billing schedule (the site's, else the factory's day 1 at
//! 00:00, in the site's zone). A later reset adds a period and an event;
//! resets missed while the meter was not read are filled in.

use std::sync::{Arc, Mutex};

use crate::support::{
    TestApp, WAIT, add_bus, add_device, eventually, iec_meter, serve_one_iec_tcp_device, serve_one_modbus_tcp_device,
    spawn_app, spawn_app_with_clock,
};
use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::obis::ObisCode;
use ohmnibus::domain::quality::Quality;
use ohmnibus::domain::role::Role;
use ohmnibus::domain::source::BillingSource;
use ohmnibus::metering::billing::{BillingPeriod, BillingRegister};
use ohmnibus::protocol::modbus::frame::Exception;
use ohmnibus::shutdown::Trigger;
use ohmnibus::sim::device::SimDevice;
use ohmnibus::sim::iec62056::{IecKind, IecMeter, IecMeterConfig, SharedMeter};
use ohmnibus::sim::meter::Th40cModel;
use ohmnibus::sim::model::MeterModel;
use ohmnibus::store::billing::{fetch_billing_periods, insert_billing_periods};
use serde_json::{Value, json};

async fn billing_resets(app: &TestApp, device: i64) -> Vec<DateTime<Utc>> {
    sqlx::query_scalar(
        "SELECT started_at FROM events WHERE device_id = $1 AND code = 'billing_reset' ORDER BY started_at",
    )
    .bind(device)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The device's periods once there are at least `want`.
async fn list_until(app: &TestApp, token: &str, device: i64, want: usize) -> Vec<Value> {
    let path = format!("/api/v1/devices/{device}/billing-periods");
    let listed = eventually(WAIT, || async {
        let (_, body) = app.request("GET", &path, Some(token), None).await;
        body["periods"].as_array().is_some_and(|p| p.len() >= want)
    })
    .await;
    let (status, body) = app.request("GET", &path, Some(token), None).await;
    assert!(listed, "fewer than {want} periods: {status} {body}");
    body["periods"].as_array().unwrap().clone()
}

fn value_of(period: &Value, obis: &str) -> f64 {
    period["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["obis"] == obis)
        .and_then(|r| r["value"].as_f64())
        .unwrap_or_else(|| panic!("no {obis} in {period}"))
}

/// A site in Rome (UTC+1 in winter): the TH40C's factory reset, day 1 at
/// 00:00 local, falls at 23:00 UTC the day before.
async fn site_in_rome(app: &TestApp) -> Tz {
    sqlx::query("UPDATE sites SET time_zone = 'Europe/Rome'")
        .execute(&app.pool)
        .await
        .unwrap();
    "Europe/Rome".parse().unwrap()
}

fn reset_times(periods: &[Value]) -> Vec<DateTime<Utc>> {
    periods
        .iter()
        .map(|p| p["reset_at"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn an_a1000s_history_sets_become_billing_periods() {
    let at = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let clock = Clock::manual(at);
    let app = spawn_app_with_clock(clock.clone()).await;
    let token = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::A1000, 11, "12345678", at);
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &token,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678",
               "schedule": {"energy_seconds": 1}}),
    )
    .await;

    // What the simulated meter holds: its resets, latest first, and the
    // sets whose reset time its readout carries (those become periods).
    let in_readout: Vec<u32> = IecKind::A1000
        .readout_addresses(IecMeterConfig::new(IecKind::A1000, 1).readout_sets)
        .iter()
        .filter_map(|a| a.strip_prefix("0-0:0.1.2*"))
        .map(|suffix| suffix.parse::<u32>().unwrap() - 100)
        .collect();
    // The A1000 keeps 16 sets (manual 1.5): a first read backfills them all.
    assert_eq!(in_readout, (1..=16).collect::<Vec<u32>>());
    let (resets, import_latest) = {
        let mut meter = meter.lock().unwrap();
        (meter.resets(at, 16), meter.register_at("1-1:1.8.0*101", at).unwrap())
    };
    let expected: Vec<DateTime<Utc>> = in_readout.iter().map(|k| resets[*k as usize - 1]).collect();

    let viewer = app.token(Role::Viewer).await;
    let listed = list_until(&app, &viewer, id, expected.len()).await;
    assert_eq!(reset_times(&listed), expected, "{listed:?}");
    // Every set holds the meter's registers at its reset.
    {
        let mut meter = meter.lock().unwrap();
        for (k, period) in listed.iter().enumerate() {
            let import = meter.energy_at(1, 0, resets[k]).unwrap();
            assert!(
                (value_of(period, "1-1:1.8.0") - import).abs() < 1e-6,
                "set {}: {period}",
                k + 1
            );
        }
    }
    let latest = &listed[0];
    assert_eq!(latest["source"], "meter");
    assert_eq!(latest["flags"], json!([]));
    let total = latest["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["obis"] == "1-1:1.8.0")
        .unwrap_or_else(|| panic!("no total import in {latest}"));
    assert_eq!(total["unit"], "kWh");
    assert!(
        (total["value"].as_f64().unwrap() - import_latest).abs() < 1e-6,
        "{total}"
    );

    // The device page shows the newest periods with their totals.
    let (status, page) = app.request("GET", &format!("/devices/{id}"), Some(&viewer), None).await;
    assert_eq!(status.as_u16(), 200);
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(page.contains("<h2>Billing periods</h2>"), "{page}");
    assert!(
        page.contains(&resets[0].format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "{page}"
    );
    assert!(page.contains(&format!("{import_latest:.3} kWh")), "{page}");

    // The first backfill announces only the latest reset.
    let announced = eventually(WAIT, || async { !billing_resets(&app, id).await.is_empty() }).await;
    assert!(announced, "no billing_reset event");
    assert_eq!(billing_resets(&app, id).await, [resets[0]]);

    // Past the meter's next reset: a new period, newest first, the earlier
    // ones kept, and one more event for the new reset.
    let next = meter
        .lock()
        .unwrap()
        .resets(at + TimeDelta::days(32), 2)
        .into_iter()
        .filter(|r| *r > at)
        .min()
        .unwrap();
    clock.advance(next - at + TimeDelta::minutes(1));
    let listed = list_until(&app, &viewer, id, expected.len() + 1).await;
    let mut want = vec![next];
    want.extend(&expected);
    assert_eq!(reset_times(&listed), want);
    let announced = eventually(WAIT, || async { billing_resets(&app, id).await.len() == 2 }).await;
    assert!(announced, "{:?}", billing_resets(&app, id).await);
    assert_eq!(billing_resets(&app, id).await, [resets[0], next]);

    // Unknown device: 404 with the error body.
    let (status, body) = app
        .request("GET", "/api/v1/devices/999999/billing-periods", Some(&viewer), None)
        .await;
    assert_eq!(status.as_u16(), 404);
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    app.stop().await;
}

/// An A1000 firmware that writes its addresses reduced (`0.1.2*101`,
/// `1.8.0*101`, `F.F.0`) and prints phase values its profile does not list:
/// the reset times still match the profile's `0-0:0.1.2`, so its 16 sets
/// become periods, and the voltages and currents are kept in their units.
#[tokio::test]
async fn an_a1000_writing_reduced_addresses_keeps_its_periods_and_unlisted_phase_values() {
    let at = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let clock = Clock::manual(at);
    let app = spawn_app_with_clock(clock.clone()).await;
    let token = app.token(Role::Engineer).await;
    let meter = iec_meter(IecKind::A1000, 12, "12345678", at);
    {
        let mut meter = meter.lock().unwrap();
        meter.config.reduced_addresses = true;
        meter.config.phase_values = true;
    }
    let (id, _stop) = serve_one_iec_tcp_device(
        &app,
        &token,
        &meter,
        &clock,
        json!({"name": "A1000", "profile": "a1000", "iec_address": "12345678",
               "schedule": {"energy_seconds": 1}}),
    )
    .await;
    let resets = meter.lock().unwrap().resets(at, 16);
    let viewer = app.token(Role::Viewer).await;
    let listed = list_until(&app, &viewer, id, 16).await;
    assert_eq!(reset_times(&listed), resets, "{listed:?}");

    let (_, body) = app
        .request("GET", &format!("/api/v1/devices/{id}/registers"), Some(&viewer), None)
        .await;
    let registers = body["registers"].as_array().unwrap();
    let find = |obis: &str| registers.iter().find(|r| r["obis"] == obis);
    assert!(find("0-0:0.1.2*101").is_some(), "{body}");
    assert!(find("0-0:0.1.0").is_some(), "{body}");
    assert!(find("1-1:0.1.2*101").is_none(), "{body}");
    for (obis, unit) in [
        ("1-1:32.7.0", "V"),
        ("1-1:52.7.0", "V"),
        ("1-1:72.7.0", "V"),
        ("1-1:31.7.0", "A"),
        ("1-1:51.7.0", "A"),
        ("1-1:71.7.0", "A"),
    ] {
        let register = find(obis).unwrap_or_else(|| panic!("{obis} not stored: {body}"));
        assert_eq!(register["unit"], unit, "{register}");
        let printed = meter.lock().unwrap().register_at(obis, at).unwrap();
        assert!(
            (register["value"].as_f64().unwrap() - printed).abs() < 1e-9,
            "{register}: the meter printed {printed}"
        );
    }
    let (status, page) = app.request("GET", &format!("/devices/{id}"), Some(&viewer), None).await;
    assert_eq!(status.as_u16(), 200);
    assert!(page.as_str().unwrap_or_default().contains("1-1:32.7.0"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn the_same_periods_inserted_twice_are_stored_once() {
    let app = spawn_app().await;
    let token = app.token(Role::Engineer).await;
    let bus = add_bus(&app, &token, "iec-tcp", "iec62056_tcp", 9).await;
    let device = DeviceId(
        add_device(
            &app,
            &token,
            &bus,
            json!({"name": "A1000", "profile": "a1000", "iec_address": "1"}),
        )
        .await,
    );
    let period = |month: u32, kwh: f64| BillingPeriod {
        reset_at: Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap(),
        source: BillingSource::Meter,
        reset_count: Some(month as i32),
        registers: vec![BillingRegister {
            obis: "1-1:1.8.0".parse().unwrap(),
            value: kwh,
            unit: "kWh".parse().unwrap(),
            captured_at: None,
        }],
        quality: Quality::GOOD,
    };
    let periods = vec![period(10, 100.0), period(11, 200.0)];
    let first = insert_billing_periods(&app.pool, device, &periods, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    // Again, with a different value for November: nothing new, nothing changed.
    let again = vec![period(10, 100.0), period(11, 999.0)];
    let second = insert_billing_periods(&app.pool, device, &again, chrono::Utc::now())
        .await
        .unwrap();
    assert!(second.is_empty());
    let stored = fetch_billing_periods(&app.pool, device).await.unwrap();
    assert_eq!(stored, vec![period(11, 200.0), period(10, 100.0)]);
    app.stop().await;
}

/// 30 November 22:30 UTC, half an hour before the reset of 1 December 00:00
/// in Rome; the two resets before it, 1 November and 1 October 00:00 in
/// Rome (summer time until 25 October: UTC+2).
fn th40c_dates() -> (DateTime<Utc>, DateTime<Utc>, [DateTime<Utc>; 2]) {
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 22, 30, 0).unwrap();
    let reset = Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap();
    let before = [
        Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 9, 30, 22, 0, 0).unwrap(),
    ];
    (start, reset, before)
}

fn th40c_value(model: &Th40cModel, code: &str, at: DateTime<Utc>) -> f64 {
    model.value(&code.parse::<ObisCode>().unwrap(), at).unwrap().0
}

/// Whether a stored value is the meter's, sent as an IEEE 754 single (TH40C
/// App. E: values are 32-bit floats).
fn same_f32(stored: f64, meter: f64) -> bool {
    (stored - f64::from(meter as f32)).abs() <= 1e-6 * meter.abs().max(1.0)
}

/// A simulated TH40C the test can reach while it serves: months of a
/// meter's life are integrated by the test, not inside one Modbus request
/// (which would outlast the head-end's request timeout).
struct SharedTh40c(Arc<Mutex<Th40cModel>>);

impl MeterModel for SharedTh40c {
    fn advance(&mut self, now: DateTime<Utc>) {
        self.0.lock().unwrap().advance(now);
    }

    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        self.0.lock().unwrap().value(code, now)
    }

    fn command(&mut self, name: &str, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        self.0.lock().unwrap().command(name, values, now)
    }

    fn zone(&self) -> Tz {
        self.0.lock().unwrap().zone
    }
}

/// Moves the clock to `to` with the meter running up to it, in one step no
/// request can come between (the test runtime has one thread), then on by
/// a minute twice, each once a read is stamped with the time before. A read
/// in flight across the jump (its first requests answered before it) is
/// stamped `to` and may hold part of the old history; with the clock
/// standing still no later read could follow it (a read at the same
/// instant is not stored twice), and the server takes a shift only once a
/// later read confirms it.
async fn jump(app: &TestApp, device: i64, clock: &Clock, meter: &Mutex<Th40cModel>, to: DateTime<Utc>) {
    {
        let mut meter = meter.lock().unwrap();
        clock.advance(to - clock.now());
        meter.advance(to);
    }
    step_twice(app, device, clock).await;
}

/// Twice: waits for a read stamped with the clock's time, then moves the
/// clock a minute on, so the next read is stored too.
async fn step_twice(app: &TestApp, device: i64, clock: &Clock) {
    for _ in 0..2 {
        let at = clock.now();
        let read = eventually(WAIT, || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM readings WHERE device_id = $1 AND obis = '1-1:1.8.0*1' AND read_at = $2",
            )
            .bind(device)
            .bind(at)
            .fetch_one(&app.pool)
            .await
            .unwrap()
                > 0
        })
        .await;
        assert!(read, "no read at {at}");
        clock.advance(TimeDelta::minutes(1));
    }
}

#[tokio::test]
async fn a_th40c_over_modbus_shifts_its_history_at_midnight_on_the_first() {
    let (start, reset, before) = th40c_dates();
    let clock = Clock::manual(start);
    let app = spawn_app_with_clock(clock.clone()).await;
    let zone = site_in_rome(&app).await;
    let engineer = app.token(Role::Engineer).await;
    let model = Th40cModel::new(21, zone, start);
    // The same meter kept by the test: what the simulator holds at any instant.
    let mut twin = model.clone();
    let meter = Arc::new(Mutex::new(model));
    let device = SimDevice::new(
        ProfileSet::builtin().get("th40c").unwrap(),
        1,
        SharedTh40c(Arc::clone(&meter)),
        clock.clone(),
    );
    let schedule = json!({"realtime_seconds": 3600, "energy_seconds": 1, "history_seconds": 1});
    let (id, _line) = serve_one_modbus_tcp_device(&app, &engineer, device, "th40c", schedule).await;
    step_twice(&app, id, &clock).await;

    // First read: the meter's two sets, placed one month apart before the read.
    let listed = list_until(&app, &engineer, id, 2).await;
    assert_eq!(reset_times(&listed), before, "{listed:?}");
    for (k, period) in listed.iter().enumerate() {
        assert_eq!(period["source"], "meter");
        let held = th40c_value(&twin, &format!("1-1:1.8.0*{}", k + 1), start);
        assert!(same_f32(value_of(period, "1-1:1.8.0"), held), "{period}");
    }
    let announced = eventually(WAIT, || async { !billing_resets(&app, id).await.is_empty() }).await;
    assert!(announced, "no billing_reset event");
    assert_eq!(billing_resets(&app, id).await, [before[0]]);

    // Across midnight in Rome: the meter shifts its history; the new period
    // is stamped at the reset and holds the totals the meter had then.
    jump(&app, id, &clock, &meter, reset + TimeDelta::minutes(5)).await;
    twin.advance(reset);
    let listed = list_until(&app, &engineer, id, 3).await;
    assert_eq!(reset_times(&listed), [reset, before[0], before[1]], "{listed:?}");
    let latest = &listed[0];
    for c in [1, 2, 3, 4, 9, 10] {
        for r in 0..=4 {
            let code = format!("1-1:{c}.8.{r}");
            let total = th40c_value(&twin, &code, reset);
            assert!(same_f32(value_of(latest, &code), total), "{code}: {total} in {latest}");
        }
    }
    // The month's maximum demand moved with its time, within the month.
    let demand = latest["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["obis"] == "1-1:1.6.0")
        .unwrap_or_else(|| panic!("no demand in {latest}"));
    assert!(demand["value"].as_f64().unwrap() > 0.0, "{demand}");
    let demand_at: DateTime<Utc> = demand["captured_at"].as_str().unwrap().parse().unwrap();
    assert!(demand_at > before[0] && demand_at <= reset, "{demand}");
    let announced = eventually(WAIT, || async { billing_resets(&app, id).await.len() == 2 }).await;
    assert!(announced, "{:?}", billing_resets(&app, id).await);
    assert_eq!(billing_resets(&app, id).await, [before[0], reset]);

    // Two months without a read: both resets the meter made meanwhile are
    // stored, the older one from its second set.
    let january = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
    let february = Utc.with_ymd_and_hms(2027, 1, 31, 23, 0, 0).unwrap();
    jump(&app, id, &clock, &meter, february + TimeDelta::minutes(5)).await;
    let listed = list_until(&app, &engineer, id, 5).await;
    assert_eq!(reset_times(&listed)[..3], [february, january, reset], "{listed:?}");
    for (period, at) in [(&listed[1], january), (&listed[0], february)] {
        twin.advance(at);
        let total = th40c_value(&twin, "1-1:1.8.0", at);
        assert!(
            same_f32(value_of(period, "1-1:1.8.0"), total),
            "{at}: {total} in {period}"
        );
    }
    let announced = eventually(WAIT, || async { billing_resets(&app, id).await.len() == 4 }).await;
    assert!(announced, "{:?}", billing_resets(&app, id).await);
    assert_eq!(billing_resets(&app, id).await, [before[0], reset, january, february]);
    app.stop().await;
}

#[tokio::test]
async fn a_th40c_over_iec_gets_its_periods_from_the_shift_of_its_sets() {
    th40c_over_iec(None, th40c_dates()).await;
}

#[tokio::test]
async fn a_th40c_over_iec_resetting_on_the_sites_schedule() {
    // Day 15 at 06:00 in Rome: 05:00 UTC in November (CET), 04:00 UTC in
    // October and September (CEST).
    let dates = (
        Utc.with_ymd_and_hms(2026, 11, 15, 4, 30, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 15, 5, 0, 0).unwrap(),
        [
            Utc.with_ymd_and_hms(2026, 10, 15, 4, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 9, 15, 4, 0, 0).unwrap(),
        ],
    );
    th40c_over_iec(Some((15, 6)), dates).await;
}

/// A simulated TH40C on IEC 62056-21 at `address`, its clock in `zone`.
fn th40c_config(seed: u64, address: &str, zone: Tz) -> IecMeterConfig {
    let mut config = IecMeterConfig::new(IecKind::Th40c, seed);
    config.address = address.into();
    config.zone = zone;
    config
}

/// Serves the TH40C `config` describes over IEC 62056-21 TCP on the test's
/// clock, its history from now on, and adds it as a device read every
/// second: its id, the meter, and the line's stop handle.
async fn serve_th40c_over_iec(
    app: &TestApp,
    token: &str,
    clock: &Clock,
    config: IecMeterConfig,
) -> (i64, SharedMeter, Trigger) {
    let address = config.address.clone();
    let meter: SharedMeter = Arc::new(Mutex::new(IecMeter::new(config, clock.now())));
    let (id, stop) = serve_one_iec_tcp_device(
        app,
        token,
        &meter,
        clock,
        json!({"name": "TH40C", "profile": "th40c", "iec_address": address,
               "schedule": {"energy_seconds": 1}}),
    )
    .await;
    (id, meter, stop)
}

/// A TH40C over IEC 62056-21 on a site in Rome, resetting on `schedule`
/// (day, hour; the factory's day 1 at 00:00 when `None`), which the site
/// is given too; `dates` as [`th40c_dates`] gives them.
async fn th40c_over_iec(
    schedule: Option<(u32, u32)>,
    (start, reset, before): (DateTime<Utc>, DateTime<Utc>, [DateTime<Utc>; 2]),
) {
    let clock = Clock::manual(start);
    let app = spawn_app_with_clock(clock.clone()).await;
    let zone = site_in_rome(&app).await;
    let token = app.token(Role::Engineer).await;
    let mut config = th40c_config(12, "40001", zone);
    if let Some((day, hour)) = schedule {
        config.billing_day = day;
        config.billing_hour = hour;
        sqlx::query("UPDATE sites SET billing_day = $1, billing_hour = $2")
            .bind(i16::try_from(day).unwrap())
            .bind(i16::try_from(hour).unwrap())
            .execute(&app.pool)
            .await
            .unwrap();
    }
    let (id, meter, _stop) = serve_th40c_over_iec(&app, &token, &clock, config).await;
    // The readout's energies (1-1:C.8.0, C = 1…10) and their two sets.
    let totals = |at: DateTime<Utc>| -> Vec<(String, f64)> {
        let mut meter = meter.lock().unwrap();
        (1..=10u8)
            .map(|c| (format!("1-1:{c}.8.0"), meter.energy_at(c, 0, at).unwrap()))
            .collect()
    };
    let check = |period: &Value, at: DateTime<Utc>| {
        for (code, total) in totals(at) {
            assert!(
                (value_of(period, &code) - total).abs() < 1e-6,
                "{code}: {total} in {period}"
            );
        }
    };

    let listed = list_until(&app, &token, id, 2).await;
    assert_eq!(reset_times(&listed), before, "{listed:?}");
    check(&listed[0], before[0]);
    check(&listed[1], before[1]);

    clock.advance(reset - start + TimeDelta::minutes(5));
    let listed = list_until(&app, &token, id, 3).await;
    assert_eq!(reset_times(&listed), [reset, before[0], before[1]], "{listed:?}");
    assert_eq!(listed[0]["source"], "meter");
    check(&listed[0], reset);
    let announced = eventually(WAIT, || async { billing_resets(&app, id).await.len() == 2 }).await;
    assert!(announced, "{:?}", billing_resets(&app, id).await);
    assert_eq!(billing_resets(&app, id).await, [before[0], reset]);
    app.stop().await;
}

/// A TH40C programmed to print all sixteen sets it keeps: the first read
/// stores every one of them, each on the first of its month at 00:00 in
/// Rome (the factory schedule), holding the meter's totals at that instant.
#[tokio::test]
async fn a_th40c_printing_all_its_sets_is_backfilled_whole() {
    let start = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let clock = Clock::manual(start);
    let app = spawn_app_with_clock(clock.clone()).await;
    let zone = site_in_rome(&app).await;
    let token = app.token(Role::Engineer).await;
    let mut config = th40c_config(13, "40002", zone);
    config.readout_sets = 16;
    let (id, meter, _stop) = serve_th40c_over_iec(&app, &token, &clock, config).await;
    // Midnight on the 1st of November 2026, October, … back sixteen months.
    let resets: Vec<DateTime<Utc>> = (0..16)
        .map(|k: i32| {
            let months = 2026 * 12 + 10 - k;
            let (year, month) = (months / 12, (months % 12 + 1) as u32);
            zone.with_ymd_and_hms(year, month, 1, 0, 0, 0)
                .single()
                .unwrap()
                .with_timezone(&Utc)
        })
        .collect();
    let listed = list_until(&app, &token, id, 16).await;
    assert_eq!(reset_times(&listed), resets, "{listed:?}");
    for (period, at) in listed.iter().zip(&resets) {
        let total = meter.lock().unwrap().energy_at(1, 0, *at).unwrap();
        assert!(
            (value_of(period, "1-1:1.8.0") - total).abs() < 1e-6,
            "{at}: {total} in {period}"
        );
    }
    app.stop().await;
}
