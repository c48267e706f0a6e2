//! A simulated IEC 62056-21 meter: its configuration, its energy history,
//! its billing resets and clock, and its load profile
//! ([`IecMeter::load_profile`]); what it answers by OBIS address is in
//! [`super::codes`].

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::{OffsetComponents, Tz};

use super::history::{EnergyHistory, INTERVAL_SECONDS, Quantity};
use super::kind::{BILLING_SETS, IecKind, ProfileChannel};
use crate::protocol::iec62056::{LoadProfileBlock, ProfileRequest};
use crate::sim::site::noise;

/// How one simulated meter is set up.
#[derive(Debug, Clone)]
pub struct IecMeterConfig {
    pub kind: IecKind,
    /// Device address a sign-on must name (`/?ADDR!`).
    pub address: String,
    /// Password of the P1 exchange in programming mode: any other is
    /// answered NAK (a test changes it to have the meter refuse).
    pub password: String,
    pub seed: u64,
    /// Zone of the meter clock (stamps, tariffs, billing resets).
    pub zone: Tz,
    /// Monthly billing reset: day 1–28 (A1000 manual 1.5) and hour 0–23.
    pub billing_day: u32,
    pub billing_hour: u32,
    /// Baud rate character of the identification (mode C: `0`–`6`).
    pub baud_char: u8,
    /// ERR2 / F.F.0 error bits (A1000 App. B): none by default; set e.g.
    /// `0x40` for a low battery.
    pub error_bits: u8,
    /// `F.F.0` as the meter writes it when not its error bits as 8 binary
    /// digits (a test makes a firmware that writes it otherwise, e.g. hex).
    pub error_word_text: Option<String>,
    /// How many billing sets the readout prints, newest first: all 16 the
    /// A1000 keeps, the TH40C's last two; fewer for a meter programmed to
    /// a shorter readout. Every set stays readable by its own address.
    pub readout_sets: u32,
    /// Seeds of the meters downstream of this one (its sub-meters, in the
    /// same zone): a main meter carries their load on top of its own
    /// seed's, which is then the share no sub-meter measures
    /// ([`EnergyHistory::with_feeds`]). Empty by default.
    pub feeds: Vec<u64>,
    /// Addresses whose write makes a reset ([`super::programming`]).
    /// Neither manual gives the address or value of a reset over the
    /// port, so none by default: a test names one for the meter and for
    /// the profile it drives it with.
    pub reset_writes: Vec<ResetWrite>,
    /// The meter number its `0.0.0` shows, when not its address (a test
    /// swaps the meter at an address by changing it).
    pub serial: Option<String>,
    /// Writes the readout's addresses without groups A-B (`1.8.0`,
    /// `0.1.2*101`, `F.F.0`), as IEC 62056-21 lets a meter; off by default.
    pub reduced_addresses: bool,
    /// Prints the phase voltages and currents (`32.7.0`, `31.7.0`, …) on an
    /// A1000 too, a firmware printing more than its manual's App. A lists;
    /// the TH40C prints them always. Off by default.
    pub phase_values: bool,
    /// Prints, on an A1000, what its display lists beyond its App. A,
    /// under the codes IEC 62056-61 gives those quantities: apparent
    /// energy by tariff (`9.8.0`–`9.8.4`) and reactive import and export
    /// (`3.8.0`, `4.8.0`), each with its billing sets, and the reactive
    /// and apparent maximum demands with their times (`3.6.0`, `4.6.0`,
    /// `9.6.0`, Q1–Q4 `5.6.0`–`8.6.0`). Off by default: the manual gives
    /// no code for them.
    pub display_extras: bool,
    /// The load profile as the meter is programmed, when not as it leaves
    /// the factory: its channels (the TH40C may record up to 22 of a list
    /// of quantities, TH40C manual §2) and its period in quarter hours (the
    /// manual allows 1–120 min; the simulator's history is kept in quarter
    /// hours). `None`: the kind's own ([`IecKind::profile_channels`], 15 min).
    pub programmed_profile: Option<ProgrammedProfile>,
    /// Days of load profile the meter keeps, back from its clock's now:
    /// older intervals are overwritten (A1000 manual, 1.6: 128 kB of load
    /// profile in ring mode). A request for a range older than that is
    /// answered with no record. `None`: all of its history
    /// ([`super::history::HISTORY_DAYS`]).
    pub profile_days: Option<u32>,
    /// Spans `[start, end)` the meter was without power (or its profile
    /// otherwise stopped): it recorded no interval starting in one, so its
    /// load profile has a hole there that no request fills. Only the
    /// profile: the registers still follow the history.
    pub profile_outages: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// Prints its energy registers on the meter's digits, rolling over to
    /// zero past the top; `None`: on six whole digits and three decimals,
    /// counted from zero at the start of its history (no rollover within
    /// it).
    pub energy_digits: Option<EnergyDigits>,
    /// TH40C `F.F.2` bits ("Registro di warning 2", App. A; App. B names
    /// none of them): none by default.
    pub warning2_bits: u8,
    /// What `0.0.1` and `0.0.2` show (TH40C App. A "Identificativo 1" and
    /// "2"; the manual gives no form): the meter number its `0.0.0` shows
    /// by default.
    pub identifiers: [Option<String>; 2],
}

