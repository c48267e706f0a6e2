//! The energy history of a simulated IEC meter: 15-minute intervals of the
//! site's load (the same physics as the Modbus TH40C, [`site_phases`]),
//! kept in whole Wh so that every law a meter guarantees holds exactly:
//! registers never go backwards, tariff rates sum to the total, and the
//! intervals between two interval boundaries sum to the register
//! difference between them.
//!
//! A meter may also carry the load of meters downstream of it (its
//! *feeds*, [`EnergyHistory::with_feeds`]): each of its intervals is then
//! its own site's interval plus, quantity by quantity, the same interval of
//! each feed, all in whole Wh. Such a main meter and its sub-meters keep
//! the laws above each on its own, and main − Σ feeds is exactly the main
//! meter's own (unmetered) share, interval by interval.
//!
//! The history starts [`HISTORY_DAYS`] before the model is built (at a UTC
//! midnight), long enough for 16 monthly billing sets and their demand
//! periods; it grows as the simulator clock moves.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use crate::sim::site::{noise, site_phases};

/// Length of one load-profile interval (A1000 manual, 1.6: "Data sampling
/// interval is 15 minutes"; TH40C factory default,
/// `docs/PROTOCOLS.md`, TH40C §5).
pub const INTERVAL_SECONDS: i64 = 900;
const INTERVALS_PER_DAY: usize = 96;
/// Days of history before the model's start: 17 months of billing periods
/// (16 sets and the period before the oldest) plus slack.
pub const HISTORY_DAYS: i64 = 540;

/// The quantities the history keeps per interval, in Wh, varh or VAh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// +A, OBIS C = 1.
    ImportActive,
    /// −A, C = 2.
    ExportActive,
    /// Reactive in quadrant I, C = 5.
    Q1,
    /// C = 6.
    Q2,
    /// C = 7.
    Q3,
    /// C = 8.
    Q4,
    /// Apparent while importing, C = 9.
    ImportApparent,
    /// Apparent while exporting, C = 10.
    ExportApparent,
}

impl Quantity {
    pub const ALL: [Quantity; 8] = [
        Quantity::ImportActive,
        Quantity::ExportActive,
        Quantity::Q1,
        Quantity::Q2,
        Quantity::Q3,
        Quantity::Q4,
        Quantity::ImportApparent,
        Quantity::ExportApparent,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// OBIS value group C of the quantity.
    pub fn obis_c(self) -> u8 {
        [1, 2, 5, 6, 7, 8, 9, 10][self.index()]
    }

    /// The quantities an OBIS group C sums: +R (C = 3) is Q1 + Q2 and −R
    /// (C = 4) is Q3 + Q4 (IEC 62056-61, reactive energy by quadrant).
    pub fn for_obis_c(c: u8) -> Option<&'static [Quantity]> {
        Some(match c {
            1 => &[Quantity::ImportActive],
            2 => &[Quantity::ExportActive],
            3 => &[Quantity::Q1, Quantity::Q2],
            4 => &[Quantity::Q3, Quantity::Q4],
            5 => &[Quantity::Q1],
            6 => &[Quantity::Q2],
            7 => &[Quantity::Q3],
            8 => &[Quantity::Q4],
            9 => &[Quantity::ImportApparent],
            10 => &[Quantity::ExportApparent],
            _ => return None,
        })
    }

    /// Energy unit as the readouts write it.
    pub fn energy_unit(c: u8) -> &'static str {
        match c {
            1 | 2 => "kWh",
            9 | 10 => "kVAh",
            _ => "kvarh",
        }
    }

    /// Power unit of the same quantity (demands, average powers).
    pub fn power_unit(c: u8) -> &'static str {
        match c {
            1 | 2 => "kW",
            9 | 10 => "kVA",
            _ => "kvar",
        }
    }
}

/// Tariff rate 1–4 in force at a local time. Neither manual gives a
/// factory schedule (A1000 manual 1.4: 4 rates, 10 sections a day), so the
/// simulator uses a plausible one: F1 weekdays 08–19, F2 weekdays 07–08 and
/// 19–23 and Saturdays 07–23, F3 the other hours Monday to Saturday, F4
/// Sundays. Rates change on whole hours, so an interval has one rate.
pub fn tariff_rate(local: NaiveDateTime) -> u8 {
    let hour = local.hour();
    match local.weekday() {
        Weekday::Sun => 4,
        Weekday::Sat if (7..23).contains(&hour) => 2,
        Weekday::Sat => 3,
        _ if (8..19).contains(&hour) => 1,
        _ if hour == 7 || (19..23).contains(&hour) => 2,
        _ => 3,
    }
}

