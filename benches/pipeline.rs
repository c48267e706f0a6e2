//! Throughput of the read path's hot steps: decoding a TH40C's Modbus
//! answers and an A1000's IEC 62056-21 readout and load profile into
//! readings and intervals. Storing them is `benches/ingest.rs`.
//!
//! Run: `cargo bench --bench pipeline`. Figures: docs/BENCHMARKS.md.

mod common;

use std::time::Duration;

use common::measure;

use chrono::Utc;
use chrono_tz::Tz;
use ohmnibus::device::decode::decode_blocks;
use ohmnibus::device::profile::RegisterGroup;
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::device::value_type::ValueType;

/// An A1000's readout text and 40 days of its load profile, as the
/// simulator sends them, parsed and decoded as the IEC bus worker does.
fn iec_benchmark() {
    use chrono::TimeDelta;
    use ohmnibus::device::iec_decode::decode_readout;
    use ohmnibus::device::iec_load_profile::{intervals_from_blocks, profile_request};
    use ohmnibus::protocol::iec62056::{format_data_sets, format_load_profile, parse_data_sets, parse_load_profile};
    use ohmnibus::sim::iec62056::session::readout_sets;
    use ohmnibus::sim::iec62056::{IecKind, IecMeter, IecMeterConfig};

    let now = Utc::now();
    let zone = Tz::UTC;
    let iec = ProfileSet::builtin()
        .get("a1000")
        .and_then(|p| p.iec62056.clone())
        .expect("a1000 profile");
    let settings = iec.load_profile.clone().expect("a1000 load profile");
    let mut meter = IecMeter::new(IecMeterConfig::new(IecKind::A1000, 1), now);
    let text = format_data_sets(&readout_sets(&mut meter, now)).expect("readout text");
    let mut count = 0;
    let per_readout = measure(Duration::from_secs(2), || {
        let sets = parse_data_sets(&text).expect("readout parses");
        count = decode_readout(&iec, &sets, now, zone).readings.len();
    });
    println!(
        "parse and decode an A1000 readout ({} bytes -> {count} readings): {per_readout:?}",
        text.len()
    );
    let request = profile_request(&settings, now - TimeDelta::days(40), None, zone);
    let profile = format_load_profile(&meter.load_profile(&request, now)).expect("profile text");
    let per_profile = measure(Duration::from_secs(3), || {
        let blocks = parse_load_profile(&profile).expect("profile parses");
        count = intervals_from_blocks(&settings, &blocks, zone).0.len();
    });
    println!(
        "parse 40 days of an A1000 load profile ({} kB -> {count} intervals): {per_profile:?}",
        profile.len() / 1024
    );
}

fn decode_benchmark() {
    let profile = ProfileSet::builtin().get("th40c").expect("th40c profile");
    let zone: Tz = "Europe/Rome".parse().expect("zone");
    for group in RegisterGroup::ALL {
        let blocks = profile.blocks(group);
        // Plausible words for every register, encoded as the device would.
        let words: Vec<Vec<u16>> = blocks
            .iter()
            .map(|block| {
                block
                    .registers
                    .iter()
                    .flat_map(|&index| {
                        let register = &profile.registers[index];
                        let raw = match register.value_type {
                            ValueType::DateYmd => 261_122.0,
                            ValueType::TimeHms => 123_456.0,
                            ValueType::Mmdd => 1_122.0,
                            ValueType::Hhmm => 1_230.0,
                            _ => 1_234.5,
                        };
                        register.value_type.encode(raw, profile.word_order(register))
                    })
                    .collect()
            })
            .collect();
        let answers: Vec<_> = blocks.iter().zip(&words).map(|(b, w)| (b, w.as_slice())).collect();
        let per_call = measure(Duration::from_secs(2), || {
            let (readings, _) = decode_blocks(&profile, &answers, Utc::now(), zone);
            std::hint::black_box(readings);
        });
        let (readings, _) = decode_blocks(&profile, &answers, Utc::now(), zone);
        println!(
            "decode th40c {:<8} {:>3} requests -> {:>3} readings: {:>8.1} µs per poll",
            group.as_str(),
            blocks.len(),
            readings.len(),
            per_call.as_secs_f64() * 1e6
        );
    }
}

fn main() {
    iec_benchmark();
    decode_benchmark();
}
