//! Commands the server asks for itself, as the system user (`ohmnibus`,
//! an engineer), through the same checks and the same queue as an
//! operator's (`commands::start_command`); nothing here touches a bus.
//!
//! - Clock synchronisation: once a day at a site's `clock_sync.at`, a
//!   `set_clock` for each of its meters that takes one and whose clock was
//!   last read at least `min_drift_s` off. The meter's own rules (the
//!   TH40C's once a day and at most 5 minutes, TH40C manual App. E) are the
//!   worker's to apply.
//! - Tariff switching, for meters whose tariff source is the bus (E33,
//!   E43/E44: register 0x9E21, E43/E44 manual §8.3): at each switch of
//!   their calendar a `set_tariff` to the band's number, as one broadcast
//!   for a bus whose every device follows the same calendar and takes it
//!   broadcast ("The broadcast communication is available for the log that
//!   stores the tariff"), else one per device.
//!
//! Each command's idempotency key names the device (or bus) and the day or
//! the switch, so a round repeated, or run again after a restart, queues
//! nothing twice.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::commands::{CommandRequest, Started, check_on_device, start_command};
use super::tariff_calendars::load_calendar;
use super::{Caller, ServiceError};
use crate::device::registry::ProfileSet;
use crate::domain::command::{Command, CommandKind, CommandParameters};
use crate::domain::ids::{BusId, CalendarId, DeviceId};
use crate::domain::role::{Right, Role};
use crate::metering::clock_drift::clock_drift_seconds;
use crate::metering::clock_sync::{due_day, wall_time};
use crate::metering::tou::switches::{TariffSwitch, last_switch};
use crate::store::buses::{BusRow, fetch_bus};
use crate::store::clock_sync::{fetch_clock_syncs, fetch_latest_clocks};
use crate::store::devices::{DeviceRow, fetch_devices};

/// The user the server's own commands are requested by.
pub const SYSTEM_USER: &str = "ohmnibus";

/// The caller of the server's own commands.
pub fn system_caller() -> Caller {
    Caller {
        user: SYSTEM_USER.to_owned(),
        role: Role::Engineer,
    }
}