/// One interval of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryInterval {
    /// UTC start; the interval ends [`INTERVAL_SECONDS`] later.
    pub start: DateTime<Utc>,
    /// Tariff rate 1–4 in force.
    pub rate: u8,
    /// Wh (varh, VAh) per quantity, in [`Quantity::ALL`] order.
    pub energy: [i64; 8],
}

impl HistoryInterval {
    pub fn end(&self) -> DateTime<Utc> {
        self.start + Duration::seconds(INTERVAL_SECONDS)
    }

    pub fn get(&self, quantity: Quantity) -> i64 {
        self.energy[quantity.index()]
    }
}

/// Registers by quantity and rate: `[quantity][rate]`, rate 0 the total.
pub type Registers = [[i64; 5]; 8];

#[derive(Debug, Clone)]
pub struct EnergyHistory {
    seed: u64,
    /// Seeds of the meters downstream whose load this one also carries.
    feeds: Vec<u64>,
    zone: Tz,
    epoch: DateTime<Utc>,
    /// Registers at the epoch.
    base: Registers,
    intervals: Vec<HistoryInterval>,
    /// Sums of whole days before day d: `day_prefix[d]`.
    day_prefix: Vec<Registers>,
}

impl EnergyHistory {
    /// A history for site `seed` whose meter clock runs in `zone`, reaching
    /// back [`HISTORY_DAYS`] from `start`.
    pub fn new(seed: u64, zone: Tz, start: DateTime<Utc>) -> EnergyHistory {
        EnergyHistory::with_feeds(seed, &[], zone, start)
    }

    /// A main meter's history: its own site `seed` (the load no sub-meter
    /// measures) plus the load of each meter in `feeds`, each a seed of a
    /// meter in the same `zone` (its sub-meters). Its registers start from
    /// its own seed's; only the intervals sum.
    pub fn with_feeds(seed: u64, feeds: &[u64], zone: Tz, start: DateTime<Utc>) -> EnergyHistory {
        let day = (start - Duration::days(HISTORY_DAYS)).date_naive();
        let epoch = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        // A meter in service for some years: 20–60 MWh on +A, shares per rate.
        let scale = 20_000_000.0 + 40_000_000.0 * noise(seed, 31, 0);
        let ratios = [1.0, 0.15, 0.3, 0.02, 0.01, 0.08, 1.1, 0.16];
        let shares = [0.45, 0.25, 0.2, 0.1];
        let mut base = [[0i64; 5]; 8];
        for (q, ratio) in ratios.iter().enumerate() {
            for (r, share) in shares.iter().enumerate() {
                base[q][r + 1] = (scale * ratio * share) as i64;
            }
            base[q][0] = base[q][1..].iter().sum();
        }
        let mut history = EnergyHistory {
            seed,
            feeds: feeds.to_vec(),
            zone,
            epoch,
            base,
            intervals: Vec::new(),
            day_prefix: vec![[[0; 5]; 8]],
        };
        history.extend_to(start);
        history
    }