/// A load profile set up otherwise than at the factory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammedProfile {
    pub channels: Vec<ProfileChannel>,
    /// Quarter hours a period holds (2: 30 minutes).
    pub quarters: u32,
}

/// The digits an energy register is shown on, and where it stands when
/// the simulator starts: past 10^(digits − decimals) it rolls over to
/// zero, as the A1000's do past 99 999.99 kWh or 999 999.9 kWh (A1000
/// manual 1.1, item 5) and the TH40C's past its eight digits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyDigits {
    /// Digits, decimals included.
    pub digits: u8,
    pub decimals: u8,
    /// What the total active import register (`1.8.0`) shows at the
    /// start, in kWh; every energy register is moved by the same amount,
    /// each rolling over on its own.
    pub import_at_start: f64,
}

impl EnergyDigits {
    /// The A1000's first form, 99 999.99 kWh, with its import register
    /// `import_at_start`.
    pub fn a1000(import_at_start: f64) -> EnergyDigits {
        EnergyDigits {
            digits: 7,
            decimals: 2,
            import_at_start,
        }
    }

    /// Where the register rolls over, in Wh.
    fn top_wh(&self) -> i64 {
        10i64.pow(u32::from(self.digits.saturating_sub(self.decimals))) * 1000
    }

    /// The register's text for `wh` counted since its history began,
    /// moved by `shift_wh`: the units the counter has turned (whole
    /// hundredths for two decimals), from zero again past the top.
    pub fn text(&self, wh: i64, shift_wh: i64) -> String {
        let decimals = u32::from(self.decimals.min(3));
        let shown = (wh + shift_wh).rem_euclid(self.top_wh()) / 10i64.pow(3 - decimals);
        let width = usize::from(self.digits);
        let digits = format!("{shown:0width$}");
        match decimals {
            0 => digits,
            _ => {
                let (whole, fraction) = digits.split_at(digits.len() - decimals as usize);
                format!("{whole}.{fraction}")
            }
        }
    }
}

/// A write that makes a reset: any value written to `address` in field
/// programming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetWrite {
    pub address: String,
    pub reset: Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Closes the billing period as the monthly reset does.
    Billing,
    /// Clears the maximum demand of the current period.
    Demand,
}

impl IecMeterConfig {
    /// Defaults: address = the meter number (12 digits from the seed),
    /// password `00000000`, reset on the 1st at 00:00, 9600 baud (`5`), UTC.
    pub fn new(kind: IecKind, seed: u64) -> IecMeterConfig {
        IecMeterConfig {
            kind,
            address: format!("{:012}", (noise(seed, 41, 0) * 1e12) as u64),
            password: "00000000".into(),
            seed,
            zone: Tz::UTC,
            billing_day: 1,
            billing_hour: 0,
            baud_char: b'5',
            error_bits: 0,
            error_word_text: None,
            readout_sets: match kind {
                IecKind::A1000 => BILLING_SETS,
                IecKind::Th40c => 2,
            },
            feeds: Vec::new(),
            reset_writes: Vec::new(),
            serial: None,
            reduced_addresses: false,
            phase_values: false,
            display_extras: false,
            programmed_profile: None,
            profile_days: None,
            profile_outages: Vec::new(),
            energy_digits: None,
            warning2_bits: 0,
            identifiers: [None, None],
        }
    }
}