/// Queues the clock sets due at `now`; returns their command ids (those
/// queued by an earlier round the same local day included).
pub async fn queue_clock_syncs(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, ServiceError> {
    caller.require(Right::Configure)?;
    let clocks: HashMap<DeviceId, (f64, f64, DateTime<Utc>)> = fetch_latest_clocks(pool)
        .await?
        .into_iter()
        .map(|(device, date, time, read_at)| (device, (date, time, read_at)))
        .collect();
    let devices = fetch_devices(pool).await?;
    let mut buses = Buses::default();
    let mut queued = Vec::new();
    for site in fetch_clock_syncs(pool).await? {
        if !site.sync.enabled {
            continue;
        }
        let Some(day) = due_day(site.time_zone.tz(), site.sync.at, now) else {
            continue;
        };
        for device in devices
            .iter()
            .filter(|device| device.site_id == site.site_id && device.enabled)
        {
            let bus = buses.get(pool, device.bus_id).await?;
            // The meter keeps the time of its bus's site, as the poller reads it.
            let drift = clocks.get(&device.id).and_then(|&(date, time, read_at)| {
                clock_drift_seconds(wall_time(date, time)?, bus.time_zone.tz(), read_at)
            });
            let Some(drift) = drift else { continue };
            if drift.unsigned_abs() < u64::try_from(site.sync.min_drift_s).unwrap_or(0) {
                continue;
            }
            let command = Command {
                kind: CommandKind::SetClock,
                parameters: CommandParameters::default(),
            };
            if check_on_device(pool, profiles, device, &bus, &command, now)
                .await
                .is_err()
            {
                continue;
            }
            let key = format!("clock-sync/device/{}/{day}", device.id);
            if let Some(id) = queue(pool, profiles, caller, &key, device.id, &command, now).await {
                queued.push(id);
            }
        }
    }
    Ok(queued)
}

/// Queues the tariff switches due at `now` for meters under tariff
/// control; returns their command ids (those an earlier round queued for
/// the same switch included).
pub async fn queue_tariff_switches(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, ServiceError> {
    caller.require(Right::Configure)?;
    let devices = fetch_devices(pool).await?;
    let mut controlled: BTreeMap<BusId, Vec<&DeviceRow>> = BTreeMap::new();
    for device in devices
        .iter()
        .filter(|device| device.enabled && device.tariff_calendar_id.is_some())
    {
        controlled.entry(device.bus_id).or_default().push(device);
    }
    let mut switches: HashMap<CalendarId, Option<TariffSwitch>> = HashMap::new();
    let mut buses = Buses::default();
    let mut queued = Vec::new();
    for (bus_id, on_bus) in controlled {
        let bus = buses.get(pool, bus_id).await?;
        for device in &on_bus {
            let calendar = device.tariff_calendar_id.expect("filtered");
            if let std::collections::hash_map::Entry::Vacant(entry) = switches.entry(calendar) {
                let switch = match load_calendar(pool, calendar).await {
                    Ok(loaded) => last_switch(&loaded.versions, now),
                    Err(error) => {
                        tracing::warn!(%error, calendar = calendar.0, "cannot switch tariffs by this calendar");
                        None
                    }
                };
                entry.insert(switch);
            }
        }
        let every: Vec<&DeviceRow> = devices.iter().filter(|device| device.bus_id == bus_id).collect();
        let calendar = on_bus[0].tariff_calendar_id;
        let one_calendar = every.len() > 1 && every.iter().all(|device| device.tariff_calendar_id == calendar);
        if one_calendar && let Some(switch) = calendar.and_then(|calendar| switches[&calendar].clone()) {
            let command = set_tariff(switch.tariff, true);
            let mut takes_it = true;
            for device in &every {
                takes_it &= check_on_device(pool, profiles, device, &bus, &command, now)
                    .await
                    .is_ok();
            }
            if takes_it {
                let key = format!(
                    "tariff-switch/bus/{bus_id}/{}/{}",
                    switch.at.to_rfc3339(),
                    switch.tariff
                );
                if let Some(id) = queue(pool, profiles, caller, &key, on_bus[0].id, &command, now).await {
                    queued.push(id);
                }
                continue;
            }
        }
        for device in on_bus {
            let calendar = device.tariff_calendar_id.expect("filtered");
            let Some(switch) = switches[&calendar].clone() else {
                continue;
            };
            let command = set_tariff(switch.tariff, false);
            let key = format!(
                "tariff-switch/device/{}/{}/{}",
                device.id,
                switch.at.to_rfc3339(),
                switch.tariff
            );
            if let Some(id) = queue(pool, profiles, caller, &key, device.id, &command, now).await {
                queued.push(id);
            }
        }
    }
    Ok(queued)
}

fn set_tariff(tariff: i64, broadcast: bool) -> Command {
    Command {
        kind: CommandKind::SetTariff,
        parameters: CommandParameters {
            tariff: Some(tariff),
            broadcast,
            ..CommandParameters::default()
        },
    }
}

/// Queues a command as a single command is queued; one the device cannot
/// take is logged and skipped, so that it holds up no other.
async fn queue(
    pool: &PgPool,
    profiles: &ProfileSet,
    caller: &Caller,
    key: &str,
    device: DeviceId,
    command: &Command,
    now: DateTime<Utc>,
) -> Option<i64> {
    let request = CommandRequest {
        kind: command.kind.as_str(),
        parameters: command.parameters.clone(),
        dry_run: false,
    };
    match start_command(pool, profiles, caller, Some(key), device, request, now).await {
        Ok(Started::Queued(row)) => Some(row.id),
        Ok(Started::DryRun(_)) => None,
        Err(error) => {
            tracing::warn!(%error, device = device.0, kind = %command.kind, "cannot queue an automatic command");
            None
        }
    }
}

/// Buses as fetched once per round.
#[derive(Default)]
struct Buses(HashMap<BusId, BusRow>);

impl Buses {
    async fn get(&mut self, pool: &PgPool, id: BusId) -> Result<BusRow, ServiceError> {
        if let Some(bus) = self.0.get(&id) {
            return Ok(bus.clone());
        }
        let bus = fetch_bus(pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("no bus {id}")))?;
        self.0.insert(id, bus.clone());
        Ok(bus)
    }
}
