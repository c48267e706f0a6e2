//! Checks of the profile loader and request planner against the TH40C map.

use super::profile::{Profile, RegisterGroup};
use super::registry::ProfileSet;

const MINIMAL: &str = r#"
name = "tiny"
manufacturer = "Test"
model = "T1"
description = "two registers"
[modbus]
max_registers_per_request = 4
[[registers]]
address = 0x0010
type = "f32"
unit = "kWh"
obis = "1-1:1.8.0"
group = "energy"
name = "Energy"
[[registers]]
address = 0x0012
type = "f32"
unit = "kW"
obis = "1-1:1.7.0"
group = "energy"
name = "Power"
"#;

fn refusal(text: &str) -> String {
    Profile::parse("tiny.toml", text).unwrap_err().to_string()
}

#[test]
fn th40c_covers_the_head_end_registers_of_the_manual() {
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let codes: Vec<String> = profile
        .registers
        .iter()
        .flat_map(|r| std::iter::once(&r.obis).chain(r.obis_negative.as_ref()))
        .map(ToString::to_string)
        .collect();
    // Current, last-month and two-months-ago energies: 6 quantities × 5 rates × 3 periods.
    for quantity in [1, 2, 3, 4, 9, 10] {
        for rate in 0..=4 {
            for suffix in ["", "*1", "*2"] {
                let code = format!("1-1:{quantity}.8.{rate}{suffix}");
                assert!(codes.contains(&code), "missing {code}");
            }
        }
    }
    // Instantaneous values per phase and total, date and time.
    for code in [
        "1-1:32.7.0",
        "1-1:71.7.0",
        "1-1:1.7.0",
        "1-1:2.7.0",
        "1-1:63.7.0",
        "1-1:13.7.0",
        "1-1:69.7.0",
        "1-0:0.9.1",
        "1-0:0.9.2",
    ] {
        assert!(codes.contains(&code.to_owned()), "missing {code}");
    }
    // Units follow the quantity (OBIS group C), as the manual's section 2 names them.
    for register in &profile.registers {
        let expected = match (register.obis.quantity(), register.obis.kind()) {
            (Some(1 | 2), Some(8)) => "kWh",
            (Some(3 | 4), Some(8)) => "kvarh",
            (Some(9 | 10), Some(8)) => "kVAh",
            (Some(1 | 2), Some(6)) if !register.value_type.is_timestamp_part() => "kW",
            (Some(3 | 4), Some(6)) if !register.value_type.is_timestamp_part() => "kvar",
            (Some(32 | 52 | 72), Some(7)) => "V",
            (Some(31 | 51 | 71), Some(7)) => "A",
            (Some(1 | 21 | 41 | 61), Some(7)) => "kW",
            (Some(3 | 23 | 43 | 63), Some(7)) => "kvar",
            (Some(9 | 29 | 49 | 69), Some(7)) => "kVA",
            (Some(13 | 33 | 53 | 73), Some(7)) => "",
            _ => continue,
        };
        assert_eq!(register.unit.as_str(), expected, "{}", register.name);
    }
    // Every demand value has both halves of its time stamp.
    let demands = profile
        .registers
        .iter()
        .filter(|r| r.obis.kind() == Some(6) && r.value_type.width() == 2)
        .count();
    let stamps = profile
        .registers
        .iter()
        .filter(|r| r.value_type.is_timestamp_part())
        .count();
    assert_eq!(demands, 60);
    assert_eq!(stamps, 120);
}

