//! A simulated TH40C: the site's phases ([`super::site`]) integrated into
//! energies, so that every relation a meter guarantees holds: energies
//! never go backwards, rates 1–4 sum to the total (the tariff in force
//! decides which rate grows), phase powers sum to the total, |PF| ≤ 1; plus
//! its demand, billing history, maxima and minima ([`super::statistics`])
//! and clock.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::demand::{DemandLog, DemandMeter, PERIOD_SECONDS, floor_to_period, next_boundary};
use super::model::MeterModel;
use super::site::{Phases, noise, site_phases};
use super::statistics::{self, Extremes, QUANTITIES};
use crate::domain::obis::ObisCode;
use crate::protocol::modbus::frame::Exception;

/// Energy quantities by OBIS group C: ±active, ±reactive, ±apparent.
const ENERGY_GROUPS: [u8; 6] = [1, 2, 3, 4, 9, 10];
/// Longest integration step; longer gaps are integrated in steps.
const STEP_SECONDS: i64 = 60;
/// How far back the initial "this month so far" demand is sampled.
const DEMAND_SAMPLE_DAYS: i64 = 7;

/// Largest clock change a write may make (App. E: "non deve superare i 5 minuti").
const MAX_CLOCK_STEP_SECONDS: i64 = 300;

/// Billing history energies: [0] last month, [1] two months ago; [group][rate].
type EnergySets = [[[f64; 5]; 6]; 2];

/// A simulated TH40C.
#[derive(Debug, Clone)]
pub struct Th40cModel {
    seed: u64,
    /// Zone the meter's clock and tariffs run in.
    pub zone: Tz,
    /// Instant up to which energies are integrated.
    integrated_to: DateTime<Utc>,
    /// [group][rate]: rate 0 is the total, 1–4 the tariff rates. kWh, kvarh, kVAh.
    energy: [[f64; 5]; 6],
    history: EnergySets,
    /// Max demand this period, and the block in progress.
    demand: DemandMeter,
    history_demand: [DemandLog; 2],
    /// Largest and smallest instantaneous values, stamped in meter time.
    extremes: Extremes,
    /// Meter clock minus true time (changed by clock writes).
    pub clock_offset: Duration,
    /// Local day on which the clock was last set (once a day, App. E).
    clock_set_on: Option<NaiveDate>,
    /// Write protection on: every write answers exception 01, "TWO
    /// PROTECT" (App. E).
    pub write_protected: bool,
}

fn group_index(c: u8) -> Option<usize> {
    ENERGY_GROUPS.iter().position(|&g| g == c)
}

/// Keeps the larger of a logged maximum and a new value.
fn raise(log: &mut DemandLog, key: (u8, u8), value: f64, at: DateTime<Utc>) {
    let entry = log.entry(key).or_insert((value, at));
    if value > entry.0 {
        *entry = (value, at);
    }
}

impl Th40cModel {
    pub fn new(seed: u64, zone: Tz, start: DateTime<Utc>) -> Th40cModel {
        let scale = 8_000.0 + 4_000.0 * noise(seed, 1, 0);
        let shares = [0.35, 0.30, 0.20, 0.15];
        let ratios = [1.0, 0.08, 0.35, 0.05, 1.1, 0.1];
        let mut energy = [[0.0; 5]; 6];
        for (g, ratio) in ratios.iter().enumerate() {
            for (r, share) in shares.iter().enumerate() {
                energy[g][r + 1] = scale * ratio * share;
            }
            energy[g][0] = energy[g][1..].iter().sum();
        }
        let mut history = [[[0.0; 5]; 6]; 2];
        for (months, set) in history.iter_mut().enumerate() {
            for g in 0..6 {
                for r in 1..5 {
                    set[g][r] = energy[g][r] * (1.0 - 0.06 * (months as f64 + 1.0));
                }
                set[g][0] = set[g][1..].iter().sum();
            }
        }
        let mut model = Th40cModel {
            seed,
            zone,
            integrated_to: start,
            energy,
            history,
            demand: DemandMeter::new(0, DemandLog::new()),
            history_demand: [DemandLog::new(), DemandLog::new()],
            extremes: Extremes::default(),
            clock_offset: Duration::zero(),
            clock_set_on: None,
            write_protected: false,
        };
        model.seed_demand(start);
        model.seed_extremes(start);
        model
    }

