//! `ohmnibus demo`: a database, a simulated fleet on several kinds of bus,
//! and the server, in one command.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use chrono_tz::Tz;
use tokio::net::TcpListener;

use super::demo_commands::queue_demo_commands;
use super::demo_iec::start_iec_fleet;
use super::demo_plant::{PLANT_BUS, PLANT_NAME, PLANT_ZONE, PlantLine, start_plant, yesterday};
use super::{load_profiles, shutdown_on_signal};
use crate::config::{Config, DEFAULT_BIND};
use crate::device::registry::ProfileSet;
use crate::domain::address::UnitAddress;
use crate::domain::clock::Clock;
use crate::domain::role::Role;
use crate::domain::sealing::{SECRET_KEY_VARIABLE, SecretKey};
use crate::domain::transport::{Parity, Transport};
use crate::service::tokens::issue_token;
use crate::sim::bus::SimBus;
use crate::sim::catalog::model_for;
use crate::sim::device::{Outages, SimDevice};
use crate::sim::iec62056::server::REACTION_TIME;
use crate::sim::server::{TcpFraming, spawn_pty, spawn_tcp};
use crate::startup::{redact, start};
use crate::store::buses::upsert_bus;
use crate::store::database::{connect, create_database_if_missing, migrate};
use crate::store::devices::{DeviceAddress, NewDevice, fetch_devices_on_bus, insert_device};
use crate::store::identity::insert_expected_identity;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Database created (if missing) on the DATABASE_URL server for the demo.
    #[arg(long, default_value = "ohmnibus_demo")]
    pub database: String,
}

/// A simulated line: its bus name, how it is served, and its devices.
struct FleetLine {
    bus: &'static str,
    kind: LineKind,
    /// (device name, profile, unit address, how it answers).
    devices: &'static [(&'static str, &'static str, u8, Answers)],
}

/// How a demo device answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answers {
    Always,
    /// Not simulated: nothing answers at its address.
    Never,
    /// Silent for 40 minutes of every two hours, so the demo shows
    /// `comm_lost`/`comm_restored` and load-profile gaps filled by estimates.
    Flaky,
}

enum LineKind {
    ModbusTcp,
    RtuOverTcp,
    SerialPty,
}

/// A device whose meter was swapped on site before the demo starts: the
/// identity of the meter installed before. The simulated one shows another,
/// so the device is quarantined until an engineer confirms the replacement
/// on its page (docs/OPERATIONS.md, "Meter identity").
const REPLACED_METER: (&str, &str) = (
    "Lighting circuit (COUNTIS E33)",
    "2019-0000-0417 / countis e33 / SOCOMEC / COUNTIS E33",
);

/// The COUNTIS whose own load curve the demo points at.
const CURVE_METER: &str = "Compressor room (COUNTIS E43)";