    pub fn epoch(&self) -> DateTime<Utc> {
        self.epoch
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Computes whole days of intervals until `at` is covered.
    fn extend_to(&mut self, at: DateTime<Utc>) {
        while self.epoch + Duration::seconds(INTERVAL_SECONDS * self.intervals.len() as i64) <= at {
            let mut day_sum = *self.day_prefix.last().expect("prefix");
            for _ in 0..INTERVALS_PER_DAY {
                let start = self.epoch + Duration::seconds(INTERVAL_SECONDS * self.intervals.len() as i64);
                let interval = self.compute(start);
                for (q, sums) in day_sum.iter_mut().enumerate() {
                    sums[0] += interval.energy[q];
                    sums[usize::from(interval.rate)] += interval.energy[q];
                }
                self.intervals.push(interval);
            }
            self.day_prefix.push(day_sum);
        }
    }

    /// Energies of the interval starting at `start`: the meter's own site
    /// plus each of its feeds ([`summed`]).
    fn compute(&self, start: DateTime<Utc>) -> HistoryInterval {
        let own = site_interval(self.seed, self.zone, start);
        let feeds: Vec<HistoryInterval> = self
            .feeds
            .iter()
            .map(|feed| site_interval(*feed, self.zone, start))
            .collect();
        summed(own, &feeds)
    }

    /// The interval that contains `at`, if the history reaches it.
    fn index_of(&self, at: DateTime<Utc>) -> usize {
        ((at - self.epoch).num_seconds().max(0) / INTERVAL_SECONDS) as usize
    }

    /// Every register at `at` (Wh), the interval in progress counted pro
    /// rata (whole Wh, rounded down) for the rate in force.
    pub fn registers_at(&mut self, at: DateTime<Utc>) -> Registers {
        self.extend_to(at);
        let mut registers = self.base;
        if at <= self.epoch {
            return registers;
        }
        let index = self.index_of(at);
        let day = index / INTERVALS_PER_DAY;
        let whole_days = self.day_prefix[day];
        for (q, sums) in registers.iter_mut().enumerate() {
            for (r, sum) in sums.iter_mut().enumerate() {
                *sum += whole_days[q][r];
            }
        }
        for interval in &self.intervals[day * INTERVALS_PER_DAY..index] {
            add(&mut registers, interval, 1, 1);
        }
        let elapsed = (at - self.intervals[index].start).num_seconds();
        if elapsed > 0 {
            add(&mut registers, &self.intervals[index], elapsed, INTERVAL_SECONDS);
        }
        registers
    }

    /// One register at `at`: `quantity` in `rate` (0 = total), Wh.
    pub fn register_wh(&mut self, quantity: Quantity, rate: u8, at: DateTime<Utc>) -> i64 {
        self.registers_at(at)[quantity.index()][usize::from(rate)]
    }

    /// Complete intervals that end in `[from, to]` and no later than `now`,
    /// oldest first (profile rows are stamped with their interval's end).
    pub fn intervals(&mut self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Vec<HistoryInterval> {
        let to = to.min(now);
        self.extend_to(to);
        let step = Duration::seconds(INTERVAL_SECONDS);
        let first = if from <= self.epoch + step {
            0
        } else {
            self.index_of(from - step + Duration::seconds(INTERVAL_SECONDS - 1))
        };
        self.intervals
            .iter()
            .skip(first)
            .take_while(|interval| interval.end() <= to)
            .filter(|interval| interval.end() >= from)
            .copied()
            .collect()
    }

    /// Largest 15-minute average power (kW, kvar) of the quantities summed
    /// in `quantities`, over intervals ending in `(after, until]`, for
    /// `rate` (0 = any): the value in W and the end of its interval.
    /// Block demand over the profile's interval (both manuals allow 15 min).
    pub fn max_demand(
        &mut self,
        quantities: &[Quantity],
        rate: u8,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<(i64, DateTime<Utc>)> {
        let step = Duration::seconds(INTERVAL_SECONDS);
        let intervals = self.intervals(after + step, until, until);
        let per_hour = 3600 / INTERVAL_SECONDS;
        intervals
            .iter()
            .filter(|interval| rate == 0 || interval.rate == rate)
            .filter(|interval| interval.end() > after)
            .map(|interval| {
                let energy: i64 = quantities.iter().map(|q| interval.get(*q)).sum();
                (energy * per_hour, interval.end())
            })
            .fold(None, |best: Option<(i64, DateTime<Utc>)>, (watts, end)| match best {
                Some((top, _)) if top >= watts => best,
                _ => Some((watts, end)),
            })
    }
}

/// Energies of site `seed`'s interval starting at `start`: the site's
/// powers at its middle times a quarter hour, each phase metered on its own
/// direction and quadrant, rounded to whole Wh.
fn site_interval(seed: u64, zone: Tz, start: DateTime<Utc>) -> HistoryInterval {
    let middle = start + Duration::seconds(INTERVAL_SECONDS / 2);
    let phases = site_phases(seed, zone, middle);
    let mut kw = [0.0f64; 8];
    for k in 0..3 {
        let (p, q, s) = (phases.active[k], phases.reactive[k], phases.apparent[k]);
        let import = p >= 0.0;
        kw[if import { 0 } else { 1 }] += p.abs();
        let quadrant = match (import, q >= 0.0) {
            (true, true) => 2,
            (false, true) => 3,
            (false, false) => 4,
            (true, false) => 5,
        };
        kw[quadrant] += q.abs();
        kw[if import { 6 } else { 7 }] += s;
    }
    let hours = INTERVAL_SECONDS as f64 / 3600.0;
    let local = start.with_timezone(&zone).naive_local();
    HistoryInterval {
        start,
        rate: tariff_rate(local),
        energy: kw.map(|power| (power * hours * 1000.0).round() as i64),
    }
}

/// An interval of a meter that carries `own` and each of `feeds` (same
/// start, same zone, so the same rate): the energies summed quantity by
/// quantity, exact in whole Wh. Each feed is metered as its own meter
/// meters it (per phase and direction), so the main meter's import is
/// the sum of the imports, its export the sum of the exports.
fn summed(own: HistoryInterval, feeds: &[HistoryInterval]) -> HistoryInterval {
    let mut total = own;
    for feed in feeds {
        debug_assert_eq!((feed.start, feed.rate), (own.start, own.rate));
        for (sum, part) in total.energy.iter_mut().zip(feed.energy) {
            *sum += part;
        }
    }
    total
}

/// Adds `numerator / denominator` of an interval (whole Wh, rounded down).
fn add(registers: &mut Registers, interval: &HistoryInterval, numerator: i64, denominator: i64) {
    for (q, sums) in registers.iter_mut().enumerate() {
        let part = interval.energy[q] * numerator / denominator;
        sums[0] += part;
        sums[usize::from(interval.rate)] += part;
    }
}

/// Whole minutes of `at` (meters stamp demands and events to the minute).
pub fn whole_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn interval(start: DateTime<Utc>, rate: u8, energy: [i64; 8]) -> HistoryInterval {
        HistoryInterval { start, rate, energy }
    }

    #[test]
    fn a_summed_interval_is_its_own_share_plus_each_feed() {
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let own = interval(start, 1, [100, 0, 20, 0, 0, 3, 110, 0]);
        let a = interval(start, 1, [250, 5, 40, 1, 0, 0, 260, 6]);
        let b = interval(start, 1, [1_000, 0, 300, 0, 2, 10, 1_050, 0]);
        let sum = summed(own, &[a, b]);
        // By hand: 100 + 250 + 1000 = 1350 on +A, 0 + 5 + 0 = 5 on −A…
        assert_eq!(sum.energy, [1_350, 5, 360, 1, 2, 13, 1_420, 6]);
        assert_eq!((sum.start, sum.rate), (start, 1));
        assert_eq!(summed(own, &[]), own);
    }

    #[test]
    fn a_main_meter_carries_its_feeds_and_keeps_the_meter_laws() {
        let zone: Tz = "Europe/Rome".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 13, 7, 0).unwrap();
        let mut main = EnergyHistory::with_feeds(7, &[8, 9], zone, now);
        let mut own = EnergyHistory::new(7, zone, now);
        let mut a = EnergyHistory::new(8, zone, now);
        let mut b = EnergyHistory::new(9, zone, now);
        let (from, to) = (now - Duration::days(3), now);
        let main_intervals = main.intervals(from, to, now);
        let parts: Vec<_> = [&mut own, &mut a, &mut b]
            .into_iter()
            .map(|history| history.intervals(from, to, now))
            .collect();
        assert_eq!(main_intervals.len(), 3 * 96);
        for (n, interval) in main_intervals.iter().enumerate() {
            for q in Quantity::ALL {
                let parts_sum: i64 = parts.iter().map(|part| part[n].get(q)).sum();
                assert_eq!(interval.get(q), parts_sum, "{q:?} at {}", interval.start);
                assert!(interval.get(q) >= 0);
            }
            assert_eq!(interval.rate, parts[1][n].rate);
        }
        // Registers: the intervals between two boundaries sum to the
        // register difference, rates sum to the total, nothing goes back.
        let (t1, t2) = (main_intervals[0].start, main_intervals.last().unwrap().end());
        let (r1, r2) = (main.registers_at(t1), main.registers_at(t2));
        for q in Quantity::ALL {
            let sum: i64 = main_intervals.iter().map(|i| i.get(q)).sum();
            assert_eq!(r2[q.index()][0] - r1[q.index()][0], sum, "{q:?}");
            assert_eq!(r2[q.index()][0], r2[q.index()][1..].iter().sum::<i64>());
            assert!(main.register_wh(q, 0, now) >= r2[q.index()][0]);
        }
        // The remainder (main − feeds) on net active energy is the own share.
        let net = |intervals: &[HistoryInterval]| -> i64 {
            intervals
                .iter()
                .map(|i| i.get(Quantity::ImportActive) - i.get(Quantity::ExportActive))
                .sum()
        };
        assert_eq!(net(&main_intervals) - net(&parts[1]) - net(&parts[2]), net(&parts[0]));
    }
}
