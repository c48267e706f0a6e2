//! The IEC 62056-21 part of `ohmnibus demo`: A1000s on an RS485 line, a
//! TH40C read over IEC on TCP and an A1000 at an optical probe, all
//! simulated on the real clock in the demo's site zone. The canteen's
//! A1000 has a programming password of its own, stored sealed as its
//! device secret, so its load profile shows the device password at work.
//! Each meter's load profile is backfilled newest first on a first start
//! (the device page shows it running, older intervals pending); the
//! optical-probe A1000 keeps only [`PROBE_PROFILE_DAYS`] of profile, so its
//! backfill reaches its oldest data early and goes on to the profile's
//! depth in a few answers without records, the others' a chunk at a time.
//! Its registers show seven digits, as the A1000's display does, and its
//! import register starts [`PROBE_IMPORT_KWH`], a few kWh below the top:
//! it rolls over to zero while the demo runs.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::Utc;
use chrono_tz::Tz;
use sqlx::PgPool;

use crate::domain::clock::Clock;
use crate::domain::ids::DeviceId;
use crate::domain::sealing::{SecretKey, fresh_nonce, seal};
use crate::domain::secret::SecretName;
use crate::domain::transport::Transport;
use crate::shutdown::Shutdown;
use crate::sim::iec62056::{
    EnergyDigits, IecKind, IecMeter, IecMeterConfig, ServedLine, SharedMeter, spawn_iec_pty, spawn_iec_tcp,
};
use crate::store::buses::upsert_bus;
use crate::store::device_secrets::{clear_password_refused, upsert_device_secret};
use crate::store::devices::{DeviceAddress, NewDevice, fetch_devices_on_bus, insert_device};

/// One simulated IEC line: its bus name, how it is served, and its meters.
struct IecDemoLine {
    bus: &'static str,
    kind: IecLineKind,
    /// (device name, profile, IEC device address; empty at an optical probe).
    meters: &'static [(&'static str, &'static str, &'static str)],
}

/// The IEC address and password of the demo meter that does not keep its
/// profile's factory password.
const OWN_PASSWORD: (&str, &str) = ("10000002", "24681357");

/// Days of load profile the optical-probe A1000 keeps (a small ring).
const PROBE_PROFILE_DAYS: u32 = 10;

/// What the optical-probe A1000's import register shows when the demo
/// starts, kWh: close below its top of 99 999.99.
const PROBE_IMPORT_KWH: f64 = 99_990.0;

enum IecLineKind {
    /// RS485 line on a pseudo-terminal, sign-on at 300 Bd, up to 9600 Bd.
    Serial,
    /// An optical probe on its own pseudo-terminal: one meter, no address.
    Optical,
    /// A TCP converter in front of the meter.
    Tcp,
}

const IEC_FLEET: &[IecDemoLine] = &[
    IecDemoLine {
        bus: "demo-iec-rs485",
        kind: IecLineKind::Serial,
        meters: &[
            ("Car park feeder (A1000)", "a1000", "10000001"),
            ("Canteen (A1000)", "a1000", "10000002"),
        ],
    },
    IecDemoLine {
        bus: "demo-iec-tcp",
        kind: IecLineKind::Tcp,
        meters: &[("Data room (TH40C over IEC)", "th40c", "20000001")],
    },
    IecDemoLine {
        bus: "demo-iec-probe",
        kind: IecLineKind::Optical,
        meters: &[("Rooftop PV (A1000, optical probe)", "a1000", "")],
    },
];

/// Serves the IEC lines, creates (or reuses) their buses and devices, and
/// prints each line. `seed` continues from the Modbus fleet's seeds.
pub(super) async fn start_iec_fleet(
    pool: &PgPool,
    zone: Tz,
    mut seed: u64,
    key: &SecretKey,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    for line in IEC_FLEET {
        let meters = line
            .meters
            .iter()
            .map(|(_, profile, address)| {
                seed += 1;
                meter(profile, address, seed, zone)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let served = ServedLine::new(meters, Clock::System);
        let transport = match line.kind {
            IecLineKind::Tcp => {
                let (address, _) = spawn_iec_tcp(served, "127.0.0.1:0", shutdown.clone()).await?;
                Transport::Iec62056Tcp {
                    host: address.ip().to_string(),
                    port: address.port(),
                }
            }
            IecLineKind::Serial => {
                let (path, _) = spawn_iec_pty(served, shutdown.clone())?;
                Transport::Iec62056Serial {
                    path: path.display().to_string(),
                    initial_baud: 300,
                    max_baud: 9600,
                }
            }
            IecLineKind::Optical => {
                let (path, _) = spawn_iec_pty(served, shutdown.clone())?;
                Transport::Optical {
                    path: path.display().to_string(),
                    max_baud: 9600,
                    settle_ms: 300,
                }
            }
        };
        let row = upsert_bus(pool, line.bus, &transport).await?;
        let existing = fetch_devices_on_bus(pool, row.id).await?;
        for (name, profile, address) in line.meters {
            if existing
                .iter()
                .any(|device| device.iec_address.as_deref() == Some(*address))
            {
                continue;
            }
            insert_device(
                &mut *pool.acquire().await?,
                &NewDevice {
                    bus_id: row.id,
                    name,
                    profile,
                    address: DeviceAddress::Iec((*address).to_owned()),
                    realtime_seconds: 10,
                    energy_seconds: 60,
                    history_seconds: 900,
                },
            )
            .await?;
        }
        let devices = fetch_devices_on_bus(pool, row.id).await?;
        if let Some(device) = devices
            .iter()
            .find(|device| device.iec_address.as_deref() == Some(OWN_PASSWORD.0))
        {
            store_password(pool, key, device.id).await?;
        }
        println!("simulated bus {:<17} {}", line.bus, transport.describe());
    }
    Ok(())
}

/// Seals the demo meter's own password under this run's key (anew at each
/// start, the key may have changed) and lifts a lock an earlier run left.
async fn store_password(pool: &PgPool, key: &SecretKey, device: DeviceId) -> anyhow::Result<()> {
    let name = SecretName::IecPassword;
    let secret = name.check(OWN_PASSWORD.1)?;
    let sealed = seal(key, device, name, &secret, fresh_nonce());
    let mut transaction = pool.begin().await?;
    upsert_device_secret(&mut transaction, device, name, &sealed, "demo").await?;
    clear_password_refused(&mut transaction, device, Utc::now()).await?;
    transaction.commit().await?;
    Ok(())
}

fn meter(profile: &str, address: &str, seed: u64, zone: Tz) -> anyhow::Result<SharedMeter> {
    let kind = IecKind::from_profile(profile).with_context(|| format!("no IEC 62056-21 simulator for {profile}"))?;
    let mut config = IecMeterConfig::new(kind, seed);
    if address.is_empty() {
        config.profile_days = Some(PROBE_PROFILE_DAYS);
        if kind == IecKind::A1000 {
            config.energy_digits = Some(EnergyDigits::a1000(PROBE_IMPORT_KWH));
        }
    } else {
        config.address = address.to_owned();
    }
    if address == OWN_PASSWORD.0 {
        config.password = OWN_PASSWORD.1.to_owned();
    }
    // The demo's A1000s print what their display lists beyond App. A
    // under the standard's codes (docs/PROFILES.md, "A1000: what the
    // display lists and Appendix A does not").
    config.display_extras = kind == IecKind::A1000;
    config.zone = zone;
    Ok(Arc::new(Mutex::new(IecMeter::new(config, Utc::now()))))
}
