//! A device as a bus worker holds it, for tests that drive a worker
//! directly rather than through the API.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use ohmnibus::device::profile::Profile;
use ohmnibus::domain::ids::DeviceId;
use ohmnibus::domain::state::DeviceState;
use ohmnibus::poll::context::DeviceConfig;
use ohmnibus::store::devices::{DeviceLimits, DeviceStatus};

/// Device `id` named `name` of `profile` at Modbus address 1, in UTC, its
/// state unknown, every group read hourly, the limits of a direct 230 V
/// three-phase meter; a test changes what it needs with
/// `DeviceConfig { energy, ..device_config(…) }`.
pub(crate) fn device_config(id: DeviceId, name: &str, profile: Arc<Profile>) -> DeviceConfig {
    DeviceConfig {
        id,
        name: name.to_owned(),
        address: 1,
        iec_address: None,
        limits: DeviceLimits {
            profile: profile.name.clone(),
            ct_ratio: 1.0,
            max_current_a: None,
            voltage_v: 230.0,
            phases: 3,
            energy_unit: None,
            energy_decimals: None,
        },
        profile,
        realtime: Duration::from_secs(3600),
        energy: Duration::from_secs(3600),
        history: Duration::from_secs(3600),
        zone: Tz::UTC,
        status: DeviceStatus {
            state: DeviceState::Unknown,
            last_success_at: None,
            last_attempt_at: Utc::now(),
            consecutive_failures: 0,
            last_error: None,
        },
        password: Default::default(),
        identity: Default::default(),
    }
}