impl IecMeterConfig {
    /// The meter number its `0.0.0` shows.
    pub fn meter_number(&self) -> String {
        self.serial.clone().unwrap_or_else(|| self.address.clone())
    }
}

/// A simulated meter.
#[derive(Debug, Clone)]
pub struct IecMeter {
    pub config: IecMeterConfig,
    history: EnergyHistory,
    /// Meter clock minus true time, changed by `W1 0.9.1`/`0.9.2`.
    pub clock_offset: Duration,
    /// When someone at the meter held the button that starts field
    /// programming ("PRG"), if they did: it lasts
    /// [`IecKind::field_programming_window`] from then.
    pub(super) field_programming_from: Option<DateTime<Utc>>,
    /// The meter answers NAK to every password (a test's switch).
    pub refuse_password: bool,
    /// The fault it shows once signed on to, if any (a test's switch).
    pub fault: Option<super::fault::IecFault>,
    /// Billing resets made by a write, besides the monthly ones.
    pub(super) manual_resets: Vec<DateTime<Utc>>,
    /// The last demand reset made by a write.
    pub(super) demand_reset_at: Option<DateTime<Utc>>,
    /// How many passwords (`P1`) it was sent, right or wrong.
    pub password_attempts: u32,
    /// Load-profile requests it still answers before it falls silent (the
    /// `Silent` fault), if limited: a test's switch for a meter lost in the
    /// middle of a backfill.
    pub profile_answers_left: Option<u32>,
    /// The meter answers `(ERROR)` to its logbook (`P.98`), as one that
    /// keeps none would (a test's switch).
    pub no_logbook: bool,
    /// How many logbook reads (`P.98`) it was sent.
    pub logbook_requests: u32,
    /// The meter answers `(ERROR)` to a load-profile range that ends before
    /// the oldest interval it keeps, as some firmware does instead of an
    /// answer without records (a test's switch), and counts those answers.
    pub refuse_old_ranges: bool,
    pub old_ranges_refused: u32,
    /// What its energy registers show beyond the energy of its history,
    /// in Wh ([`EnergyDigits::import_at_start`]).
    pub(super) register_shift_wh: i64,
}

/// The instant a request's bound names: UTC for season 2, else the
/// meter's local time.
fn profile_bound(meter: &IecMeter, time: &crate::protocol::iec62056::ProfileTime) -> DateTime<Utc> {
    if time.season == 2 {
        time.time.and_utc()
    } else {
        meter.instant(time.time)
    }
}

/// The start of the period of length `period` (a divisor of a day) that
/// holds `at`, counted from midnight UTC.
fn period_start(at: DateTime<Utc>, period: Duration) -> i64 {
    at.timestamp().div_euclid(period.num_seconds().max(1))
}

impl IecMeter {
    /// A meter whose history reaches back from `start` (the simulator clock's now).
    pub fn new(config: IecMeterConfig, start: DateTime<Utc>) -> IecMeter {
        let mut history = EnergyHistory::with_feeds(config.seed, &config.feeds, config.zone, start);
        let register_shift_wh = config.energy_digits.map_or(0, |digits| {
            // Registers are far below 2^53 Wh: the rounding is exact.
            #[allow(clippy::cast_possible_truncation)]
            let shown = (digits.import_at_start * 1000.0).round() as i64;
            shown - history.register_wh(Quantity::ImportActive, 0, start)
        });
        IecMeter {
            history,
            register_shift_wh,
            config,
            clock_offset: Duration::zero(),
            field_programming_from: None,
            refuse_password: false,
            fault: None,
            manual_resets: Vec::new(),
            demand_reset_at: None,
            password_attempts: 0,
            profile_answers_left: None,
            no_logbook: false,
            logbook_requests: 0,
            refuse_old_ranges: false,
            old_ranges_refused: 0,
        }
    }

    pub fn history(&mut self) -> &mut EnergyHistory {
        &mut self.history
    }

    pub fn kind(&self) -> IecKind {
        self.config.kind
    }

