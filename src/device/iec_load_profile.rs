//! A meter's load profile (IEC 62056-21 `P.01`, EMH style) in the head-end's
//! terms: the request for a time range, and the answer's rows as intervals
//! of the channels the device profile names.
//!
//! Time: the meter writes local time with a season character (0 normal,
//! 1 summer, 2 UTC; `docs/PROTOCOLS.md`, "Load profile, EMH style"). Each row's stamp is the END
//! of its interval, as EMH meters write it: the row stamped 10:15 holds the
//! energy of 10:00–10:15.

use chrono::{DateTime, DurationRound, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::{OffsetComponents, Tz};

use super::iec::LoadProfileSettings;
use super::profile_interval::Interval;
use crate::domain::obis::ObisCode;
use crate::domain::quality::Quality;
use crate::protocol::iec62056::{LoadProfileBlock, ProfileRequest, ProfileTime};

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

/// An instant as the meter writes it: local time and its season.
pub fn meter_time(at: DateTime<Utc>, zone: Tz) -> ProfileTime {
    let local = at.with_timezone(&zone);
    let summer = !local.offset().dst_offset().is_zero();
    ProfileTime {
        season: u8::from(summer),
        time: local.naive_local(),
    }
}

/// The instant a meter's stamp names. In the autumn's repeated hour the
/// season tells the two apart; where the season contradicts the zone (a
/// meter that always writes 0) the local time decides. A stamp in the
/// spring's missing hour is no instant.
pub fn instant_of(stamp: NaiveDateTime, season: u8, zone: Tz) -> Option<DateTime<Utc>> {
    if season == 2 {
        return Some(Utc.from_utc_datetime(&stamp));
    }
    let local = zone.from_local_datetime(&stamp);
    let candidates = [local.earliest(), local.latest()];
    let summer = season == 1;
    candidates
        .iter()
        .flatten()
        .find(|at| at.offset().dst_offset().is_zero() != summer)
        .or(candidates[0].as_ref())
        .map(|at| at.with_timezone(&Utc))
}

/// The intervals of an answer, channel by channel as the device profile
/// names them. Returns the intervals and what could not be taken (a block
/// whose channels or period differ from the profile's, a stamp that is no
/// instant); empty values (`()`) are gaps, not zeros, and are left out.
pub fn intervals_from_blocks(
    settings: &LoadProfileSettings,
    blocks: &[LoadProfileBlock],
    zone: Tz,
) -> (Vec<Interval>, Vec<String>) {
    let mut intervals = Vec::new();
    let mut problems = Vec::new();
    for block in blocks {
        if block.period_minutes != settings.interval_minutes {
            problems.push(format!(
                "block from {}: period {} min, the profile says {}",
                block.start, block.period_minutes, settings.interval_minutes
            ));
            continue;
        }
        let sent: Vec<Option<ObisCode>> = block.channels.iter().map(|(code, _)| channel_code(code)).collect();
        let expected: Vec<Option<ObisCode>> = settings.channels.iter().map(|c| Some(c.obis.clone())).collect();
        if sent != expected {
            problems.push(format!(
                "block from {}: channels {:?}, the profile says {:?}",
                block.start,
                block.channels.iter().map(|(code, _)| code).collect::<Vec<_>>(),
                settings.channels.iter().map(|c| c.obis.to_string()).collect::<Vec<_>>()
            ));
            continue;
        }
        let period = TimeDelta::minutes(i64::from(settings.interval_minutes));
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
            for (channel, value) in settings.channels.iter().zip(row) {
                let Some(value) = value.filter(|v| v.is_finite()) else {
                    continue;
                };
                intervals.push(Interval {
                    obis: channel.obis.clone(),
                    start: end - period,
                    minutes: settings.interval_minutes,
                    value,
                    unit: channel.unit,
                    meter_status: block.status.clone(),
                    quality: Quality::GOOD,
                });
            }
        }
    }
    (intervals, problems)
}

/// A channel's code as the header writes it, full or reduced (`1.29.0`).
fn channel_code(text: &str) -> Option<ObisCode> {
    if text.contains(':') {
        return text.parse().ok();
    }
    format!("1-1:{text}").parse().ok()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn local(day: u32, month: u32, hour: u32, minute: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, month, day)
            .unwrap()
            .and_hms_opt(hour, minute, 0)
            .unwrap()
    }

    #[test]
    fn the_season_tells_the_repeated_autumn_hour_apart() {
        let rome: Tz = "Europe/Rome".parse().unwrap();
        // 25 October 2026: clocks go back at 03:00 CEST to 02:00 CET, so
        // 02:30 happens twice: 00:30 UTC in summer time, 01:30 UTC after.
        let summer = instant_of(local(25, 10, 2, 30), 1, rome).unwrap();
        let winter = instant_of(local(25, 10, 2, 30), 0, rome).unwrap();
        assert_eq!(summer, Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
        assert_eq!(winter, Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap());
        // 29 March 2026: 02:30 does not exist in Rome.
        assert_eq!(instant_of(local(29, 3, 2, 30), 0, rome), None);
        // Season 2 is UTC whatever the zone.
        assert_eq!(
            instant_of(local(1, 7, 12, 0), 2, rome),
            Some(Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap())
        );
        // A meter that writes 0 all year: local time decides.
        assert_eq!(
            instant_of(local(1, 7, 12, 0), 0, rome),
            Some(Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 0).unwrap())
        );
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
