//! Field programming of a simulated meter: the "PRG" window someone at
//! the meter opens with its button, and the writes it takes while open.
//!
//! Both manuals accept programming only in PRG (A1000 manual 2.1.1 and
//! 2.2.1; TH40C §3.1 and §4.1); PRG ends when the button is pushed again or
//! after [`IecKind::field_programming_window`] (4 minutes for the A1000, 10
//! for the TH40C) on the simulator's clock. Reads, the password and load
//! profiles work as before outside PRG; a write outside it is refused with
//! `(ERROR)` and changes nothing. Neither manual says what the meter
//! answers: `(ERROR)` is the refusal IEC 62056-21 meters commonly send
//! (`docs/PROTOCOLS.md`, "Data sets").
//!
//! [`IecKind::field_programming_window`]: super::IecKind::field_programming_window

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::model::{IecMeter, Reset};

/// What the meter answers a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAnswer {
    /// ACK: the write is done.
    Done,
    /// `(ERROR)`: not in PRG, an unknown address or a bad value.
    Refused,
}

impl IecMeter {
    /// Someone at the meter holds the button at `at` (now, or a later
    /// simulated time): PRG shows from then for the meter's window.
    pub fn open_field_programming(&mut self, at: DateTime<Utc>) {
        self.field_programming_from = Some(at);
    }

    /// The button pushed again: PRG ends.
    pub fn close_field_programming(&mut self) {
        self.field_programming_from = None;
    }

    /// Whether the display shows PRG at `now`.
    pub fn in_field_programming(&self, now: DateTime<Utc>) -> bool {
        self.field_programming_from
            .is_some_and(|from| from <= now && now < from + self.kind().field_programming_window())
    }

    /// Billing resets made by a write, oldest first.
    pub fn manual_resets(&self) -> &[DateTime<Utc>] {
        &self.manual_resets
    }

    /// A write `address(value)` at `now`: the clock (`0.9.1(hhmmss)`,
    /// `0.9.2(YYMMDD)`, with or without `1-0:`) or a reset the meter's
    /// configuration names, and only in PRG.
    pub fn write(&mut self, data: &str, now: DateTime<Utc>) -> WriteAnswer {
        if !self.in_field_programming(now) {
            return WriteAnswer::Refused;
        }
        let Some((address, value)) = data
            .split_once('(')
            .and_then(|(address, rest)| Some((address, rest.strip_suffix(')')?)))
        else {
            return WriteAnswer::Refused;
        };
        if let Some(reset) = self
            .config
            .reset_writes
            .iter()
            .find(|write| write.address == address)
            .map(|write| write.reset)
        {
            match reset {
                Reset::Billing => self.manual_resets.push(now),
                Reset::Demand => self.demand_reset_at = Some(now),
            }
            return WriteAnswer::Done;
        }
        if self.set_clock(address, value, now) {
            WriteAnswer::Done
        } else {
            WriteAnswer::Refused
        }
    }

