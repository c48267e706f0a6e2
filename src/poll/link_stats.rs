//! Statistics of the traffic on each bus and to each device: requests,
//! timeouts, CRC errors, exception answers, latency (mean and p95) and how
//! busy the line is. Kept in memory by the instance polling the bus.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::device::driver::Outcome;
use crate::domain::ids::{BusId, DeviceId};

/// Latencies kept for the percentile.
const LATENCY_WINDOW: usize = 500;

/// Counters of one link: a whole bus, or one device on it.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub requests: u64,
    pub timeouts: u64,
    pub crc_errors: u64,
    pub exceptions: u64,
    pub transport_errors: u64,
    latencies: VecDeque<Duration>,
    /// Time spent waiting for answers (the line is occupied meanwhile).
    pub busy: Duration,
    /// How late reads started against their schedule (devices only).
    lateness: VecDeque<Duration>,
    /// The latest start of a read, as a share of that read's period
    /// (1.0 = a whole period late: a reading was missed).
    pub max_lateness_periods: f64,
}

impl Counters {
    fn record(&mut self, outcome: Outcome, took: Duration) {
        self.requests += 1;
        self.busy += took;
        match outcome {
            Outcome::Answered => {
                if self.latencies.len() == LATENCY_WINDOW {
                    self.latencies.pop_front();
                }
                self.latencies.push_back(took);
            }
            Outcome::Exception => {
                self.exceptions += 1;
                if self.latencies.len() == LATENCY_WINDOW {
                    self.latencies.pop_front();
                }
                self.latencies.push_back(took);
            }
            Outcome::Timeout => self.timeouts += 1,
            Outcome::CrcError => self.crc_errors += 1,
            Outcome::TransportError => self.transport_errors += 1,
        }
    }

    fn record_lateness(&mut self, lateness: Duration, period: Duration) {
        if self.lateness.len() == LATENCY_WINDOW {
            self.lateness.pop_front();
        }
        self.lateness.push_back(lateness);
        if !period.is_zero() {
            self.max_lateness_periods = self
                .max_lateness_periods
                .max(lateness.as_secs_f64() / period.as_secs_f64());
        }
    }

    /// 95th percentile of how late the recent reads started.
    pub fn p95_lateness(&self) -> Option<Duration> {
        percentile(&self.lateness, 95)
    }

    /// Mean latency of the recent answers.
    pub fn mean_latency(&self) -> Option<Duration> {
        let count = u32::try_from(self.latencies.len()).ok().filter(|&n| n > 0)?;
        Some(self.latencies.iter().sum::<Duration>() / count)
    }

    /// 95th percentile latency of the recent answers.
    pub fn p95_latency(&self) -> Option<Duration> {
        percentile(&self.latencies, 95)
    }
}

/// Nearest-rank percentile.
fn percentile(values: &VecDeque<Duration>, percent: usize) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<Duration> = values.iter().copied().collect();
    sorted.sort();
    let rank = (sorted.len() * percent).div_ceil(100);
    Some(sorted[rank.max(1) - 1])
}

/// A bus's counters, its devices' counters, and since when it is measured.
#[derive(Debug, Clone)]
pub struct BusCounters {
    pub bus: Counters,
    pub devices: HashMap<DeviceId, Counters>,
    pub since: Instant,
}

impl BusCounters {
    /// Share of the time since the worker started that the line spent
    /// carrying requests and waiting for answers, 0–1.
    pub fn utilisation(&self, now: Instant) -> f64 {
        let elapsed = now.duration_since(self.since).as_secs_f64();
        if elapsed <= 0.0 {
            0.0
        } else {
            (self.bus.busy.as_secs_f64() / elapsed).min(1.0)
        }
    }
}

/// Every bus's counters in this instance.
#[derive(Debug, Default)]
pub struct LinkStats {
    buses: Mutex<HashMap<BusId, BusCounters>>,
}

impl LinkStats {
    /// Starts counting a bus afresh (a worker starts).
    pub fn start(&self, bus: BusId) {
        let counters = BusCounters {
            bus: Counters::default(),
            devices: HashMap::new(),
            since: Instant::now(),
        };
        self.buses.lock().expect("stats lock").insert(bus, counters);
    }

    pub fn record(&self, bus: BusId, device: DeviceId, outcome: Outcome, took: Duration) {
        let mut buses = self.buses.lock().expect("stats lock");
        let counters = buses.entry(bus).or_insert_with(|| BusCounters {
            bus: Counters::default(),
            devices: HashMap::new(),
            since: Instant::now(),
        });
        counters.bus.record(outcome, took);
        counters.devices.entry(device).or_default().record(outcome, took);
    }

    /// How late a device's read started against its schedule, and the period of that read.
    pub fn record_lateness(&self, bus: BusId, device: DeviceId, lateness: Duration, period: Duration) {
        let mut buses = self.buses.lock().expect("stats lock");
        if let Some(counters) = buses.get_mut(&bus) {
            counters
                .devices
                .entry(device)
                .or_default()
                .record_lateness(lateness, period);
        }
    }

    pub fn bus(&self, bus: BusId) -> Option<BusCounters> {
        self.buses.lock().expect("stats lock").get(&bus).cloned()
    }

    pub fn all(&self) -> Vec<(BusId, BusCounters)> {
        let mut all: Vec<_> = self
            .buses
            .lock()
            .expect("stats lock")
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_and_mean_follow_the_answers() {
        let mut counters = Counters::default();
        for ms in 1..=100 {
            counters.record(Outcome::Answered, Duration::from_millis(ms));
        }
        counters.record(Outcome::Timeout, Duration::from_millis(1_000));
        assert_eq!(counters.requests, 101);
        assert_eq!(counters.timeouts, 1);
        // Nearest rank: the 95th of 100 sorted values is 95 ms.
        assert_eq!(counters.p95_latency(), Some(Duration::from_millis(95)));
        assert_eq!(counters.mean_latency(), Some(Duration::from_micros(50_500)));
        assert_eq!(counters.busy, Duration::from_millis(5_050 + 1_000));
    }

    #[tokio::test(start_paused = true)]
    async fn utilisation_is_busy_time_over_elapsed_time() {
        let stats = LinkStats::default();
        stats.start(BusId(1));
        stats.record(BusId(1), DeviceId(7), Outcome::Answered, Duration::from_millis(250));
        tokio::time::advance(Duration::from_secs(1)).await;
        let bus = stats.bus(BusId(1)).unwrap();
        assert!((bus.utilisation(Instant::now()) - 0.25).abs() < 1e-9);
        assert_eq!(bus.devices[&DeviceId(7)].requests, 1);
    }
}
