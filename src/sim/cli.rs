//! `ohmnibus simulate`: serve simulated devices until Ctrl-C.

use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use chrono::Utc;
use chrono_tz::Tz;

use super::bus::SimBus;
use super::catalog::{SIMULATED, Switches, model_with};
use super::device::SimDevice;
use super::fault::{ModbusFault, set as set_fault};
use super::iec62056::IecFault;
use super::iec62056::{IecKind, IecMeter, IecMeterConfig, ServedLine, SharedMeter, spawn_iec_pty, spawn_iec_tcp};
use super::server::{TcpFraming, spawn_pty, spawn_tcp};
use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::shutdown;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Device profile to simulate (one device, at --unit).
    #[arg(long, default_value = "th40c")]
    pub profile: String,
    /// Unit address of the single device (1-255).
    #[arg(long, default_value_t = 1, conflicts_with = "devices")]
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
    /// Serve an IEC 62056-21 meter (profiles a1000, th40c) on TCP at this address.
    #[arg(long, value_name = "ADDR", group = "transport")]
    pub iec62056: Option<String>,
    /// Protocol on --serial-pty: iec62056 or modbus (a1000: iec62056 only; th40c: modbus unless chosen).
    #[arg(long, value_name = "PROTOCOL")]
    pub protocol: Option<String>,
    /// Password of the IEC 62056-21 programming mode (P1).
    #[arg(long, default_value = "00000000")]
    pub password: String,
    /// Create a pseudo-terminal, print its device path, and serve RTU on it.
    #[arg(long, group = "transport")]
    pub serial_pty: bool,
    /// Baud rate the pseudo-terminal's answers are paced at (Modbus), or the
    /// rate an IEC 62056-21 identification offers (mode C, 300-19200).
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    /// Seed of the simulated loads (the same seed gives the same meter).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// IANA time zone of the meters' clocks.
    #[arg(long, default_value = "UTC")]
    pub zone: String,
    /// TH40C: refuse every write with exception 01 ("TWO PROTECT", TH40C manual, App. E).
    #[arg(long)]
    pub write_protected: bool,
    /// COUNTIS: the tariff comes from the T1/T2 inputs, not the bus (E43/E44 manual, 9.1.1).
    #[arg(long)]
    pub tariff_inputs: bool,
    /// A fault one device shows, as UNIT:FAULT on Modbus (no-answer,
    /// slow:MS, bad-crc, truncated, garbage-before, garbage,
    /// other-unit:N, exception:HH) or ADDRESS:FAULT on IEC 62056-21
    /// (no-answer, slow:MS, stops-mid-block, never-stops, bad-bcc); repeatable.
    #[arg(long = "fault", value_name = "DEVICE:FAULT")]
    pub faults: Vec<String>,
}

/// `--fault` specs split into the device they name and the fault's text.
fn fault_specs(args: &SimulateArgs) -> anyhow::Result<Vec<(&str, &str)>> {
    args.faults
        .iter()
        .map(|spec| {
            spec.split_once(':')
                .with_context(|| format!("--fault {spec:?}: expected DEVICE:FAULT, e.g. 2:no-answer"))
        })
        .collect()
}

