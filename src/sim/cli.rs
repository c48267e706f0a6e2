//! `ohmnibus simulate`: serve simulated devices until Ctrl-C.

use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use chrono_tz::Tz;
use tokio::sync::watch;

use super::bus::SimBus;
use super::clock::SimClock;
use super::device::SimDevice;
use super::meter::Th40cModel;
use super::server::{TcpFraming, spawn_pty, spawn_tcp};
use crate::device::registry::ProfileSet;

/// Profiles the simulator has a physical model for.
const SIMULATED: &[&str] = &["th40c"];

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Device profile to simulate (one device, at --unit).
    #[arg(long, default_value = "th40c")]
    pub profile: String,
    /// Unit address of the single device.
    #[arg(long, default_value_t = 1)]
    pub unit: u8,
    /// Several devices on one bus, as PROFILE:UNIT (repeatable); replaces --profile/--unit.
    #[arg(long = "device", value_name = "PROFILE:UNIT")]
    pub devices: Vec<String>,
    /// Serve Modbus TCP on this address (e.g. 127.0.0.1:5020).
    #[arg(long, value_name = "ADDR", group = "transport")]
    pub modbus_tcp: Option<String>,
    /// Serve Modbus RTU frames over TCP on this address, as a transparent gateway does.
    #[arg(long, value_name = "ADDR", group = "transport")]
    pub rtu_tcp: Option<String>,
    /// Create a pseudo-terminal, print its device path, and serve RTU on it.
    #[arg(long, group = "transport")]
    pub serial_pty: bool,
    /// Baud rate the pseudo-terminal's answers are paced at.
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    /// Seed of the simulated loads (the same seed gives the same meter).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// IANA time zone of the meters' clocks.
    #[arg(long, default_value = "UTC")]
    pub zone: String,
}

/// Builds the devices `args` describe, on the system clock.
pub fn build_bus(args: &SimulateArgs, profiles: &ProfileSet) -> anyhow::Result<SimBus> {
    let zone: Tz = args
        .zone
        .parse()
        .map_err(|_| anyhow::anyhow!("--zone {:?} is not an IANA time zone", args.zone))?;
    let wanted: Vec<(String, u8)> = if args.devices.is_empty() {
        vec![(args.profile.clone(), args.unit)]
    } else {
        args.devices
            .iter()
            .map(|spec| {
                let (profile, unit) = spec
                    .split_once(':')
                    .with_context(|| format!("--device {spec:?}: expected PROFILE:UNIT"))?;
                let unit: u8 = unit
                    .parse()
                    .with_context(|| format!("--device {spec:?}: unit must be 1-247"))?;
                Ok((profile.to_owned(), unit))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut devices = Vec::new();
    for (index, (name, unit)) in wanted.into_iter().enumerate() {
        if !(1..=247).contains(&unit) {
            bail!("unit {unit} is out of range: a device address is 1-247");
        }
        let profile = profiles.get(&name).with_context(|| {
            format!(
                "unknown profile {name:?}; known: {}",
                profiles.names().collect::<Vec<_>>().join(", ")
            )
        })?;
        if !SIMULATED.contains(&name.as_str()) {
            bail!(
                "profile {name:?} has no simulator yet; simulated: {}",
                SIMULATED.join(", ")
            );
        }
        let model = Th40cModel::new(args.seed.wrapping_add(index as u64), zone, Utc::now());
        devices.push(SimDevice::new(Arc::clone(&profile), unit, model, SimClock::System));
    }
    Ok(SimBus::new(devices))
}

pub async fn run(args: SimulateArgs, profiles: &ProfileSet) -> anyhow::Result<()> {
    let bus = build_bus(&args, profiles)?;
    let (stop, shutdown) = watch::channel(false);
    let task = if let Some(address) = &args.modbus_tcp {
        let (local, task) = spawn_tcp(bus, address, TcpFraming::ModbusTcp, shutdown)
            .await
            .with_context(|| format!("--modbus-tcp {address}"))?;
        println!("serving Modbus TCP on {local}");
        task
    } else if let Some(address) = &args.rtu_tcp {
        let (local, task) = spawn_tcp(bus, address, TcpFraming::RtuOverTcp, shutdown)
            .await
            .with_context(|| format!("--rtu-tcp {address}"))?;
        println!("serving Modbus RTU over TCP on {local}");
        task
    } else if args.serial_pty {
        let (path, task) = spawn_pty(bus, args.baud, shutdown).context("creating a pseudo-terminal")?;
        println!("{}", path.display());
        task
    } else {
        bail!("choose a transport: --modbus-tcp ADDR, --rtu-tcp ADDR or --serial-pty");
    };
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    let _ = stop.send(true);
    let _ = task.await;
    Ok(())
}
