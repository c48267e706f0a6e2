//! A meter's load profile (IEC 62056-21 `P.01`, EMH style) in the head-end's
//! terms: the request for a time range, and the answer's rows as intervals
//! of the channels the device profile names.
//!
//! Time: the meter writes local time with a season character
//! (`device::iec_time`). Each row's stamp is the END of its interval, as
//! EMH meters write it: the row stamped 10:15 holds the energy of
//! 10:00–10:15.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;

use super::iec::LoadProfileSettings;
use super::iec_decode::{known_unit, unit_factor};
use super::iec_time::{instant_of, meter_time};
use super::profile_interval::Interval;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::domain::unit::Unit;
use crate::protocol::iec62056::{LoadProfileBlock, ProfileRequest};

/// The request for the intervals from `from` to `to` (the newest when
/// none). Bounds are taken back to interval boundaries: meters take whole
/// minutes.
pub fn profile_request(
    settings: &LoadProfileSettings,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    zone: Tz,
) -> ProfileRequest {
    let step = TimeDelta::minutes(i64::from(settings.interval_minutes));
    let bound = |at: DateTime<Utc>| meter_time(at.duration_trunc(step).unwrap_or(at), zone);
    ProfileRequest {
        profile: settings.profile,
        from: Some(bound(from)),
        to: to.map(bound),
    }
}

/// The intervals of an answer, channel by channel as each block's header
/// states them: its channels (up to the TH40C's 22, any order), their
/// units and its period (1–120 min; TH40C manual §2, "Registrazione del
/// profilo di carico"). A channel the profile lists keeps the profile's
/// unit, converted from the header's (`W` to `kW`); another is stored under
/// its code in the header's unit when Ohmnibus knows it. A `D = 5` channel
/// is average power (kW, kvar) and stays so: a statement turns it into
/// energy by the interval's length. Returns the intervals and what could
/// not be taken (a block whose period is out of range, a channel whose code
/// or unit is unknown, a stamp that is no instant); empty values (`()`)
/// are gaps, not zeros, and are left out.
pub fn intervals_from_blocks(
    settings: &LoadProfileSettings,
    blocks: &[LoadProfileBlock],
    zone: Tz,
) -> (Vec<Interval>, Vec<String>) {
    let mut intervals = Vec::new();
    let mut problems = Vec::new();
    for block in blocks {
        if !(1..=MAX_PERIOD_MINUTES).contains(&block.period_minutes) {
            problems.push(format!(
                "block from {}: period {} min is outside 1-{MAX_PERIOD_MINUTES}",
                block.start, block.period_minutes
            ));
            continue;
        }
        let channels: Vec<Option<HeaderChannel>> = block
            .channels
            .iter()
            .map(|(code, unit)| {
                let channel = header_channel(settings, code, unit);
                if let Err(reason) = &channel {
                    problems.push(format!("block from {}: channel {code}: {reason}", block.start));
                }
                channel.ok()
            })
            .collect();
        let minutes = block.period_minutes;
        let period = TimeDelta::minutes(i64::from(minutes));
        for (index, row) in block.rows.iter().enumerate() {
            let Some(stamp) = block.row_time(index) else {
                problems.push(format!(
                    "row {} of the block from {} is stamped past the calendar's end",
                    index + 1,
                    block.start
                ));
                break;
            };
            let Some(end) = instant_of(stamp, block.season, zone) else {
                problems.push(format!(
                    "row stamped {stamp} (season {}) is no instant in {zone}",
                    block.season
                ));
                continue;
            };
            for (channel, value) in channels.iter().zip(row) {
                let (Some(channel), Some(value)) = (channel, value.filter(|v| v.is_finite())) else {
                    continue;
                };
                intervals.push(Interval {
                    obis: channel.obis.clone(),
                    start: end - period,
                    minutes,
                    value: value * channel.factor,
                    unit: channel.unit,
                    meter_status: block.status.clone(),
                    quality: Quality::GOOD,
                });
            }
        }
    }
    (intervals, problems)
}

/// The longest capture period a meter may state (TH40C: 1–120 minutes).
pub const MAX_PERIOD_MINUTES: u32 = 120;

/// A header's channel as stored: its code, unit, and the factor from the
/// header's unit to it.
struct HeaderChannel {
    obis: ObisCode,
    unit: Unit,
    factor: f64,
}

