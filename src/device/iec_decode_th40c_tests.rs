//! A TH40C readout written by hand as a firmware might print it (full and
//! reduced addresses, several data sets on a line, values padded with
//! spaces, the status words in App. B's spaced form "0000 0101"), decoded
//! by the shipped profile and checked against values worked out by hand.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::iec::IecSettings;
use super::iec_decode::decode_readout;
use super::iec_decode::tests::{shipped_iec, value};
use crate::protocol::iec62056::parse_data_sets;

fn th40c() -> IecSettings {
    shipped_iec("th40c")
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> f64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp() as f64
}

const READOUT: &str = "1-0:0.0.0(40001234)\r\n\
                       0.0.1(00000017)\r\n\
                       1-0:0.0.2(   42)\r\n\
                       F.F.0(0000 0000)F.F.1(0100 0000)F.F.2(0000 0101)\r\n\
                       1-1:31.32.0*1(3)\r\n\
                       31.33.0*1(0047)\r\n\
                       1-1:181.130.0*1(11201405)\r\n\
                       181.150.0*1(2611201452)\r\n\
                       1-1:71.32.0*7(  1)\r\n\
                       1-1:11.32.0*1(7)\r\n\
                       0-0:C.50.47*21(2605031200)\r\n\
                       C.50.47*31(05031230)\r\n\
                       C.50.47*13(30)\r\n\
                       C.50.52*00(2)C.50.52*12(15)\r\n\
                       0-0:C.50.51*03(5)\r\n\
                       C.50.63*22(2609150800)\r\n\
                       C.50.86*00(4)\r\n\
                       !\r\n";

#[test]
fn a_th40c_readout_keeps_identifiers_words_and_every_period_of_its_records() {
    let zone: Tz = "Europe/Rome".parse().unwrap();
    let read_at: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let sets = parse_data_sets(READOUT).unwrap();
    let decoded = decode_readout(&th40c(), &sets, read_at, zone);
    assert!(decoded.invalid.is_empty(), "{:?}", decoded.invalid);
    assert!(decoded.left_out.is_empty(), "{:?}", decoded.left_out);

    // Identifiers, App. A `1-0:0.0.0`…`0.0.2`: a reduced `0.0.1` is the
    // listed general-purpose code, so it keeps the listed 1-0.
    assert_eq!(value(&decoded, "1-0:0.0.0"), Some(40_001_234.0));
    assert_eq!(value(&decoded, "1-0:0.0.1"), Some(17.0));
    assert_eq!(value(&decoded, "1-0:0.0.2"), Some(42.0));

    // F.F.1 "0100 0000": bit 6, missing current (App. B). F.F.2 "0000 0101"
    // is 5, kept as its value: App. B names none of its bits.
    assert_eq!(value(&decoded, "0-0:F.F.1"), Some(64.0));
    assert_eq!(value(&decoded, "0-0:F.F.2"), Some(5.0));
    let conditions: Vec<String> = decoded.conditions.iter().map(|c| c.code.to_string()).collect();
    assert_eq!(conditions, ["missing_current"]);
    let words: Vec<String> = decoded.words_read.iter().map(ToString::to_string).collect();
    assert_eq!(words, ["0-0:F.F.0", "0-0:F.F.1"], "F.F.2 neither sets nor clears");

    // Current loss: reduced electrical codes take 1-1.
    assert_eq!(value(&decoded, "1-1:31.32.0*1"), Some(3.0));
    assert_eq!(value(&decoded, "1-1:31.33.0*1"), Some(47.0));
    assert_eq!(value(&decoded, "1-1:71.32.0*7"), Some(1.0));
    assert_eq!(value(&decoded, "1-1:11.32.0*1"), Some(7.0));
    // 20 November 14:05 and 14:52 in Rome (UTC+1), the first without a
    // year: the latest before the read.
    assert_eq!(value(&decoded, "1-1:181.130.0*1"), Some(utc(2026, 11, 20, 13, 5)));
    assert_eq!(value(&decoded, "1-1:181.150.0*1"), Some(utc(2026, 11, 20, 13, 52)));

    // Voltage loss, period 7: 3 May 12:00-12:30 in Rome (UTC+2).
    assert_eq!(value(&decoded, "0-0:C.50.47*21"), Some(utc(2026, 5, 3, 10, 0)));
    assert_eq!(value(&decoded, "0-0:C.50.47*31"), Some(utc(2026, 5, 3, 10, 30)));
    assert_eq!(value(&decoded, "0-0:C.50.47*13"), Some(30.0));
    // Supply absence numbers its counts 0-2 for L1-L3 and 3 for all. The
    // suffix is a number: `*00` is stored as `*0`, `*03` as `*3`.
    assert_eq!(value(&decoded, "0-0:C.50.52*0"), Some(2.0));
    assert_eq!(value(&decoded, "0-0:C.50.52*12"), Some(15.0));
    assert_eq!(value(&decoded, "0-0:C.50.51*3"), Some(5.0));
    // Unbalance, L2 start, period 3: 15 September 08:00 in Rome.
    assert_eq!(value(&decoded, "0-0:C.50.63*22"), Some(utc(2026, 9, 15, 6, 0)));
    assert_eq!(value(&decoded, "0-0:C.50.86*0"), Some(4.0));
    assert_eq!(decoded.readings.len(), 20);
}

#[test]
fn th40c_periods_and_current_loss_events_are_in_the_profile() {
    let iec = th40c();
    // Every period X = 1..7 of each per-phase item of the C.50 blocks.
    for block in [4, 5, 6] {
        for x in 1..=7 {
            for item in ["21", "22", "23", "31", "32", "33"] {
                let code = format!("0-0:C.50.{block}{x}*{item}").parse().unwrap();
                assert!(iec.value_for(&code).is_some(), "{code}");
            }
        }
    }
    // The totals exist for X = 1 only (App. A).
    assert!(iec.value_for(&"0-0:C.50.42*00".parse().unwrap()).is_none());
    assert!(iec.value_for(&"0-0:C.50.52*03".parse().unwrap()).is_none());
    // Current loss opens events like voltage loss, from the last period.
    for phase in 1..=3 {
        let event = iec
            .events
            .iter()
            .find(|event| event.code.as_str() == format!("current_loss_l{phase}"))
            .unwrap_or_else(|| panic!("current_loss_l{phase}"));
        assert_eq!(event.start.to_string(), format!("1-1:{}.130.0*1", 180 + phase));
        assert_eq!(event.stop.to_string(), format!("1-1:{}.150.0*1", 180 + phase));
    }
    let raw: Vec<_> = iec.status.iter().filter(|word| word.raw_only).collect();
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].obis.to_string(), "0-0:F.F.2");
}