const FLEET: &[FleetLine] = &[
    FleetLine {
        bus: "demo-ethernet",
        kind: LineKind::ModbusTcp,
        devices: &[
            ("Main incomer", "th40c", 1, Answers::Always),
            ("Chiller plant", "th40c", 2, Answers::Always),
        ],
    },
    FleetLine {
        bus: "demo-gateway",
        kind: LineKind::RtuOverTcp,
        devices: &[
            ("Workshop feeder", "th40c", 5, Answers::Always),
            ("Compressor room (COUNTIS E43)", "countis-e43", 3, Answers::Always),
            ("Tenant sub-meter (COUNTIS E44, MID)", "countis-e44", 4, Answers::Always),
            ("Car park chargers (flaky link)", "th40c", 6, Answers::Flaky),
        ],
    },
    FleetLine {
        bus: "demo-rs485",
        kind: LineKind::SerialPty,
        devices: &[
            ("Office floor 1", "th40c", 7, Answers::Always),
            ("Office floor 2", "th40c", 8, Answers::Always),
            ("Spare meter (disconnected)", "th40c", 9, Answers::Never),
            ("Lighting circuit (COUNTIS E33)", "countis-e33", 10, Answers::Always),
            (
                "Utilities pulse concentrator (GME SØ)",
                "pulse-concentrator",
                12,
                Answers::Always,
            ),
        ],
    },
];

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let server =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let url = create_database_if_missing(&server, &args.database)
        .await
        .with_context(|| {
            format!(
                "creating database {} on {} (is PostgreSQL running? scripts/demo starts one)",
                args.database,
                redact(&server)
            )
        })?;
    let pool = connect(&url)
        .await
        .with_context(|| format!("connecting to {}", redact(&url)))?;
    migrate(&pool).await.context("applying migrations")?;
    // Server-side billing periods for the meters that keep no history (the
    // COUNTIS E33, the pulse concentrator): the 1st of the month at midnight.
    for site in crate::store::billing_schedule::fetch_sites(&pool).await? {
        if site.billing_day.is_none() {
            crate::store::billing_schedule::update_site_schedule(&pool, site.id, Some((1, 0))).await?;
        }
    }
    let profiles = Arc::new(load_profiles()?);
    let shutdown = shutdown_on_signal();
    let zone = Tz::UTC;

    let mut seed = 11;
    let mut curve_meter = None;
    for line in FLEET {
        let devices = line
            .devices
            .iter()
            .filter(|(_, _, _, answers)| *answers != Answers::Never)
            .map(|(_, profile, unit, answers)| {
                seed += 1;
                let device = simulated(&profiles, profile, *unit, seed, zone)?;
                Ok(match answers {
                    Answers::Flaky => device.with_outages(Outages {
                        every: chrono::Duration::hours(2),
                        length: chrono::Duration::minutes(40),
                    }),
                    _ => device,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let bus = SimBus::new(devices);
        let transport = match line.kind {
            LineKind::ModbusTcp | LineKind::RtuOverTcp => {
                let framing = if matches!(line.kind, LineKind::ModbusTcp) {
                    TcpFraming::ModbusTcp
                } else {
                    TcpFraming::RtuOverTcp
                };
                let (address, _) = spawn_tcp(bus, "127.0.0.1:0", framing, shutdown.clone()).await?;
                let (host, port) = (address.ip().to_string(), address.port());
                if framing == TcpFraming::ModbusTcp {
                    Transport::ModbusTcp { host, port }
                } else {
                    Transport::RtuOverTcp { host, port }
                }
            }
            LineKind::SerialPty => {
                let (path, _) = spawn_pty(bus, 9600, shutdown.clone())?;
                Transport::SerialRtu {
                    path: path.display().to_string(),
                    baud: 9600,
                    parity: Parity::None,
                    stop_bits: 1,
                }
            }
        };
        let row = upsert_bus(&pool, line.bus, &transport).await?;
        let existing = fetch_devices_on_bus(&pool, row.id).await?;
        for (name, profile, unit, _) in line.devices {
            if let Some(device) = existing.iter().find(|device| device.address == Some(i16::from(*unit))) {
                if *name == CURVE_METER {
                    curve_meter = Some(device.id);
                }
                continue;
            }
            let address = UnitAddress::new(i64::from(*unit))?;
            let inserted = insert_device(
                &mut *pool.acquire().await?,
                &NewDevice {
                    bus_id: row.id,
                    name,
                    profile,
                    address: DeviceAddress::Unit(address),
                    realtime_seconds: 10,
                    energy_seconds: 60,
                    history_seconds: 300,
                },
            )
            .await?;
            if *name == CURVE_METER {
                curve_meter = Some(inserted.id);
            }
            if *name == REPLACED_METER.0 {
                let installed = Utc::now() - chrono::Duration::days(365);
                insert_expected_identity(&pool, inserted.id, REPLACED_METER.1, installed).await?;
            }
        }
        println!("simulated bus {:<17} {}", line.bus, transport.describe());
    }
    let secret_key = demo_secret_key()?;
    start_iec_fleet(&pool, zone, seed, &secret_key, &shutdown).await?;
    let plant = start_plant(&pool, &profiles, PlantLine::Rs485, REACTION_TIME, Utc::now(), &shutdown).await?;
    println!("simulated bus {:<17} {}", PLANT_BUS, plant.bus_transport);

    let mut config = Config {
        database_url: url,
        bind: DEFAULT_BIND.parse().expect("default bind address"),
        profiles_dir: None,
        request_timeout: std::time::Duration::from_millis(1_000),
        iec_exchange_deadline: crate::config::DEFAULT_IEC_EXCHANGE_DEADLINE,
        poll_refresh: std::time::Duration::from_secs(2),
        derive_every: std::time::Duration::from_secs(30),
        automation_every: Some(std::time::Duration::from_secs(30)),
        clock_drift_threshold: std::time::Duration::from_secs(30),
        field_programming_window: crate::config::DEFAULT_FIELD_PROGRAMMING_WINDOW,
        clock: Clock::System,
        secret_key: Some(secret_key),
        sessions: Default::default(),
        spill_dir: std::env::var_os("OHMNIBUS_SPILL_DIR")
            .filter(|dir| !dir.is_empty())
            .map_or_else(
                || std::env::temp_dir().join("ohmnibus-demo-spill"),
                std::path::PathBuf::from,
            ),
        statement_timeout: crate::config::DEFAULT_STATEMENT_TIMEOUT,
        retention: Default::default(),
        maintenance_every: Some(crate::maintenance::MAINTENANCE_EVERY),
    };
    if let Ok(bind) = std::env::var("OHMNIBUS_BIND") {
        config.bind = bind
            .parse()
            .with_context(|| format!("OHMNIBUS_BIND={bind:?} is not an address:port"))?;
    }
    let listener = TcpListener::bind(config.bind).await.with_context(|| {
        format!(
            "cannot listen on {} (set OHMNIBUS_BIND to another address:port)",
            config.bind
        )
    })?;
    let token = issue_token(&pool, "demo", Role::Engineer).await?;
    let commands = queue_demo_commands(&pool, &profiles, Utc::now()).await?;
    let app = start(&config, pool, profiles, listener, shutdown);
    println!();
    println!("Ohmnibus demo is running. Press Ctrl-C to stop.");
    println!("  dashboard:  http://{}/  (sign in with the token below)", app.address);
    println!(
        "  API:        http://{}/api/v1/devices  (Authorization: Bearer <token>)",
        app.address
    );
    println!("  OpenAPI:    http://{}/api/v1/openapi.json", app.address);
    // Yesterday in the plant's zone: inside the 40 days the poller
    // backfills from each meter's load profile (a few minutes after start).
    let (from, to) = yesterday(PLANT_ZONE.parse().expect("a zone"), Utc::now());
    let period = format!(
        "from={}&to={}",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ")
    );
    println!("  {PLANT_NAME} ({PLANT_ZONE}, F1/F2/F3), yesterday:");
    println!(
        "    balance:   http://{}/sites/{}/balance?{period}",
        app.address, plant.site_id
    );
    println!(
        "    statement: http://{}/devices/{}/statement?{period}  (main incomer)",
        app.address, plant.main
    );
    println!(
        "    API:       http://{}/api/v1/sites/{}/balance?{period}",
        app.address, plant.site_id
    );
    if let Some(id) = curve_meter {
        println!(
            "  COUNTIS E43 load curve (the meter's own 15-minute P+ averages, 7 days, read at start):\n    http://{}/api/v1/devices/{id}/load-profile?obis=1-1:1.5.0",
            app.address
        );
    }
    println!("  commands:   http://{}/jobs  (every job, live)", app.address);
    for (device, id) in &commands {
        println!("    {device}: http://{}/commands/{id}", app.address);
    }
    println!("  token (engineer):");
    println!("{token}");
    app.wait().await
}

fn simulated(profiles: &ProfileSet, name: &str, unit: u8, seed: u64, zone: Tz) -> anyhow::Result<SimDevice> {
    let profile = profiles
        .get(name)
        .with_context(|| format!("the {name} profile is missing"))?;
    let model = model_for(name, seed, zone, Utc::now()).with_context(|| format!("no simulator for {name}"))?;
    Ok(SimDevice::with_model(profile, unit, model, Clock::System))
}

/// The key the demo seals device passwords with: `OHMNIBUS_SECRET_KEY` if
/// set, else a fixed key, known to all, fit for simulated meters only.
fn demo_secret_key() -> anyhow::Result<SecretKey> {
    const DEMO_KEY: [u8; 32] = *b"ohmnibus demo key; not a secret!";
    match std::env::var(SECRET_KEY_VARIABLE) {
        Ok(text) => Ok(text.parse()?),
        Err(_) => Ok(SecretKey::from_bytes(DEMO_KEY)),
    }
}
