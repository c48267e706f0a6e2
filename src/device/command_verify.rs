//! How a command's write is checked on the device, as its profile says:
//! which registers are read before and after it and what they must show
//! (`verify` of a `[modbus.commands.NAME]`), and the rules the head-end
//! keeps for the meter before it writes at all (`max_change_s`,
//! `once_per_day` of a clock write). The rules are the head-end's: a meter
//! that would refuse a write is not sent it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::decode::decode_blocks;
use super::driver::clock::meter_clock;
use super::profile::{Block, Profile};
use super::write_rules::{ClockRule, Expect, Verify, VerifyMode};
use crate::domain::job::JobErrorCode;

/// The registers read around a write of `count` registers at `address`,
/// or the reason none are.
pub fn registers(verify: &Verify, address: u16, count: u16) -> Result<(u16, u16, Expect), &str> {
    match verify {
        Verify::Mode(VerifyMode::ReadBack) => Ok((address, count, Expect::Written)),
        Verify::Skip { none } => Err(none),
        Verify::Read(read) => Ok((read.address, read.count, read.expect)),
    }
}

/// The meter's wall time from `words` read at `start`, decoded through the
/// profile's date and time registers that lie in the range.
pub fn clock_of(profile: &Profile, start: u16, words: &[u16], zone: Tz) -> Option<NaiveDateTime> {
    let end = u32::from(start) + words.len() as u32;
    let registers: Vec<usize> = profile
        .registers
        .iter()
        .enumerate()
        .filter(|(_, register)| register.address >= start && register.end() <= end)
        .map(|(index, _)| index)
        .collect();
    let block = Block {
        start,
        count: words.len() as u16,
        registers,
        optional: false,
    };
    let (readings, _) = decode_blocks(profile, &[(&block, words)], DateTime::UNIX_EPOCH, zone);
    meter_clock(&readings)
}

/// Whether what was read after the write (`after`; `before` it) shows that
/// it took; else what is wrong, as an engineer reads it.
pub fn check(
    expect: Expect,
    within_s: Option<u32>,
    written: &[u16],
    before: &[u16],
    after: &[u16],
    clock: impl Fn(&[u16]) -> Option<NaiveDateTime>,
    now_local: NaiveDateTime,
) -> Result<(), String> {
    match expect {
        Expect::Written if after == written => Ok(()),
        Expect::Written => Err(format!("wrote {written:?}, read back {after:?}")),
        Expect::Zero if after.iter().all(|&word| word == 0) => Ok(()),
        Expect::Zero => Err(format!("expected zero after the reset, read {after:?}")),
        Expect::Decreased => {
            let number = |words: &[u16]| words.iter().fold(0u128, |n, &w| (n << 16) | u128::from(w));
            if number(after) < number(before) || number(after) == 0 {
                Ok(())
            } else {
                Err(format!("expected less than {before:?} after the reset, read {after:?}"))
            }
        }
        Expect::Clock => {
            let shown = clock(after).ok_or_else(|| format!("the clock read back {after:?} is not a date and time"))?;
            let off = (shown - now_local).num_seconds().unsigned_abs();
            let within = u64::from(within_s.unwrap_or(0));
            if off <= within {
                Ok(())
            } else {
                Err(format!(
                    "the clock reads {shown} after the set, {off} s from the server's {now_local} (at most {within} s)"
                ))
            }
        }
        Expect::Answers => Ok(()),
    }
}

/// Whether the clock may be set now: `meter` is what the meter's clock
/// showed, `now` the server's time, `last_set` the latest set that
/// succeeded (`None`: never). Times in the meter's zone `zone`.
pub fn check_clock_rule(
    rule: ClockRule,
    meter: NaiveDateTime,
    now: DateTime<Utc>,
    zone: Tz,
    last_set: Option<DateTime<Utc>>,
) -> Result<(), (JobErrorCode, String)> {
    let local_now = now.with_timezone(&zone).naive_local();
    let today: NaiveDate = meter.date();
    if rule.once_per_day
        && let Some(set) = last_set.map(|set| set.with_timezone(&zone).naive_local())
        && (set.date() == today || set.date() == local_now.date())
    {
        return Err((
            JobErrorCode::ClockSetToday,
            format!("the clock was already set today ({set}); the meter takes one set a day, nothing was written"),
        ));
    }
    if let Some(max) = rule.max_change_s {
        let off = (local_now - meter).num_seconds();
        if off.unsigned_abs() > u64::from(max) {
            let direction = if off < 0 { "ahead of" } else { "behind" };
            return Err((
                JobErrorCode::ClockTooFar,
                format!(
                    "the meter's clock ({meter}) is {} s {direction} the server's ({local_now}); \
                     the meter takes at most {max} s of change over the bus, nothing was written",
                    off.unsigned_abs()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 20)
            .unwrap()
            .and_hms_opt(h, m, s)
            .unwrap()
    }

    const RULE: ClockRule = ClockRule {
        max_change_s: Some(300),
        once_per_day: true,
    };

    #[test]
    fn a_clock_within_five_minutes_may_be_set_once_a_day() {
        // Server 10:00:00 in Rome (UTC+1 in November) is 09:00:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let rome = Tz::Europe__Rome;
        assert!(check_clock_rule(RULE, at(9, 55, 0), now, rome, None).is_ok());
        assert!(check_clock_rule(RULE, at(10, 5, 0), now, rome, None).is_ok());
        let (code, _) = check_clock_rule(RULE, at(9, 54, 59), now, rome, None).unwrap_err();
        assert_eq!(code, JobErrorCode::ClockTooFar);
        // Set yesterday 23:30 local (22:30 UTC): today is another day.
        let yesterday = Utc.with_ymd_and_hms(2026, 11, 19, 22, 30, 0).unwrap();
        assert!(check_clock_rule(RULE, at(10, 0, 0), now, rome, Some(yesterday)).is_ok());
        // Set at 00:10 local today (23:10 UTC the day before).
        let today = Utc.with_ymd_and_hms(2026, 11, 19, 23, 10, 0).unwrap();
        let (code, _) = check_clock_rule(RULE, at(10, 0, 0), now, rome, Some(today)).unwrap_err();
        assert_eq!(code, JobErrorCode::ClockSetToday);
    }

    #[test]
    fn what_is_read_back_is_compared_as_the_profile_says() {
        let none = |_: &[u16]| None;
        let now = at(10, 0, 0);
        assert!(check(Expect::Written, None, &[3], &[1], &[3], none, now).is_ok());
        assert_eq!(
            check(Expect::Written, None, &[3], &[1], &[1], none, now).unwrap_err(),
            "wrote [3], read back [1]"
        );
        assert!(check(Expect::Zero, None, &[0x20], &[0, 9], &[0, 0], none, now).is_ok());
        assert!(check(Expect::Decreased, None, &[0x20], &[1, 0], &[0, 0xFFFF], none, now).is_ok());
        assert!(check(Expect::Decreased, None, &[0x20], &[0, 5], &[0, 5], none, now).is_err());
        let clock = |_: &[u16]| Some(at(10, 0, 9));
        assert!(check(Expect::Clock, Some(10), &[], &[], &[1], clock, now).is_ok());
        assert!(check(Expect::Clock, Some(8), &[], &[], &[1], clock, now).is_err());
    }
}
