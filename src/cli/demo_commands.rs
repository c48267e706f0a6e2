//! The demo's commands, queued once a day when it starts, through the same
//! use case as the API: a tariff switch on a COUNTIS E43 (written, then
//! read back), and a clock set on an A1000 that takes programming only in
//! "PRG", so it waits for field programming and its page shows what a
//! technician would do on site.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::device::registry::ProfileSet;
use crate::domain::command::CommandParameters;
use crate::domain::role::Role;
use crate::service::Caller;
use crate::service::commands::{CommandRequest, Started, start_command};
use crate::store::devices::fetch_devices;

/// (device name, kind, parameters) of each demo command.
fn demo_commands() -> [(&'static str, &'static str, CommandParameters); 2] {
    [
        (
            "Compressor room (COUNTIS E43)",
            "set_tariff",
            CommandParameters {
                tariff: Some(2),
                ..CommandParameters::default()
            },
        ),
        ("Car park feeder (A1000)", "set_clock", CommandParameters::default()),
    ]
}

/// Queues the demo's commands (once per day, by idempotency key); returns
/// (device name, command id) of each.
pub(crate) async fn queue_demo_commands(
    pool: &PgPool,
    profiles: &ProfileSet,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let caller = Caller {
        user: "demo".to_owned(),
        role: Role::Engineer,
    };
    let devices = fetch_devices(pool).await?;
    let mut queued = Vec::new();
    for (name, kind, parameters) in demo_commands() {
        let Some(device) = devices.iter().find(|device| device.name == name) else {
            continue;
        };
        let key = format!("demo-{kind}-{}", now.format("%Y-%m-%d"));
        let request = CommandRequest {
            kind,
            parameters,
            dry_run: false,
        };
        if let Started::Queued(row) =
            start_command(pool, profiles, &caller, Some(&key), device.id, request, now).await?
        {
            queued.push((name, row.id));
        }
    }
    Ok(queued)
}