/// Builds the devices `args` describe, on the system clock.
pub fn build_bus(args: &SimulateArgs, profiles: &ProfileSet) -> anyhow::Result<SimBus> {
    let zone: Tz = args
        .zone
        .parse()
        .map_err(|_| anyhow::anyhow!("--zone {:?} is not an IANA time zone", args.zone))?;
    let wanted: Vec<(String, u8)> = if args.devices.is_empty() {
        if args.unit == 0 {
            bail!("--unit 0 is the broadcast address: a device address is 1-255");
        }
        vec![(args.profile.clone(), args.unit)]
    } else {
        args.devices
            .iter()
            .map(|spec| {
                let (profile, unit) = spec
                    .split_once(':')
                    .with_context(|| format!("--device {spec:?}: expected PROFILE:UNIT"))?;
                let unit = unit
                    .parse::<u8>()
                    .ok()
                    .filter(|unit| *unit >= 1)
                    .with_context(|| format!("--device {spec:?}: unit must be 1-255"))?;
                Ok((profile.to_owned(), unit))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut devices = Vec::new();
    for (index, (name, unit)) in wanted.iter().cloned().enumerate() {
        if wanted[..index].iter().any(|(_, other)| *other == unit) {
            bail!("--device: unit {unit} is given twice; each device on a bus needs its own address");
        }
        let profile = profiles.get(&name).with_context(|| {
            format!(
                "unknown profile {name:?}; known profiles: {}",
                profiles.names().collect::<Vec<_>>().join(", ")
            )
        })?;
        let switches = Switches {
            write_protected: args.write_protected,
            tariff_inputs: args.tariff_inputs,
        };
        let Some(model) = model_with(&name, args.seed.wrapping_add(index as u64), zone, Utc::now(), switches) else {
            bail!(
                "profile {name:?} has no simulator yet; simulated: {}",
                SIMULATED.join(", ")
            );
        };
        devices.push(SimDevice::with_model(Arc::clone(&profile), unit, model, Clock::System));
    }
    for (unit, text) in fault_specs(args)? {
        let device = unit
            .parse::<u8>()
            .ok()
            .and_then(|unit| devices.iter().find(|device| device.unit == unit))
            .with_context(|| format!("--fault {unit}:{text}: no simulated device at unit {unit}"))?;
        let fault: ModbusFault = text.parse().with_context(|| format!("--fault {unit}:{text}"))?;
        set_fault(&device.fault_switch(), Some(fault));
    }
    Ok(SimBus::new(devices))
}

/// Serves the devices `args` describe until Ctrl-C. Prints one line on
/// stdout once listening: `serving th40c unit 1 on Modbus TCP 127.0.0.1:5020`,
/// or for `--serial-pty` the bare device path (what a script needs), with
/// the description on stderr.
pub async fn run(args: SimulateArgs, profiles: &ProfileSet) -> anyhow::Result<()> {
    if speaks_iec62056(&args)? {
        return run_iec62056(args).await;
    }
    let bus = build_bus(&args, profiles)?;
    let what = if args.devices.is_empty() {
        format!("{} unit {}", args.profile, args.unit)
    } else {
        args.devices
            .iter()
            .map(|spec| spec.replacen(':', " unit ", 1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (stop, shutdown) = shutdown::channel();
    let task = if let Some(address) = &args.modbus_tcp {
        let (local, task) = spawn_tcp(bus, address, TcpFraming::ModbusTcp, shutdown)
            .await
            .with_context(|| format!("--modbus-tcp {address}"))?;
        println!("serving {what} on Modbus TCP {local}");
        task
    } else if let Some(address) = &args.rtu_tcp {
        let (local, task) = spawn_tcp(bus, address, TcpFraming::RtuOverTcp, shutdown)
            .await
            .with_context(|| format!("--rtu-tcp {address}"))?;
        println!("serving {what} on Modbus RTU over TCP {local}");
        task
    } else if args.serial_pty {
        let (path, task) = spawn_pty(bus, args.baud, shutdown).context("creating a pseudo-terminal")?;
        eprintln!("serving {what} on Modbus RTU, pseudo-terminal {}", path.display());
        println!("{}", path.display());
        task
    } else {
        bail!("choose a transport: --modbus-tcp ADDR, --rtu-tcp ADDR or --serial-pty");
    };
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    stop.fire();
    let _ = task.await;
    Ok(())
}

/// Whether `args` ask for IEC 62056-21, refusing combinations by name:
/// `--iec62056` or `--protocol iec62056`, or a profile that speaks nothing
/// else (the a1000).
fn speaks_iec62056(args: &SimulateArgs) -> anyhow::Result<bool> {
    let names: Vec<&str> = if args.devices.is_empty() {
        vec![args.profile.as_str()]
    } else {
        args.devices
            .iter()
            .map(|spec| spec.split(':').next().unwrap_or_default())
            .collect()
    };
    let iec_only = names.contains(&"a1000");
    let wanted = match args.protocol.as_deref() {
        None => args.iec62056.is_some() || iec_only,
        Some("iec62056") => true,
        Some("modbus") if iec_only => bail!("--protocol modbus: the a1000 speaks only IEC 62056-21"),
        Some("modbus") if args.iec62056.is_some() => bail!("--protocol modbus contradicts --iec62056"),
        Some("modbus") => false,
        Some(other) => bail!("--protocol {other:?} is not iec62056 or modbus"),
    };
    if !wanted {
        return Ok(false);
    }
    if args.modbus_tcp.is_some() || args.rtu_tcp.is_some() {
        bail!("--modbus-tcp and --rtu-tcp serve Modbus; IEC 62056-21 is served with --iec62056 ADDR or --serial-pty");
    }
    if let Some(name) = names.iter().find(|name| IecKind::from_profile(name).is_none()) {
        bail!("profile {name:?} has no IEC 62056-21 simulator; IEC 62056-21 profiles: a1000, th40c");
    }
    Ok(true)
}

/// The IEC meters `args` describe: `--profile` alone (address = its meter
/// number), or `--device PROFILE:ADDR` repeated on one line.
pub fn build_iec_meters(args: &SimulateArgs, clock: &Clock) -> anyhow::Result<Vec<SharedMeter>> {
    let zone: Tz = args
        .zone
        .parse()
        .map_err(|_| anyhow::anyhow!("--zone {:?} is not an IANA time zone", args.zone))?;
    let wanted: Vec<(String, Option<String>)> = if args.devices.is_empty() {
        vec![(args.profile.clone(), None)]
    } else {
        args.devices
            .iter()
            .map(|spec| {
                let (profile, address) = spec
                    .split_once(':')
                    .with_context(|| format!("--device {spec:?}: expected PROFILE:ADDRESS"))?;
                let valid = !address.is_empty()
                    && address.len() <= 32
                    && address.chars().all(|c| c.is_ascii_graphic() && !"/?!".contains(c));
                if !valid {
                    bail!("--device {spec:?}: the address must be 1-32 printable characters without / ? !");
                }
                Ok((profile.to_owned(), Some(address.to_owned())))
            })
            .collect::<anyhow::Result<_>>()?
    };
    // Mode C baud characters, IEC 62056-21:2002, 6.3.2 (`docs/PROTOCOLS.md`).
    let bauds = [300, 600, 1200, 2400, 4800, 9600, 19200];
    let baud_char = bauds
        .iter()
        .position(|baud| *baud == args.baud)
        .map(|index| b'0' + index as u8)
        .with_context(|| {
            format!(
                "--baud {} is not a mode C rate (300-19200, doubling from 300)",
                args.baud
            )
        })?;
    let mut meters: Vec<SharedMeter> = Vec::new();
    for (index, (name, address)) in wanted.into_iter().enumerate() {
        let kind = IecKind::from_profile(&name).with_context(|| {
            format!("profile {name:?} has no IEC 62056-21 simulator; IEC 62056-21 profiles: a1000, th40c")
        })?;
        let mut config = IecMeterConfig::new(kind, args.seed.wrapping_add(index as u64));
        config.zone = zone;
        config.password = args.password.clone();
        config.baud_char = baud_char;
        if let Some(address) = address {
            if meters
                .iter()
                .any(|m| m.lock().expect("meter lock").config.address == address)
            {
                bail!("--device: address {address} is given twice; each meter on a line needs its own address");
            }
            config.address = address;
        }
        meters.push(Arc::new(Mutex::new(IecMeter::new(config, clock.now()))));
    }
    for (address, text) in fault_specs(args)? {
        let meter = meters
            .iter()
            .find(|meter| meter.lock().expect("meter lock").config.address == address)
            .with_context(|| format!("--fault {address}:{text}: no simulated meter at address {address}"))?;
        let fault: IecFault = text.parse().with_context(|| format!("--fault {address}:{text}"))?;
        meter.lock().expect("meter lock").fault = Some(fault);
    }
    Ok(meters)
}

async fn run_iec62056(args: SimulateArgs) -> anyhow::Result<()> {
    let clock = Clock::System;
    let meters = build_iec_meters(&args, &clock)?;
    let what = meters
        .iter()
        .map(|meter| {
            let meter = meter.lock().expect("meter lock");
            format!("{} address {}", meter.kind().name(), meter.config.address)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let line = ServedLine::new(meters, clock);
    let (stop, shutdown) = shutdown::channel();
    let task = if let Some(address) = &args.iec62056 {
        let (local, task) = spawn_iec_tcp(line, address, shutdown)
            .await
            .with_context(|| format!("--iec62056 {address}"))?;
        println!("serving {what} on IEC 62056-21 {local}");
        task
    } else if args.serial_pty {
        let (path, task) = spawn_iec_pty(line, shutdown).context("creating a pseudo-terminal")?;
        eprintln!("serving {what} on IEC 62056-21, pseudo-terminal {}", path.display());
        println!("{}", path.display());
        task
    } else {
        bail!("choose a transport: --iec62056 ADDR or --serial-pty");
    };
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    stop.fire();
    let _ = task.await;
    Ok(())
}