    /// Moves the meter clock so it shows the written time (or date) now.
    fn set_clock(&mut self, address: &str, value: &str, now: DateTime<Utc>) -> bool {
        let shown = self.clock(now);
        let wanted = match address.rsplit(':').next() {
            Some("0.9.1") => NaiveTime::parse_from_str(value, "%H%M%S")
                .ok()
                .map(|t| shown.date().and_time(t)),
            Some("0.9.2") => NaiveDate::parse_from_str(&format!("20{value}"), "%Y%m%d")
                .ok()
                .map(|d| d.and_time(shown.time())),
            _ => None,
        };
        let Some(wanted) = wanted else { return false };
        self.clock_offset += wanted - shown;
        true
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::sim::iec62056::model::{IecMeterConfig, ResetWrite};
    use crate::sim::iec62056::{IecKind, IecMeter};

    fn now() -> DateTime<Utc> {
        "2026-03-14T10:20:30Z".parse().unwrap()
    }

    fn meter(kind: IecKind) -> IecMeter {
        let mut config = IecMeterConfig::new(kind, 5);
        config.reset_writes = vec![
            ResetWrite {
                address: "9.9.1".into(),
                reset: Reset::Billing,
            },
            ResetWrite {
                address: "9.9.2".into(),
                reset: Reset::Demand,
            },
        ];
        IecMeter::new(config, now())
    }

    #[test]
    fn prg_lasts_four_minutes_on_the_a1000_and_ten_on_the_th40c() {
        for (kind, minutes) in [(IecKind::A1000, 4), (IecKind::Th40c, 10)] {
            let mut meter = meter(kind);
            let at = now() + Duration::minutes(1);
            assert!(!meter.in_field_programming(now()));
            meter.open_field_programming(at);
            assert!(!meter.in_field_programming(now()), "opens later");
            assert!(meter.in_field_programming(at));
            assert!(meter.in_field_programming(at + Duration::minutes(minutes) - Duration::seconds(1)));
            assert!(!meter.in_field_programming(at + Duration::minutes(minutes)), "{kind:?}");
            meter.open_field_programming(now());
            meter.close_field_programming();
            assert!(!meter.in_field_programming(now()));
        }
    }

    #[test]
    fn writes_outside_prg_change_nothing() {
        let mut meter = meter(IecKind::A1000);
        assert_eq!(meter.write("0.9.1(080000)", now()), WriteAnswer::Refused);
        assert_eq!(meter.write("9.9.1(1)", now()), WriteAnswer::Refused);
        assert_eq!(meter.clock_offset, Duration::zero());
        assert!(meter.manual_resets().is_empty());
        meter.open_field_programming(now());
        // 10:20:30 shown, 08:00:00 written: the clock goes 2:20:30 back.
        assert_eq!(meter.write("1-0:0.9.1(080000)", now()), WriteAnswer::Done);
        assert_eq!(meter.clock_offset, -Duration::seconds(2 * 3600 + 20 * 60 + 30));
        assert_eq!(meter.write("0.9.1(256000)", now()), WriteAnswer::Refused);
        assert_eq!(meter.write("7.7.7(1)", now()), WriteAnswer::Refused);
    }

    #[test]
    fn a_billing_reset_closes_the_period_and_a_demand_reset_clears_the_maximum() {
        let mut meter = meter(IecKind::A1000);
        let before = meter.resets(now(), 2);
        // The 1st at 00:00 is the last monthly reset.
        assert_eq!(before[0], "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let count = meter.value("0-0:0.1.0", now()).unwrap()[0].value.clone();
        let energy = meter.register_at("1-1:1.8.0", now()).unwrap();
        meter.open_field_programming(now());
        assert_eq!(meter.write("9.9.1(1)", now()), WriteAnswer::Done);
        let later = now() + Duration::minutes(1);
        assert_eq!(meter.resets(later, 2), [now(), before[0]]);
        let count_after = meter.value("0-0:0.1.0", later).unwrap()[0].value.clone();
        assert_eq!(count_after.parse::<u32>().unwrap(), count.parse::<u32>().unwrap() + 1);
        // Set *101 holds the registers at the reset.
        assert_eq!(meter.register_at("1-1:1.8.0*101", later), Some(energy));
        // No whole demand interval since the reset: the maximum is zero.
        assert_eq!(meter.register_at("1-1:1.6.0", later), Some(0.0));

        let mut meter = self::meter(IecKind::Th40c);
        assert!(meter.register_at("1-1:1.6.0", now()).unwrap() > 0.0);
        meter.open_field_programming(now());
        assert_eq!(meter.write("9.9.2(0)", now()), WriteAnswer::Done);
        assert_eq!(meter.register_at("1-1:1.6.0", now()), Some(0.0));
        assert_eq!(meter.resets(now(), 1)[0], before[0], "the billing period goes on");
    }
}