#[test]
fn blocks_follow_the_gaps_of_the_map() {
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let realtime = profile.blocks(RegisterGroup::Realtime);
    let starts: Vec<u16> = realtime.iter().map(|b| b.start).collect();
    // 0x1040-0x1045 clock; the six instantaneous runs of App. G.
    assert_eq!(starts, vec![0x1040, 0xA612, 0xA622, 0xA630, 0xA640, 0xA650, 0xA660]);
    assert_eq!(realtime[0].count, 6);
    assert_eq!(realtime[1].count, 6);
    assert_eq!(realtime[3].count, 8);
    let energy = profile.blocks(RegisterGroup::Energy);
    let first = energy.iter().find(|b| b.start == 0x8010).unwrap();
    assert_eq!(first.count, 10, "0x801A-0x801F are not in the map");
    // Every register is read exactly once.
    let mut covered: Vec<usize> = RegisterGroup::ALL
        .iter()
        .flat_map(|&g| profile.blocks(g))
        .flat_map(|b| b.registers)
        .collect();
    covered.sort();
    assert_eq!(covered, (0..profile.registers.len()).collect::<Vec<_>>());
}

#[test]
fn blocks_respect_the_request_limit() {
    let profile = Profile::parse("tiny.toml", MINIMAL).unwrap();
    assert_eq!(profile.blocks(RegisterGroup::Energy).len(), 1);
    let tighter = MINIMAL.replace("max_registers_per_request = 4", "max_registers_per_request = 3");
    let profile = Profile::parse("tiny.toml", &tighter).unwrap();
    let blocks = profile.blocks(RegisterGroup::Energy);
    assert_eq!(
        blocks.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(),
        vec![(0x10, 2), (0x12, 2)]
    );
}

#[test]
fn malformed_profiles_name_file_field_and_reason() {
    let error = refusal(&MINIMAL.replace("\"1-1:1.7.0\"", "\"1-1:1.7\""));
    assert!(error.starts_with("profile tiny.toml: line 19:"), "{error}");
    assert!(error.contains("expected three groups"), "{error}");

    let error = refusal(&MINIMAL.replace("unit = \"kW\"", "unit = \"kwatt\""));
    assert!(error.contains("unknown unit \"kwatt\""), "{error}");

    let error = refusal(&MINIMAL.replace("address = 0x0012", "address = 0x0011"));
    assert!(error.contains("registers[1] (Power).address"), "{error}");
    assert!(error.contains("overlaps Energy"), "{error}");

    let error = refusal(&MINIMAL.replace("\"1-1:1.7.0\"", "\"1-1:1.8.0\""));
    assert!(
        error.contains("registers[1] (Power).obis: 1-1:1.8.0 is already given"),
        "{error}"
    );

    let error = refusal(&MINIMAL.replace("max_registers_per_request = 4", "max_registers_per_request = 200"));
    assert!(
        error.contains("modbus.max_registers_per_request: must be 1-125"),
        "{error}"
    );

    let error = refusal(&MINIMAL.replace("type = \"f32\"\nunit = \"kW\"", "type = \"float\"\nunit = \"kW\""));
    assert!(error.contains("unknown variant `float`"), "{error}");

    let error = refusal(&MINIMAL.replace(
        "group = \"energy\"\nname = \"Power\"",
        "group = \"energy\"\nname = \"Power\"\ncolour = \"red\"",
    ));
    assert!(error.contains("unknown field `colour`"), "{error}");
}

#[test]
fn a_time_stamp_needs_its_value() {
    let text = format!(
        "{MINIMAL}\n[[registers]]\naddress = 0x0020\ntype = \"mmdd\"\nobis = \"1-1:1.6.0\"\ngroup = \"energy\"\nname = \"Demand date\"\n"
    );
    let error = refusal(&text);
    assert!(
        error.contains("registers[2] (Demand date).obis: time stamp for 1-1:1.6.0"),
        "{error}"
    );
}

#[test]
fn a_directory_profile_replaces_the_shipped_one() {
    let dir = std::env::temp_dir().join(format!("ohmnibus-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tiny.toml"), MINIMAL).unwrap();
    let set = ProfileSet::load(Some(&dir)).unwrap();
    assert!(set.get("tiny").is_some());
    assert!(set.get("th40c").is_some());
    std::fs::write(dir.join("broken.toml"), "name = 3").unwrap();
    let error = ProfileSet::load(Some(&dir)).unwrap_err().to_string();
    assert!(error.contains("broken.toml"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
