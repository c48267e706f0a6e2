//! The site part of `ohmnibus demo`: "Plant A" in Europe/Rome with the
//! ARERA F1/F2/F3 calendar, an RS485 line of A1000s (a main incomer and
//! three sub-meters under it, `parent_device_id`) and a virtual meter
//! summing the sub-meters.
//!
//! The main incomer's simulator carries its sub-meters' load on top of its
//! own ([`IecMeterConfig::feeds`]), so the site balance shows, as the
//! main meter's remainder, exactly the load of its own seed: the share no
//! sub-meter measures. Everything is created through the service layer and
//! reused when it exists, so the demo can be restarted on its database.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::PgPool;

use crate::device::registry::ProfileSet;
use crate::domain::clock::Clock;
use crate::domain::ids::{CalendarId, DeviceId, SiteId, VirtualMeterId};
use crate::domain::role::Role;
use crate::domain::transport::Transport;
use crate::service::Caller;
use crate::service::buses::{NewBus, create_bus, list_buses};
use crate::service::device_request::{NewDevice, Periods};
use crate::service::devices::{add_device_placed, list_devices_on_bus};
use crate::service::site_tree::PlaceChange;
use crate::service::sites::{NewSite, SiteChange, create_site, list_sites, update_site};
use crate::service::tariff_calendars::{NewCalendar, create_calendar, list_calendars, site_calendar};
use crate::service::virtual_meters::{NewVirtualMeter, Term, create_virtual_meter, list_virtual_meters};
use crate::shutdown::Shutdown;
use crate::sim::iec62056::{IecKind, IecMeter, IecMeterConfig, ServedLine, SharedMeter, spawn_iec_pty, spawn_iec_tcp};
use crate::store::buses::upsert_bus;

pub const PLANT_NAME: &str = "Plant A";
pub const PLANT_ZONE: &str = "Europe/Rome";
/// The tariff calendar preset the site's default calendar is made from.
pub const PLANT_PRESET: &str = "it-arera-f123";
/// The plant's own bus: its devices belong to the bus's site by default,
/// and the other demo lines stay on the default site.
pub const PLANT_BUS: &str = "plant-a-iec-rs485";
pub const PLANT_VIRTUAL_METER: &str = "Plant A sub-meters";

/// One simulated A1000 of the plant.
#[derive(Debug, Clone, Copy)]
pub struct PlantMeter {
    pub name: &'static str,
    /// IEC 62056-21 device address.
    pub address: &'static str,
    /// Seed of its simulated load; for the main incomer, the seed of the
    /// load no sub-meter measures.
    pub seed: u64,
}

/// The main incomer: its simulator sums [`PLANT_SUB_METERS`] and its own
/// seed's load.
pub const PLANT_MAIN: PlantMeter = PlantMeter {
    name: "Plant A main incomer (A1000)",
    address: "30000001",
    seed: 301,
};

/// The sub-meters, children of the main incomer.
pub const PLANT_SUB_METERS: [PlantMeter; 3] = [
    PlantMeter {
        name: "Plant A compressors (A1000)",
        address: "30000002",
        seed: 302,
    },
    PlantMeter {
        name: "Plant A HVAC (A1000)",
        address: "30000003",
        seed: 303,
    },
    PlantMeter {
        name: "Plant A production line (A1000)",
        address: "30000004",
        seed: 304,
    },
];

/// How the plant's line is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantLine {
    /// An RS485 line on a pseudo-terminal, sign-on at 300 Bd (the demo).
    Rs485,
    /// The same meters behind a TCP converter: no baud rates to wait for,
    /// so a test backfills their 40 days of load profile in seconds.
    Tcp,
}

/// What the plant is made of in the database.
#[derive(Debug, Clone)]
pub struct Plant {
    pub site_id: SiteId,
    pub calendar_id: CalendarId,
    /// The bus's transport as the demo prints it.
    pub bus_transport: String,
    pub main: DeviceId,
    /// In [`PLANT_SUB_METERS`] order.
    pub sub_meters: Vec<DeviceId>,
    pub virtual_meter: VirtualMeterId,
}