    /// Maxima and minima of a week of quarter-hour samples up to `start`,
    /// and of `start` itself.
    fn seed_extremes(&mut self, start: DateTime<Utc>) {
        let mut at = floor_to_period(start) - Duration::days(DEMAND_SAMPLE_DAYS);
        while at < start {
            self.extremes.sample(self.statistic_values(at), at);
            at += Duration::seconds(PERIOD_SECONDS);
        }
        self.extremes.sample(self.statistic_values(start), start);
    }

    /// The instantaneous values the statistics keep, at `at`.
    fn statistic_values(&self, at: DateTime<Utc>) -> Vec<(u8, f64)> {
        let phases = self.phases(at);
        QUANTITIES
            .iter()
            .filter_map(|&c| self.instantaneous_of(c, &phases, at).map(|value| (c, value)))
            .collect()
    }

    /// Plausible maxima for the billing period so far and the two before:
    /// the period's are the largest quarter-hour samples of the last week
    /// that fall in the current month; the history's are those samples
    /// five and nine weeks earlier (same weekday and hour, so the same rate),
    /// scaled by a seeded factor.
    fn seed_demand(&mut self, start: DateTime<Utc>) {
        let local = start.with_timezone(&self.zone);
        let month_start = self
            .zone
            .with_ymd_and_hms(local.year(), local.month(), 1, 0, 0, 0)
            .earliest()
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or(start);
        let mut current = DemandLog::new();
        let mut sampled = DemandLog::new();
        let mut at = floor_to_period(start);
        let earliest = at - Duration::days(DEMAND_SAMPLE_DAYS);
        while at > earliest {
            let rate = self.tariff(at - Duration::seconds(PERIOD_SECONDS)) as u8;
            let metered = self.phases(at).metered();
            for c in 1..=4u8 {
                let value = metered[usize::from(c) - 1];
                for r in [0, rate] {
                    raise(&mut sampled, (c, r), value, at);
                    if at >= month_start {
                        raise(&mut current, (c, r), value, at);
                    }
                }
            }
            at -= Duration::seconds(PERIOD_SECONDS);
        }
        for (index, weeks) in [5i64, 9].into_iter().enumerate() {
            self.history_demand[index] = sampled
                .iter()
                .map(|(&(c, r), &(value, at))| {
                    let factor = 0.85 + 0.3 * noise(self.seed, u64::from(c) * 10 + u64::from(r), weeks as u64);
                    ((c, r), (value * factor, at - Duration::weeks(weeks)))
                })
                .collect();
        }
        self.demand = DemandMeter::new(self.tariff(floor_to_period(start)) as u8, current);
    }

    /// Tariff in force at a local time: T1 weekday day, T2 weekday evening,
    /// T3 night, T4 weekends. The manual leaves the calendar to the user's
    /// programming; this one is the simulator's default.
    pub fn tariff(&self, at: DateTime<Utc>) -> usize {
        let local = at.with_timezone(&self.zone);
        if local.weekday().number_from_monday() >= 6 {
            return 4;
        }
        match local.hour() {
            8..=18 => 1,
            19..=22 => 2,
            _ => 3,
        }
    }

    /// Instantaneous values at `at` (a pure function of time and seed): see [`site_phases`].
    pub fn phases(&self, at: DateTime<Utc>) -> Phases {
        site_phases(self.seed, self.zone, at)
    }

