//! Counters of the polling engine, exported on /metrics.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::time::Instant;

use super::link_stats::{Counters, LinkStats};
use crate::domain::ids::{BusId, DeviceId};

/// A per-link counter: name, help text, and how to read it.
type LinkMetric = (&'static str, &'static str, fn(&Counters) -> u64);

#[derive(Debug, Default)]
pub struct PollStats {
    /// Per bus and per device traffic.
    pub links: LinkStats,
    pub readings_queued: AtomicU64,
    pub readings_stored: AtomicU64,
    pub readings_dropped: AtomicU64,
    pub ingest_failures: AtomicU64,
    /// Readings written to the spill file while the database was away.
    pub readings_spilled: AtomicU64,
    /// Spilled readings stored once the database was back.
    pub readings_replayed: AtomicU64,
    /// Lines of the spill file that could not be read back (skipped).
    pub spill_lines_unreadable: AtomicU64,
    /// Whether the last write failed because the database is away.
    pub database_away: AtomicBool,
    /// Bus and device names, for labels next to the ids.
    names: RwLock<Names>,
}

#[derive(Debug, Default)]
struct Names {
    buses: HashMap<BusId, String>,
    devices: HashMap<DeviceId, String>,
}

/// `text` as a Prometheus label value: backslash, quote and newline escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl PollStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Names the labels of `bus` (its name as configured).
    pub fn name_bus(&self, bus: BusId, name: &str) {
        if let Ok(mut names) = self.names.write() {
            names.buses.insert(bus, name.to_owned());
        }
    }

    /// Names the labels of `device` (its name as configured).
    pub fn name_device(&self, device: DeviceId, name: &str) {
        if let Ok(mut names) = self.names.write() {
            names.devices.insert(device, name.to_owned());
        }
    }

    /// Prometheus text exposition of the counters. Each bus and device is
    /// labelled by its id (`bus`, `device`: stable) and its name
    /// (`bus_name`, `device_name`: for the person reading a dashboard).
    pub fn render(&self) -> String {
        let mut text = String::new();
        let links = self.links.all();
        let names = self.names.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bus_label = |bus: &BusId| {
            let name = names.buses.get(bus).map(String::as_str).unwrap_or_default();
            format!("bus=\"{bus}\",bus_name=\"{}\"", label(name))
        };
        let device_label = |device: &DeviceId| {
            let name = names.devices.get(device).map(String::as_str).unwrap_or_default();
            format!("device=\"{device}\",device_name=\"{}\"", label(name))
        };
        let per_link: [LinkMetric; 5] = [
            ("ohmnibus_modbus_requests_total", "Modbus requests sent", |c| c.requests),
            (
                "ohmnibus_modbus_timeouts_total",
                "Requests that got no answer in time",
                |c| c.timeouts,
            ),
            ("ohmnibus_modbus_crc_errors_total", "Answers with a bad CRC", |c| {
                c.crc_errors
            }),
            ("ohmnibus_modbus_exceptions_total", "Modbus exception answers", |c| {
                c.exceptions
            }),
            (
                "ohmnibus_modbus_transport_errors_total",
                "Connection or framing failures",
                |c| c.transport_errors,
            ),
        ];
        for (name, help, value) in per_link {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter");
            for (bus, counters) in &links {
                for (device, device_counters) in &counters.devices {
                    let _ = writeln!(
                        text,
                        "{name}{{{},{}}} {}",
                        bus_label(bus),
                        device_label(device),
                        value(device_counters)
                    );
                }
            }
        }
        let _ = writeln!(
            text,
            "# HELP ohmnibus_bus_utilisation Share of time the bus carried requests and answers\n# TYPE ohmnibus_bus_utilisation gauge"
        );
        let now = Instant::now();
        for (bus, counters) in &links {
            let _ = writeln!(
                text,
                "ohmnibus_bus_utilisation{{{}}} {:.4}",
                bus_label(bus),
                counters.utilisation(now)
            );
        }
        let _ = writeln!(
            text,
            "# HELP ohmnibus_modbus_latency_seconds Recent answer latency\n# TYPE ohmnibus_modbus_latency_seconds gauge"
        );
        for (bus, counters) in &links {
            for (device, device_counters) in &counters.devices {
                for (quantile, latency) in [
                    ("mean", device_counters.mean_latency()),
                    ("0.95", device_counters.p95_latency()),
                ] {
                    if let Some(latency) = latency {
                        let _ = writeln!(
                            text,
                            "ohmnibus_modbus_latency_seconds{{{},{},quantile=\"{quantile}\"}} {:.6}",
                            bus_label(bus),
                            device_label(device),
                            latency.as_secs_f64()
                        );
                    }
                }
            }
        }
        let _ = writeln!(
            text,
            "# HELP ohmnibus_bus_latency_seconds Recent answer latency on the bus, every device together\n# TYPE ohmnibus_bus_latency_seconds gauge"
        );
        for (bus, counters) in &links {
            for (quantile, latency) in [
                ("mean", counters.bus.mean_latency()),
                ("0.95", counters.bus.p95_latency()),
            ] {
                if let Some(latency) = latency {
                    let _ = writeln!(
                        text,
                        "ohmnibus_bus_latency_seconds{{{},quantile=\"{quantile}\"}} {:.6}",
                        bus_label(bus),
                        latency.as_secs_f64()
                    );
                }
            }
        }
        let rows = [
            (
                "ohmnibus_readings_queued_total",
                "Readings handed to ingest",
                &self.readings_queued,
            ),
            (
                "ohmnibus_readings_stored_total",
                "Readings written to PostgreSQL",
                &self.readings_stored,
            ),
            (
                "ohmnibus_readings_dropped_total",
                "Readings dropped because the ingest buffer was full",
                &self.readings_dropped,
            ),
            (
                "ohmnibus_ingest_failures_total",
                "Failed batch writes (retried)",
                &self.ingest_failures,
            ),
            (
                "ohmnibus_readings_spilled_total",
                "Readings written to the spill file while the database was away",
                &self.readings_spilled,
            ),
            (
                "ohmnibus_readings_replayed_total",
                "Spilled readings stored once the database was back",
                &self.readings_replayed,
            ),
            (
                "ohmnibus_spill_lines_unreadable_total",
                "Lines of the spill file that could not be read back (skipped)",
                &self.spill_lines_unreadable,
            ),
        ];
        for (name, help, counter) in rows {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let away = u8::from(self.database_away.load(Ordering::Relaxed));
        let _ = writeln!(
            text,
            "# HELP ohmnibus_database_away Whether the last write failed because the database is away (1) or not (0)\n# TYPE ohmnibus_database_away gauge\nohmnibus_database_away {away}"
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::device::driver::Outcome;

    #[tokio::test(start_paused = true)]
    async fn bus_latency_covers_every_device_on_the_bus() {
        let stats = PollStats::default();
        stats.links.start(BusId(1));
        stats.name_bus(BusId(1), "Line \"A\"");
        stats.name_device(DeviceId(7), "Feeder 7");
        for _ in 0..18 {
            stats
                .links
                .record(BusId(1), DeviceId(7), Outcome::Answered, Duration::from_millis(10));
        }
        for _ in 0..2 {
            stats
                .links
                .record(BusId(1), DeviceId(8), Outcome::Answered, Duration::from_millis(200));
        }
        // A timeout has no latency: it is not among the answers.
        stats
            .links
            .record(BusId(1), DeviceId(9), Outcome::Timeout, Duration::from_secs(1));
        let text = stats.render();
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .to_owned()
        };
        // 20 answers: mean (18 × 10 + 2 × 200) / 20 = 29 ms; nearest rank
        // ⌈20 × 0.95⌉ = 19th of the sorted answers = 200 ms.
        assert_eq!(
            line("ohmnibus_bus_latency_seconds{bus=\"1\",bus_name=\"Line \\\"A\\\"\",quantile=\"mean\"}"),
            "ohmnibus_bus_latency_seconds{bus=\"1\",bus_name=\"Line \\\"A\\\"\",quantile=\"mean\"} 0.029000"
        );
        assert_eq!(
            line("ohmnibus_bus_latency_seconds{bus=\"1\",bus_name=\"Line \\\"A\\\"\",quantile=\"0.95\"}"),
            "ohmnibus_bus_latency_seconds{bus=\"1\",bus_name=\"Line \\\"A\\\"\",quantile=\"0.95\"} 0.200000"
        );
        // The per-device figures stay: device 7 alone answers in 10 ms.
        assert!(
            line(
                "ohmnibus_modbus_latency_seconds{bus=\"1\",bus_name=\"Line \\\"A\\\"\",device=\"7\",device_name=\"Feeder 7\",quantile=\"0.95\"}"
            )
            .ends_with(" 0.010000")
        );
        assert!(text.contains("# TYPE ohmnibus_bus_latency_seconds gauge"));
        // A device not named yet keeps its id and an empty name.
        assert!(text.contains("device=\"8\",device_name=\"\""), "{text}");
    }
}