/// Serves the plant's line (answers after `reaction`; the demo uses the
/// standard's 200 ms) and creates, or finds
/// from an earlier run, the site, its calendar, the bus, the devices and
/// the virtual meter. `now` starts the simulators' history.
pub async fn start_plant(
    pool: &PgPool,
    profiles: &ProfileSet,
    kind: PlantLine,
    reaction: Duration,
    now: DateTime<Utc>,
    shutdown: &Shutdown,
) -> anyhow::Result<Plant> {
    let caller = Caller {
        user: "demo".to_owned(),
        role: Role::Engineer,
    };
    let zone: Tz = PLANT_ZONE.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let site = match list_sites(pool, &caller)
        .await?
        .into_iter()
        .find(|s| s.name == PLANT_NAME)
    {
        Some(site) => site,
        None => {
            create_site(
                pool,
                &caller,
                &NewSite {
                    name: PLANT_NAME,
                    time_zone: Some(PLANT_ZONE),
                    billing_day: Some(1),
                    billing_hour: Some(0),
                    balance_threshold_percent: None,
                },
            )
            .await?
        }
    };
    let calendar_id = match site_calendar(pool, site.id).await? {
        Some(id) => id,
        None => {
            let existing = list_calendars(pool, &caller).await?;
            let id = match existing.into_iter().find(|c| c.name == PLANT_PRESET) {
                Some(calendar) => calendar.id,
                None => {
                    let new = NewCalendar {
                        preset: Some(PLANT_PRESET.to_owned()),
                        ..NewCalendar::default()
                    };
                    create_calendar(pool, &caller, new, now).await?
                }
            };
            let change = SiteChange {
                default_calendar_id: Some(Some(id)),
                ..SiteChange::default()
            };
            update_site(pool, &caller, site.id, change).await?;
            id
        }
    };

    let mut main_config = config(PLANT_MAIN, zone);
    main_config.feeds = PLANT_SUB_METERS.iter().map(|meter| meter.seed).collect();
    let mut meters: Vec<SharedMeter> = vec![shared(main_config, now)];
    meters.extend(PLANT_SUB_METERS.iter().map(|meter| shared(config(*meter, zone), now)));
    let mut line = ServedLine::new(meters, Clock::System);
    line.reaction = reaction;
    let transport = match kind {
        PlantLine::Rs485 => {
            let (path, _) = spawn_iec_pty(line, shutdown.clone())?;
            Transport::Iec62056Serial {
                path: path.display().to_string(),
                initial_baud: 300,
                max_baud: 9600,
            }
        }
        PlantLine::Tcp => {
            let (address, _) = spawn_iec_tcp(line, "127.0.0.1:0", shutdown.clone()).await?;
            Transport::Iec62056Tcp {
                host: address.ip().to_string(),
                port: address.port(),
            }
        }
    };
    let bus = match list_buses(pool, &caller)
        .await?
        .into_iter()
        .find(|b| b.name == PLANT_BUS)
    {
        // A new pseudo-terminal (or port) on each run: only the transport changes.
        Some(_) => upsert_bus(pool, PLANT_BUS, &transport).await?,
        None => {
            let new = NewBus {
                name: PLANT_BUS.to_owned(),
                transport: transport.clone(),
                site_id: Some(site.id),
            };
            create_bus(pool, &caller, &new).await?
        }
    };
    let existing = list_devices_on_bus(pool, &caller, bus.id).await?;
    let device = async |meter: PlantMeter, parent: Option<DeviceId>| -> anyhow::Result<DeviceId> {
        if let Some(found) = existing
            .iter()
            .find(|d| d.iec_address.as_deref() == Some(meter.address))
        {
            return Ok(found.id);
        }
        let new = NewDevice {
            name: meter.name.to_owned(),
            bus_id: bus.id,
            profile: "a1000".to_owned(),
            address: None,
            iec_address: Some(meter.address.to_owned()),
            schedule: Periods::default(),
        };
        let place = PlaceChange {
            site_id: Some(site.id),
            parent_device_id: Some(parent),
        };
        Ok(add_device_placed(pool, profiles, &caller, &new, place).await?.id)
    };
    let main = device(PLANT_MAIN, None).await?;
    let mut sub_meters = Vec::new();
    for meter in PLANT_SUB_METERS {
        sub_meters.push(device(meter, Some(main)).await?);
    }

    let virtual_meters = list_virtual_meters(pool, &caller, Some(site.id)).await?;
    let virtual_meter = match virtual_meters.into_iter().find(|v| v.name == PLANT_VIRTUAL_METER) {
        Some(found) => found.id,
        None => {
            let terms: Vec<Term> = sub_meters
                .iter()
                .map(|id| Term {
                    device_id: id.0,
                    sign: 1,
                })
                .collect();
            let new = NewVirtualMeter {
                name: PLANT_VIRTUAL_METER,
                site_id: site.id,
                parent_device_id: None,
                terms: &terms,
            };
            create_virtual_meter(pool, &caller, &new)
                .await
                .context("creating the plant's virtual meter")?
                .id
        }
    };
    Ok(Plant {
        site_id: site.id,
        calendar_id,
        bus_transport: transport.describe(),
        main,
        sub_meters,
        virtual_meter,
    })
}

/// The whole local day before `now`'s in `zone`, as UTC instants.
pub fn yesterday(zone: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let today = now.with_timezone(&zone).date_naive();
    let midnight = |day: chrono::NaiveDate| {
        zone.from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .expect("midnight exists in the plant's zone")
            .with_timezone(&Utc)
    };
    (midnight(today - chrono::Days::new(1)), midnight(today))
}

fn config(meter: PlantMeter, zone: Tz) -> IecMeterConfig {
    let mut config = IecMeterConfig::new(IecKind::A1000, meter.seed);
    config.address = meter.address.to_owned();
    config.zone = zone;
    config
}

fn shared(config: IecMeterConfig, now: DateTime<Utc>) -> SharedMeter {
    Arc::new(Mutex::new(IecMeter::new(config, now)))
}