fn header_channel(settings: &LoadProfileSettings, code: &str, unit: &str) -> Result<HeaderChannel, String> {
    let obis = channel_code(code).ok_or_else(|| "not an OBIS code".to_owned())?;
    let listed = settings.channels.iter().find(|channel| channel.obis == obis);
    let (unit, factor) = match listed {
        Some(channel) if unit.is_empty() => (channel.unit, 1.0),
        Some(channel) => (
            channel.unit,
            unit_factor(unit, channel.unit)
                .ok_or_else(|| format!("unit {unit:?} does not convert to the profile's {}", channel.unit))?,
        ),
        None => (
            known_unit(unit).ok_or_else(|| format!("unit {unit:?} is not one Ohmnibus knows"))?,
            1.0,
        ),
    };
    Ok(HeaderChannel { obis, unit, factor })
}

/// A channel's code as the header writes it, full or reduced (`1.29.0`,
/// or `1.5` as the TH40C manual names its channels).
fn channel_code(text: &str) -> Option<ObisCode> {
    let text = text.trim();
    let full = if text.contains(':') {
        text.to_owned()
    } else {
        format!("1-1:{text}")
    };
    full.parse()
        .ok()
        .or_else(|| (text.matches('.').count() == 1).then(|| format!("{full}.0").parse().ok())?)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn th40c_settings() -> LoadProfileSettings {
        let profile = crate::device::registry::ProfileSet::builtin().get("th40c").unwrap();
        profile.iec62056.as_ref().unwrap().load_profile.clone().unwrap()
    }

    #[test]
    fn the_header_says_which_channels_and_period_a_block_holds() {
        // A TH40C reprogrammed to 30-minute intervals of three channels
        // (TH40C manual §2: up to 22 channels, 1-120 min), written as its
        // manual names them (`1.5`), one in W, one the profile does not
        // list, one in a unit no meter uses, at 10:00 and 10:30 UTC+1.
        let text = "P.01(0261101100000)(00)(30)(4)(1.5)(kW)(2.5)(W)(23.5)(kvar)(1.29)(parsec)\r\n\
                    (12.5)(250)(1.25)(7)\r\n\
                    (10.0)()(0.75)(7)\r\n";
        let blocks = crate::protocol::iec62056::parse_load_profile(text).unwrap();
        let rome: Tz = "Europe/Rome".parse().unwrap();
        let (intervals, problems) = intervals_from_blocks(&th40c_settings(), &blocks, rome);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("channel 1.29") && problems[0].contains("parsec"),
            "{problems:?}"
        );
        let got: Vec<(String, DateTime<Utc>, u32, f64, Unit)> = intervals
            .iter()
            .map(|i| (i.obis.to_string(), i.start, i.minutes, i.value, i.unit))
            .collect();
        // Stamps are the interval's end: 10:00 local (09:00 UTC) ends 08:30-09:00 UTC.
        let utc = |h, m| Utc.with_ymd_and_hms(2026, 11, 1, h, m, 0).unwrap();
        assert_eq!(
            got,
            vec![
                ("1-1:1.5.0".into(), utc(8, 30), 30, 12.5, Unit::KW),
                ("1-1:2.5.0".into(), utc(8, 30), 30, 0.25, Unit::KW),
                ("1-1:23.5.0".into(), utc(8, 30), 30, 1.25, Unit::KVar),
                ("1-1:1.5.0".into(), utc(9, 0), 30, 10.0, Unit::KW),
                ("1-1:23.5.0".into(), utc(9, 0), 30, 0.75, Unit::KVar),
            ]
        );
    }

    #[test]
    fn a_period_out_of_range_leaves_its_block_out() {
        let text = "P.01(0261110100000)(00)(121)(1)(1.5)(kW)\r\n(1.0)\r\n";
        let blocks = crate::protocol::iec62056::parse_load_profile(text).unwrap();
        let (intervals, problems) = intervals_from_blocks(&th40c_settings(), &blocks, Tz::UTC);
        assert!(intervals.is_empty());
        assert!(problems[0].contains("period 121 min"), "{problems:?}");
    }

    #[test]
    fn requests_start_on_an_interval_boundary_in_meter_time() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        let settings = LoadProfileSettings {
            profile: 1,
            format: super::super::iec::LoadProfileFormat::Emh,
            interval_minutes: 15,
            backfill_days: 40,
            chunk_days: 2,
            channels: Vec::new(),
        };
        // 10:07:31 UTC in July is 12:07:31 CEST: the request starts at 12:00, summer.
        let at = |month, day| Utc.with_ymd_and_hms(2026, month, day, 10, 7, 31).unwrap();
        let request = profile_request(&settings, at(7, 1), None, rome);
        assert_eq!(request.encode().unwrap(), "P.01(12607011200;)");
        let request = profile_request(&settings, at(1, 1), Some(at(1, 3)), rome);
        assert_eq!(request.encode().unwrap(), "P.01(02601011100;02601031100)");
    }
}
