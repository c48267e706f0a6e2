//! Simulated meters and lines for the application to read.

use std::sync::Arc;
use std::time::Duration;

use ohmnibus::domain::clock::Clock;
use ohmnibus::shutdown::{self, Trigger};
use ohmnibus::sim::iec62056::{IecKind, IecMeter, IecMeterConfig, ServedLine, SharedMeter, spawn_iec_tcp};

/// A simulated IEC 62056-21 line of `meters` on `clock` that answers after
/// 5 ms instead of the standard's 200 ms, so tests read quickly.
pub(crate) fn quick_iec_line(meters: Vec<SharedMeter>, clock: Clock) -> ServedLine {
    let mut line = ServedLine::new(meters, clock);
    line.reaction = Duration::from_millis(5);
    line
}

/// Serves `line` over TCP on 127.0.0.1; returns its port and its stop
/// switch: the line serves while the switch is kept.
pub(crate) async fn serve_iec_tcp(line: ServedLine) -> (u16, Trigger) {
    let (stop, shutdown) = shutdown::channel();
    let (address, _) = spawn_iec_tcp(line, "127.0.0.1:0", shutdown).await.unwrap();
    (address.port(), stop)
}

/// A simulated IEC meter of `kind` (history from `seed`) answering to
/// `address`, its clock set at `at`.
pub(crate) fn iec_meter(kind: IecKind, seed: u64, address: &str, at: chrono::DateTime<chrono::Utc>) -> SharedMeter {
    let mut config = IecMeterConfig::new(kind, seed);
    config.address = address.into();
    Arc::new(std::sync::Mutex::new(IecMeter::new(config, at)))
}
