//! Counters of the polling engine, exported on /metrics.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct PollStats {
    pub requests: AtomicU64,
    pub timeouts: AtomicU64,
    pub exceptions: AtomicU64,
    pub transport_errors: AtomicU64,
    pub readings_queued: AtomicU64,
    pub readings_stored: AtomicU64,
    pub readings_dropped: AtomicU64,
    pub ingest_failures: AtomicU64,
}

impl PollStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Prometheus text exposition of the counters.
    pub fn render(&self) -> String {
        let rows = [
            ("ohmnibus_modbus_requests_total", "Modbus requests sent", &self.requests),
            (
                "ohmnibus_modbus_timeouts_total",
                "Modbus requests that got no answer in time",
                &self.timeouts,
            ),
            (
                "ohmnibus_modbus_exceptions_total",
                "Modbus exception responses",
                &self.exceptions,
            ),
            (
                "ohmnibus_modbus_transport_errors_total",
                "Connection or framing failures",
                &self.transport_errors,
            ),
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
        ];
        let mut text = String::new();
        for (name, help, counter) in rows {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                counter.load(Ordering::Relaxed)
            ));
        }
        text
    }
}