    /// The meter's local time for a true instant.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.config.zone).naive_local()
    }

    /// A local time of the meter clock as an instant (the earlier one in a
    /// DST fold; a time in a DST gap moves an hour on).
    pub fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let zone = self.config.zone;
        zone.from_local_datetime(&local)
            .earliest()
            .or_else(|| zone.from_local_datetime(&(local + Duration::hours(1))).earliest())
            .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
    }

    /// Billing resets up to `now`, monthly and made by a write, latest
    /// first (`[0]` is set 1, the reset that started the current period),
    /// at most `count`.
    pub fn resets(&self, now: DateTime<Utc>, count: u32) -> Vec<DateTime<Utc>> {
        let local = self.local(now);
        let (mut year, mut month) = (local.year(), local.month());
        // Out-of-range settings would never match a date: keep them valid.
        let day = self.config.billing_day.clamp(1, 28);
        let hour = self.config.billing_hour.min(23);
        let mut found: Vec<DateTime<Utc>> = self.manual_resets.iter().copied().filter(|at| *at <= now).collect();
        let mut monthly = 0;
        while monthly < count as usize {
            let at = chrono::NaiveDate::from_ymd_opt(year, month, day)
                .and_then(|day| day.and_hms_opt(hour, 0, 0))
                .map(|t| self.instant(t));
            if let Some(at) = at.filter(|at| *at <= now) {
                found.push(at);
                monthly += 1;
            }
            (year, month) = if month == 1 { (year - 1, 12) } else { (year, month - 1) };
        }
        found.sort_unstable_by(|a, b| b.cmp(a));
        found.truncate(count as usize);
        found
    }

    /// Billing reset `k` (1 = latest).
    pub fn reset(&self, k: u32, now: DateTime<Utc>) -> DateTime<Utc> {
        self.resets(now, k)[k as usize - 1]
    }

    /// Energy register `c.8.rate` at `at` as the meter prints it: on its
    /// digits, rolled over past their top ([`IecMeterConfig::energy_digits`]).
    pub fn energy_text(&mut self, c: u8, rate: u8, at: DateTime<Utc>) -> Option<String> {
        let wh = self.energy_wh(c, rate, at)?;
        Some(match self.config.energy_digits {
            Some(digits) => digits.text(wh, self.register_shift_wh),
            None => format!("{:010.3}", wh as f64 / 1000.0),
        })
    }

    /// The energy counted into register `c.8.rate` from the start of the
    /// history to `at`, in kWh (kvarh, kVAh).
    pub fn energy_at(&mut self, c: u8, rate: u8, at: DateTime<Utc>) -> Option<f64> {
        Some(self.energy_wh(c, rate, at)? as f64 / 1000.0)
    }

    fn energy_wh(&mut self, c: u8, rate: u8, at: DateTime<Utc>) -> Option<i64> {
        let quantities = Quantity::for_obis_c(c)?;
        Some(quantities.iter().map(|q| self.history.register_wh(*q, rate, at)).sum())
    }

    /// The history set index an address suffix names: A1000 `*101`…`*116`
    /// (manual App. A), TH40C `*1`…`*16` (TH40C §2.3 in `docs/PROTOCOLS.md`; `*16` tolerated).
    pub(super) fn billing_index(&self, suffix: u32) -> Option<u32> {
        let k = match self.config.kind {
            IecKind::A1000 => suffix.checked_sub(100)?,
            IecKind::Th40c => suffix,
        };
        (1..=BILLING_SETS).contains(&k).then_some(k)
    }

    /// The demand period that history set `k` closed (`None`: the current
    /// one, from the later of the last billing and demand resets):
    /// `(after, until]`.
    pub(super) fn demand_period(&self, k: Option<u32>, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let resets = self.resets(now, k.unwrap_or(0) + 1);
        match k {
            None => (
                self.demand_reset_at.filter(|at| *at > resets[0]).unwrap_or(resets[0]),
                now,
            ),
            Some(k) => (resets[k as usize], resets[k as usize - 1]),
        }
    }

    /// Maximum demand of `c` in `rate` over a period: W and its stamp.
    pub(super) fn max_demand(
        &mut self,
        c: u8,
        rate: u8,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> Option<(i64, DateTime<Utc>)> {
        let quantities = Quantity::for_obis_c(c)?;
        self.history.max_demand(quantities, rate, period.0, period.1)
    }

    /// Meter time now (true time plus the offset clock writes made).
    pub fn clock(&self, now: DateTime<Utc>) -> NaiveDateTime {
        self.local(now + self.clock_offset)
    }

    /// Season character of a profile stamp: 0 normal time, 1 summer time.
    pub(super) fn season(&self, at: DateTime<Utc>) -> u8 {
        let offset = self.config.zone.offset_from_utc_datetime(&at.naive_utc());
        u8::from(!offset.dst_offset().is_zero())
    }

    /// The start of the oldest interval a meter keeping `days` of load
    /// profile still holds at `now`: the first interval boundary at or
    /// after `days` before.
    pub fn profile_oldest(&self, days: u32, now: DateTime<Utc>) -> DateTime<Utc> {
        let back = now - Duration::days(i64::from(days));
        let step = INTERVAL_SECONDS;
        let offset = (back - self.history.epoch()).num_seconds().max(0);
        self.history.epoch() + Duration::seconds((offset + step - 1) / step * step)
    }

    /// The answer to `R5 P.01(from;to)`: the intervals whose end stamp lies
    /// in the range (empty bounds: oldest / newest), one block per season,
    /// channels as [`IecKind::profile_channels`] lists them.
    /// Whether the meter answers `(ERROR)` to `request`
    /// ([`IecMeter::refuse_old_ranges`]): a range that ends before its
    /// oldest kept interval. Counted.
    pub fn refuses_range(&mut self, request: &ProfileRequest, now: DateTime<Utc>) -> bool {
        let refused = self.refuse_old_ranges
            && request
                .to
                .as_ref()
                .is_some_and(|to| profile_bound(self, to) <= self.oldest_kept(now));
        self.old_ranges_refused += u32::from(refused);
        refused
    }

    /// The start of the oldest interval of load profile it keeps at `now`.
    fn oldest_kept(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.config
            .profile_days
            .map_or(self.history.epoch(), |days| self.profile_oldest(days, now))
    }

    pub fn load_profile(&mut self, request: &ProfileRequest, now: DateTime<Utc>) -> Vec<LoadProfileBlock> {
        let bound = |meter: &IecMeter, time: &Option<crate::protocol::iec62056::ProfileTime>, default| {
            time.as_ref().map_or(default, |t| profile_bound(meter, t))
        };
        let oldest = self.oldest_kept(now);
        // Whole intervals from the oldest kept one on.
        let from = bound(self, &request.from, oldest).max(oldest + Duration::seconds(1));
        let to = bound(self, &request.to, now);
        let (channels, quarters) = match &self.config.programmed_profile {
            Some(programmed) => (programmed.channels.clone(), programmed.quarters.max(1)),
            None => (self.config.kind.profile_channels().to_vec(), 1),
        };
        let period = Duration::seconds(INTERVAL_SECONDS * i64::from(quarters));
        let mut blocks: Vec<LoadProfileBlock> = Vec::new();
        let mut intervals = self.history.intervals(from, to, now);
        let outages = &self.config.profile_outages;
        intervals.retain(|interval| {
            !outages
                .iter()
                .any(|(start, end)| (*start..*end).contains(&interval.start))
        });
        // Whole periods, aligned on the hour as the meter's are.
        let periods = intervals
            .chunk_by(|a, b| period_start(a.start, period) == period_start(b.start, period))
            .filter(|chunk| chunk.len() == quarters as usize);
        for chunk in periods {
            let end = chunk[chunk.len() - 1].end();
            let season = self.season(end);
            let row = channels.iter().map(|channel| Some(channel.value(chunk))).collect();
            match blocks.last_mut() {
                Some(block) if block.season == season && block.row_time(block.rows.len()) == Some(self.local(end)) => {
                    block.rows.push(row);
                }
                _ => blocks.push(LoadProfileBlock {
                    profile: 1,
                    start: self.local(end),
                    season,
                    status: "00".into(),
                    period_minutes: (period.num_seconds() / 60) as u32,
                    channels: channels
                        .iter()
                        .map(|channel| (channel.obis.to_owned(), channel.unit.to_owned()))
                        .collect(),
                    rows: vec![row],
                }),
            }
        }
        blocks
    }
}