    /// Integrates energies and demand up to `now`. Never goes backwards: a
    /// clock that moved back leaves the registers where they are.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        while self.integrated_to < now {
            let boundary = next_boundary(self.integrated_to);
            let step_end = (self.integrated_to + Duration::seconds(STEP_SECONDS))
                .min(boundary)
                .min(now);
            let dt = (step_end - self.integrated_to).num_milliseconds() as f64 / 3_600_000.0;
            let middle = self.integrated_to + (step_end - self.integrated_to) / 2;
            let metered = self.phases(middle).metered();
            let rate = self.tariff(middle);
            for (g, power) in metered.iter().enumerate() {
                let added = power * dt;
                self.energy[g][rate] += added;
                self.energy[g][0] += added;
            }
            self.demand
                .add([metered[0] * dt, metered[1] * dt, metered[2] * dt, metered[3] * dt], dt);
            self.integrated_to = step_end;
            self.extremes
                .sample(self.statistic_values(step_end), step_end + self.clock_offset);
            if step_end == boundary {
                self.demand
                    .close(boundary + self.clock_offset, self.tariff(boundary) as u8);
                if self.is_billing_reset(boundary) {
                    self.billing_reset();
                }
            }
        }
        // What is served now is among the statistics, whichever way the
        // clock moved.
        self.extremes
            .sample(self.statistic_values(now), now + self.clock_offset);
    }

    /// Whether `at` is the meter's monthly billing reset: the factory
    /// setting, "il primo giorno di ogni mese alle ore 00:00" (manual,
    /// billing reset), in the meter's zone. Always on a demand-period
    /// boundary, so [`Th40cModel::advance`] stops there. The simulator
    /// resets on true time, not on its clock as offset by clock writes.
    pub fn is_billing_reset(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.zone);
        local.day() == 1 && local.num_seconds_from_midnight() == 0 && at.timestamp_subsec_nanos() == 0
    }

    /// The billing reset: "the energy values and the current maximum
    /// demand are stored as the previous month's values and the
    /// corresponding registers are cleared" (manual, billing reset). The
    /// sets shift (*2 ← *1, *1 ← the registers now); the energies keep
    /// counting, the demand maxima start again from none.
    fn billing_reset(&mut self) {
        self.history[1] = self.history[0];
        self.history[0] = self.energy;
        self.history_demand[1] = std::mem::take(&mut self.history_demand[0]);
        self.history_demand[0] = std::mem::take(&mut self.demand.maxima);
    }

    /// Sets an energy register set (OBIS group C 1, 2, 3, 4, 9 or 10) to the
    /// given rates 1–4; the total becomes their sum. For tests that need a
    /// known value on the wire (the manual's 0.39 kWh). Returns false for a
    /// group that is not an energy.
    pub fn set_energy(&mut self, group: u8, rates: [f64; 4]) -> bool {
        let Some(g) = group_index(group) else { return false };
        self.energy[g][1..].copy_from_slice(&rates);
        self.energy[g][0] = rates.iter().sum();
        true
    }

    /// The engineering value of an OBIS code as the meter shows it at `now`
    /// (call [`Th40cModel::advance`] first), and its capture time if it has one.
    /// Signed powers are given under their import code (negative = export).
    pub fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        let (c, d, e) = (code.quantity()?, code.kind()?, code.tariff()?);
        let billing = code.billing();
        if let (Some((c, maximum)), None, 0) = (statistics::statistic(c, d), billing, e) {
            return self.extremes.get(c, maximum).map(|(value, at)| (value, Some(at)));
        }
        match (d, billing) {
            (8, None) => Some((self.energy[group_index(c)?][usize::from(e).min(4)], None)),
            (8, Some(n @ 1..=2)) => Some((
                self.history[usize::from(n) - 1][group_index(c)?][usize::from(e).min(4)],
                None,
            )),
            (6, None) => {
                // No demand recorded yet this period: 0, and a time stamp of MMDD 0000.
                Some(
                    self.demand
                        .maxima
                        .get(&(c, e))
                        .map(|&(v, at)| (v, Some(at)))
                        .unwrap_or((0.0, None)),
                )
            }
            (6, Some(n @ 1..=2)) => self.history_demand[usize::from(n) - 1]
                .get(&(c, e))
                .map(|&(v, at)| (v, Some(at))),
            (7, None) => self.instantaneous(c, now).map(|v| (v, None)),
            (9, None) => {
                let local = (now + self.clock_offset).with_timezone(&self.zone);
                match e {
                    2 => Some((
                        f64::from((local.year() % 100) as u32 * 10_000 + local.month() * 100 + local.day()),
                        None,
                    )),
                    1 => Some((
                        f64::from(local.hour() * 10_000 + local.minute() * 100 + local.second()),
                        None,
                    )),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn instantaneous(&self, c: u8, now: DateTime<Utc>) -> Option<f64> {
        self.instantaneous_of(c, &self.phases(now), now)
    }

    /// The value of group C among `phases`, the instantaneous values at `now`.
    fn instantaneous_of(&self, c: u8, phases: &Phases, now: DateTime<Utc>) -> Option<f64> {
        let per_phase = |k: usize, p: &Phases| match c {
            32 | 52 | 72 => p.voltage[k],
            31 | 51 | 71 => p.current[k],
            21 | 41 | 61 => p.active[k],
            23 | 43 | 63 => p.reactive[k],
            29 | 49 | 69 => p.apparent[k] * p.active[k].signum(),
            _ => p.power_factor(k),
        };
        Some(match c {
            1 => phases.total_active(),
            3 => phases.total_reactive(),
            9 => phases.total_apparent() * phases.total_active().signum(),
            13 => phases.total_power_factor(),
            14 => statistics::frequency(self.seed, now),
            32 | 31 | 21 | 23 | 29 | 33 => per_phase(0, phases),
            52 | 51 | 41 | 43 | 49 | 53 => per_phase(1, phases),
            72 | 71 | 61 | 63 | 69 | 73 => per_phase(2, phases),
            _ => return None,
        })
    }

    /// Sets the meter's clock so it reads `meter_time` at true time `now`.
    pub fn set_clock(&mut self, meter_time: DateTime<Utc>, now: DateTime<Utc>) {
        self.clock_offset = meter_time - now;
    }

    /// The meter's clock in its zone.
    pub fn meter_time(&self, now: DateTime<Utc>) -> DateTime<Tz> {
        (now + self.clock_offset).with_timezone(&self.zone)
    }

    /// Converts local meter fields to an instant, if they name one.
    pub fn local_instant(
        &self,
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<DateTime<Utc>> {
        self.zone
            .with_ymd_and_hms(year, month, day, hour, minute, second)
            .earliest()
            .map(|at| at.with_timezone(&Utc))
    }
}

impl Th40cModel {
    /// The clock write of App. E: YY MM DD hh mm ss as six bytes in three
    /// registers, once a day and at most 5 minutes away from the meter's
    /// time. A second set the same day answers exception 01 (the manual's
    /// "protect" code for refused writes); a step over 5 minutes or a date
    /// that does not exist, exception 03.
    fn write_clock(&mut self, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        if values.len() != 3 {
            return Err(Exception::IllegalDataValue);
        }
        let bytes: Vec<u32> = values.iter().flat_map(|v| v.to_be_bytes()).map(u32::from).collect();
        let target = self
            .local_instant(2000 + bytes[0] as i32, bytes[1], bytes[2], bytes[3], bytes[4], bytes[5])
            .ok_or(Exception::IllegalDataValue)?;
        let meter_now = self.meter_time(now);
        if self.clock_set_on == Some(meter_now.date_naive()) {
            return Err(Exception::IllegalFunction);
        }
        if (target - meter_now.with_timezone(&Utc)).num_seconds().abs() > MAX_CLOCK_STEP_SECONDS {
            return Err(Exception::IllegalDataValue);
        }
        self.set_clock(target, now);
        self.clock_set_on = Some(self.meter_time(now).date_naive());
        Ok(())
    }
}

impl MeterModel for Th40cModel {
    fn advance(&mut self, now: DateTime<Utc>) {
        Th40cModel::advance(self, now);
    }

    fn value(&self, code: &ObisCode, now: DateTime<Utc>) -> Option<(f64, Option<DateTime<Utc>>)> {
        Th40cModel::value(self, code, now)
    }

    /// `set_clock` (App. E's rules, above) and `set_address` (the device
    /// changes its unit; the meter has nothing to refuse).
    fn command(&mut self, name: &str, values: &[u16], now: DateTime<Utc>) -> Result<(), Exception> {
        if self.write_protected {
            return Err(Exception::IllegalFunction);
        }
        match name {
            "set_clock" => self.write_clock(values, now),
            "set_address" => Ok(()),
            _ => Err(Exception::IllegalDataAddress),
        }
    }

    fn zone(&self) -> Tz {
        self.zone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ObisCode {
        text.parse().unwrap()
    }

    fn value(model: &Th40cModel, text: &str, now: DateTime<Utc>) -> f64 {
        model.value(&code(text), now).unwrap().0
    }

    #[test]
    fn a_write_protected_meter_answers_exception_01_to_every_write() {
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 6, 0, 0).unwrap();
        let mut model = Th40cModel::new(7, Tz::UTC, now);
        model.write_protected = true;
        // 26-11-20 06:01:00, a minute ahead: a set the meter would take.
        let clock = [0x1A0B, 0x1406, 0x0100];
        assert_eq!(
            MeterModel::command(&mut model, "set_clock", &clock, now),
            Err(Exception::IllegalFunction)
        );
        assert_eq!(model.clock_offset, Duration::zero());
        model.write_protected = false;
        assert_eq!(MeterModel::command(&mut model, "set_clock", &clock, now), Ok(()));
        assert_eq!(model.clock_offset, Duration::minutes(1));
    }

    #[test]
    fn energies_grow_and_rates_sum_to_the_total() {
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 6, 0, 0).unwrap();
        let now = start + Duration::hours(30);
        let mut model = Th40cModel::new(7, Tz::UTC, start);
        let before: Vec<f64> = ENERGY_GROUPS
            .iter()
            .map(|c| value(&model, &format!("1-1:{c}.8.0"), start))
            .collect();
        model.advance(now);
        for (c, before) in ENERGY_GROUPS.iter().zip(before) {
            let total = value(&model, &format!("1-1:{c}.8.0"), now);
            let rates: f64 = (1..=4).map(|r| value(&model, &format!("1-1:{c}.8.{r}"), now)).sum();
            assert!((total - rates).abs() < 1e-9 * total, "group {c}: {total} vs {rates}");
            // Over a day every register grows: phase C exports at midday and
            // phase B is capacitive at night.
            assert!(total > before, "group {c} grew from {before} to {total}");
            for billing in 1..=2 {
                assert!(value(&model, &format!("1-1:{c}.8.0*{billing}"), now) < total);
            }
        }
    }

    #[test]
    fn every_site_exports_on_one_phase_at_noon() {
        let noon = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        for seed in 0..50 {
            let phases = Th40cModel::new(seed, Tz::UTC, noon).phases(noon);
            assert!(phases.active[2] < 0.0, "seed {seed}: phase C exports");
            assert!(phases.active[0] > 0.0 && phases.active[1] > 0.0);
            assert!(phases.power_factor(2) < 0.0);
        }
    }

    #[test]
    fn every_site_exports_active_energy_around_noon_and_reactive_at_night() {
        for seed in 0..50 {
            let model = Th40cModel::new(seed, Tz::UTC, Utc::now());
            let at = |hour, minute| Utc.with_ymd_and_hms(2026, 6, 1, hour, minute, 0).unwrap();
            for minute in [0, 20, 40] {
                assert!(
                    model.phases(at(12, minute)).total_active() < 0.0,
                    "seed {seed}: exports at noon"
                );
                assert!(
                    model.phases(at(3, minute)).total_reactive() < 0.0,
                    "seed {seed}: leading at night"
                );
            }
            // Evenings and early mornings import, lagging.
            for hour in [6, 19, 22] {
                let p = model.phases(at(hour, 0));
                assert!(
                    p.total_active() > 0.0 && p.total_reactive() > 0.0,
                    "seed {seed} at {hour}h"
                );
            }
        }
    }

    #[test]
    fn phases_add_up_and_power_factor_is_bounded() {
        let model = Th40cModel::new(3, Tz::UTC, Utc::now());
        for hour in 0..24 {
            let at = Utc.with_ymd_and_hms(2026, 6, 1, hour, 17, 0).unwrap();
            let p = model.phases(at);
            let total = value(&model, "1-1:1.7.0", at);
            assert!((total - p.active.iter().sum::<f64>()).abs() < 1e-9);
            let reactive = value(&model, "1-1:3.7.0", at);
            assert!((reactive - p.reactive.iter().sum::<f64>()).abs() < 1e-9);
            assert!(value(&model, "1-1:13.7.0", at).abs() <= 1.0);
            for k in 0..3 {
                assert!(p.power_factor(k).abs() <= 1.0);
                let s = (p.active[k].powi(2) + p.reactive[k].powi(2)).sqrt();
                assert!((s - p.apparent[k]).abs() < 1e-9);
                assert!((220.0..240.0).contains(&p.voltage[k]));
            }
        }
    }

    #[test]
    fn demand_is_a_quarter_hour_average_stamped_in_meter_time() {
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        let mut model = Th40cModel::new(11, Tz::UTC, start);
        // A fresh model already has this month's maxima, on quarter hours,
        // each one no later than now and no earlier than the 1st.
        for c in 1..=4 {
            for r in 0..=4 {
                let (_, at) = model.value(&code(&format!("1-1:{c}.6.{r}")), start).unwrap();
                let at = at.expect("stamped");
                assert!(at <= start && at.day() >= 1 && at.month() == 11, "{c}.6.{r} at {at}");
                assert_eq!(at.minute() % 15, 0);
            }
        }
        model.advance(start + Duration::days(2));
        let (total, at) = model.value(&code("1-1:1.6.0"), start).unwrap();
        let rates = (1..=4)
            .map(|r| value(&model, &format!("1-1:1.6.{r}"), start))
            .fold(0.0, f64::max);
        assert_eq!(total, rates, "the total maximum is the largest rate maximum");
        assert_eq!(at.unwrap().minute() % 15, 0);
    }

    #[test]
    fn the_history_shifts_at_midnight_on_the_first_in_the_meters_zone() {
        let zone: Tz = "Europe/Rome".parse().unwrap();
        // 1 December 00:00 in Rome (UTC+1) is 30 November 23:00 UTC.
        let reset = Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap();
        let start = reset - Duration::hours(5);
        let mut model = Th40cModel::new(5, zone, start);
        model.advance(reset - Duration::minutes(1));
        let last_month = value(&model, "1-1:1.8.0*1", start);
        let (demand, demand_at) = model.value(&code("1-1:1.6.0"), start).unwrap();
        assert!(demand > 0.0);
        // The same meter, stopped exactly at the reset: what the sets take.
        let mut at_reset = model.clone();
        at_reset.advance(reset);
        model.advance(reset + Duration::hours(2));
        let now = reset + Duration::hours(2);
        for c in ENERGY_GROUPS {
            for r in 0..=4 {
                let current = value(&at_reset, &format!("1-1:{c}.8.{r}"), reset);
                assert_eq!(value(&model, &format!("1-1:{c}.8.{r}*1"), now), current, "{c}.8.{r}");
            }
        }
        assert_eq!(value(&model, "1-1:1.8.0*2", now), last_month);
        // The month's maximum moved to *1: the one seen a minute before the
        // reset, or the month's last block (ending at the reset) if larger.
        let (moved, moved_at) = model.value(&code("1-1:1.6.0*1"), now).unwrap();
        if moved == demand {
            assert_eq!(moved_at, demand_at);
        } else {
            assert!(moved > demand);
            assert_eq!(moved_at, Some(reset));
        }
        // The new month has only what the two hours since gave.
        let (_, new_at) = model.value(&code("1-1:1.6.0"), now).unwrap();
        assert!(new_at.unwrap() > reset);
        // No reset a minute later or on another day.
        assert!(!model.is_billing_reset(reset + Duration::minutes(15)));
        assert!(!model.is_billing_reset(reset + Duration::days(1)));
    }

    #[test]
    fn maxima_and_minima_bound_what_is_served_and_happened_before_it() {
        let start = Utc.with_ymd_and_hms(2026, 11, 20, 6, 0, 0).unwrap();
        let zone: Tz = "Europe/Rome".parse().unwrap();
        let mut model = Th40cModel::new(9, zone, start);
        // (maximum, minimum, instantaneous) codes; the powers' extremes are
        // D = 16 / 13, the instantaneous S is signed by P's direction.
        let rows = [
            ("1-1:32.6.0", "1-1:32.3.0", "1-1:32.7.0"),
            ("1-1:52.6.0", "1-1:52.3.0", "1-1:52.7.0"),
            ("1-1:72.6.0", "1-1:72.3.0", "1-1:72.7.0"),
            ("1-1:31.6.0", "1-1:31.3.0", "1-1:31.7.0"),
            ("1-1:51.6.0", "1-1:51.3.0", "1-1:51.7.0"),
            ("1-1:71.6.0", "1-1:71.3.0", "1-1:71.7.0"),
            ("1-1:1.16.0", "1-1:1.13.0", "1-1:1.7.0"),
            ("1-1:3.16.0", "1-1:3.13.0", "1-1:3.7.0"),
            ("1-1:9.16.0", "1-1:9.13.0", "1-1:9.7.0"),
            ("1-1:13.6.0", "1-1:13.3.0", "1-1:13.7.0"),
            ("1-1:14.6.0", "1-1:14.3.0", "1-1:14.7.0"),
        ];
        let mut seen_export = false;
        for minutes in [0, 7, 95, 6 * 60, 30 * 60 + 11] {
            let now = start + Duration::minutes(minutes);
            model.advance(now);
            for (max, min, instant) in rows {
                let (high, high_at) = model.value(&code(max), now).unwrap();
                let (low, low_at) = model.value(&code(min), now).unwrap();
                let value = value(&model, instant, now);
                assert!(
                    low <= value && value <= high,
                    "{instant} at {now}: {low} <= {value} <= {high}"
                );
                for at in [high_at.unwrap(), low_at.unwrap()] {
                    assert!(at <= now && at > start - Duration::days(8), "{max}/{min} at {at}");
                    assert_eq!(at.timestamp_subsec_nanos(), 0, "whole seconds");
                }
            }
            seen_export |= model.value(&code("1-1:1.13.0"), now).unwrap().0 < 0.0;
        }
        assert!(seen_export, "a PV site's active power minimum is an export");
        // A meter clock set ahead stamps in its own time.
        let now = start + Duration::hours(31);
        model.set_clock(now + Duration::minutes(3), now);
        let later = now + Duration::minutes(1);
        model.advance(later);
        let (high, _) = model.value(&code("1-1:32.6.0"), later).unwrap();
        assert!(high >= value(&model, "1-1:32.7.0", later));
    }

    #[test]
    fn a_known_energy_can_be_set() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut model = Th40cModel::new(1, Tz::UTC, start);
        assert!(model.set_energy(1, [0.39, 0.0, 0.0, 0.0]));
        assert_eq!(value(&model, "1-1:1.8.0", start), 0.39);
        assert!(!model.set_energy(13, [0.0; 4]));
    }
}
