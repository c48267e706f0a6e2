//! Checks of the profile loader and request planner against the TH40C map.

use super::profile::Profile;
use super::register_group::RegisterGroup;
use super::registry::ProfileSet;
use super::value_type::ValueType;

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
    // 60 demands × MMDD and HHMM, 22 statistics × one six-register time.
    assert_eq!(stamps, 120 + 22);
}

/// TH40C App. G, 0x1115-0x1161 and 0x11C4-0x1210: eleven maxima and eleven
/// minima, seven registers apart, each value followed by its time of
/// occurrence; decimals by the manual's footnote signs (* one, ‡ two,
/// † three).
#[test]
fn th40c_statistics_follow_the_map() {
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    let rows: [(u16, &str, ValueType, f64, &str); 11] = [
        (0x00, "32", ValueType::U16, 0.1, "V"),
        (0x07, "52", ValueType::U16, 0.1, "V"),
        (0x0E, "72", ValueType::U16, 0.1, "V"),
        (0x15, "31", ValueType::U16, 0.001, "A"),
        (0x1C, "51", ValueType::U16, 0.001, "A"),
        (0x23, "71", ValueType::U16, 0.001, "A"),
        (0x2A, "1", ValueType::I16, 0.001, "kW"),
        (0x31, "3", ValueType::I16, 0.001, "kvar"),
        (0x38, "9", ValueType::I16, 0.001, "kVA"),
        (0x3F, "13", ValueType::I16, 0.001, ""),
        (0x46, "14", ValueType::U16, 0.01, "Hz"),
    ];
    // D = 6 / 3 maximum / minimum; the powers 16 / 13 (6 is their demand).
    for (base, d, power_d) in [(0x1115u16, 6, 16), (0x11C4, 3, 13)] {
        for (offset, c, value_type, scale, unit) in rows {
            let power = matches!(c, "1" | "3" | "9");
            let code = format!("1-1:{c}.{}.0", if power { power_d } else { d });
            let at = |address: u16| profile.registers.iter().find(|r| r.address == address).unwrap();
            let value = at(base + offset);
            assert_eq!(value.obis.to_string(), code, "{}", value.name);
            assert_eq!(value.value_type, value_type, "{}", value.name);
            assert_eq!(value.scale, scale, "{}", value.name);
            assert_eq!(value.unit.as_str(), unit, "{}", value.name);
            let stamp = at(base + offset + 1);
            assert_eq!(stamp.value_type, ValueType::Ymdhms, "{}", stamp.name);
            assert_eq!(stamp.obis, value.obis, "{}", stamp.name);
        }
    }
    let energy = profile.blocks(RegisterGroup::Energy);
    for start in [0x1115, 0x11C4] {
        let block = energy.iter().find(|b| b.start == start).unwrap();
        assert_eq!(block.count, 77, "0x{start:04X}: one read");
    }
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
fn a_write_says_how_it_is_verified_and_clock_rules_need_the_clock_read() {
    let write = |extra: &str| {
        format!(
            "{MINIMAL}[modbus.commands.set_clock]\nkind = \"set_clock\"\nfunction = 16\naddress = 0x7000\n\
             count = 3\ndescription = \"clock\"\nclock = \"yymmddhhmmss_bytes\"\n{extra}\n"
        )
    };
    assert!(Profile::parse("tiny.toml", &write("verify = \"read_back\"")).is_ok());
    let error = refusal(&write("verify = \"readback\""));
    assert!(error.contains("verify: \"read_back\""), "{error}");
    let error = refusal(&write("verify = { none = \" \" }"));
    assert!(error.contains("modbus.commands.set_clock.verify: say why"), "{error}");
    let error = refusal(&write("max_change_s = 300"));
    assert!(
        error.contains("modbus.commands.set_clock.verify: max_change_s and once_per_day need the clock read"),
        "{error}"
    );
    let error = refusal(&write(
        "once_per_day = true\nverify = { address = 0x0010, count = 2, expect = \"clock\" }",
    ));
    assert!(error.contains("set_clock.verify.within_s"), "{error}");
    let clock = "once_per_day = true\nverify = { address = 0x0010, count = 2, expect = \"clock\", within_s = 5 }";
    assert!(Profile::parse("tiny.toml", &write(clock)).is_ok());
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
fn a_value_has_one_form_of_time_stamp() {
    let register = |address: &str, kind: &str| {
        format!(
            "\n[[registers]]\naddress = {address}\ntype = \"{kind}\"\nobis = \"1-1:1.8.0\"\ngroup = \"energy\"\nname = \"{kind}\"\n"
        )
    };
    let wide = MINIMAL.replace("max_registers_per_request = 4", "max_registers_per_request = 8");
    let whole = format!("{wide}{}", register("0x0020", "ymdhms"));
    Profile::parse("tiny.toml", &whole).unwrap();
    let both = format!("{whole}{}", register("0x0030", "mmdd"));
    let error = refusal(&both);
    assert!(
        error.contains("registers[3] (mmdd).obis: 1-1:1.8.0 has both a six-register time (ymdhms) and MMDD/HHMM parts"),
        "{error}"
    );
    let twice = format!("{whole}{}", register("0x0030", "ymdhms"));
    assert!(
        refusal(&twice).contains("has two Ymdhms registers"),
        "{}",
        refusal(&twice)
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

/// Rows of Socomec's E3x/E4x communication table (V200.53; "V201 only" rows
/// from V201), as the COUNTIS profiles cite it: address,
/// type, scale, unit, OBIS code, optional ("V201 only").
const COUNTIS_ROWS: &[(u16, &str, f64, &str, &str, bool)] = &[
    (0xC552, "u32", 0.01, "V", "1-1:132.7.0", false),
    (0xC554, "u32", 0.01, "V", "1-1:152.7.0", false),
    (0xC556, "u32", 0.01, "V", "1-1:172.7.0", false),
    (0xC558, "u32", 0.01, "V", "1-1:32.7.0", false),
    (0xC55A, "u32", 0.01, "V", "1-1:52.7.0", false),
    (0xC55C, "u32", 0.01, "V", "1-1:72.7.0", false),
    (0xC55E, "u32", 0.01, "Hz", "1-1:14.7.0", false),
    (0xC560, "u32", 0.001, "A", "1-1:31.7.0", false),
    (0xC562, "u32", 0.001, "A", "1-1:51.7.0", false),
    (0xC564, "u32", 0.001, "A", "1-1:71.7.0", false),
    (0xC566, "u32", 0.001, "A", "1-1:91.7.0", false),
    (0xC568, "i32", 0.01, "kW", "1-1:1.7.0", false),
    (0xC56A, "i32", 0.01, "kvar", "1-1:3.7.0", false),
    (0xC56C, "u32", 0.01, "kVA", "1-1:9.7.0", false),
    (0xC56E, "i32", 0.001, "", "1-1:13.7.0", false),
    (0xC570, "i32", 0.01, "kW", "1-1:21.7.0", false),
    (0xC572, "i32", 0.01, "kW", "1-1:41.7.0", false),
    (0xC574, "i32", 0.01, "kW", "1-1:61.7.0", false),
    (0xC576, "i32", 0.01, "kvar", "1-1:23.7.0", false),
    (0xC578, "i32", 0.01, "kvar", "1-1:43.7.0", false),
    (0xC57A, "i32", 0.01, "kvar", "1-1:63.7.0", false),
    (0xC57C, "u32", 0.01, "kVA", "1-1:29.7.0", false),
    (0xC57E, "u32", 0.01, "kVA", "1-1:49.7.0", false),
    (0xC580, "u32", 0.01, "kVA", "1-1:69.7.0", false),
    (0xC582, "i32", 0.001, "", "1-1:33.7.0", false),
    (0xC584, "i32", 0.001, "", "1-1:53.7.0", false),
    (0xC586, "i32", 0.001, "", "1-1:73.7.0", false),
    (0xC354, "u16", 1.0, "", "0-0:96.1.1", false),
    (0xC355, "u16", 1.0, "", "0-0:96.1.2", false),
    (0xC356, "u16", 1.0, "", "0-0:96.1.3", false),
    (0xC357, "u16", 1.0, "", "1-0:0.2.0", false),
    (0xC702, "u32", 0.01, "kWh", "1-1:1.8.0", false),
    (0xC704, "u32", 0.01, "kvarh", "1-1:3.8.0", false),
    (0xC706, "u32", 0.01, "kVAh", "1-1:9.8.0", true),
    (0xC708, "u32", 0.01, "kWh", "1-1:2.8.0", false),
    (0xC70A, "u32", 0.01, "kvarh", "1-1:4.8.0", true),
    (0xC70C, "u32", 0.01, "kWh", "1-1:129.8.0", false),
    (0xC70E, "u32", 0.01, "kvarh", "1-1:131.8.0", false),
    (0xC710, "u32", 0.01, "kVAh", "1-1:137.8.0", true),
    (0xC712, "u32", 0.01, "kWh", "1-1:130.8.0", false),
    (0xC714, "u32", 0.01, "kvarh", "1-1:132.8.0", true),
    (0xC800, "u16", 1.0, "", "0-0:128.14.0", false),
    (0xC801, "u16", 1.0, "", "0-0:96.14.0", false),
    (0xC802, "u32", 0.01, "kWh", "1-1:1.8.1", false),
    (0xC804, "u32", 0.01, "kWh", "1-1:1.8.2", false),
    (0xC806, "u32", 0.01, "kWh", "1-1:1.8.3", false),
    (0xC808, "u32", 0.01, "kWh", "1-1:1.8.4", false),
    (0xC812, "u32", 0.01, "kvarh", "1-1:3.8.1", true),
    (0xC814, "u32", 0.01, "kvarh", "1-1:3.8.2", true),
    (0xC816, "u32", 0.01, "kvarh", "1-1:3.8.3", true),
    (0xC818, "u32", 0.01, "kvarh", "1-1:3.8.4", true),
    // Settings: the network type (0 1BL … 5 4NBL), optional.
    (0xE000, "u16", 1.0, "", "0-0:128.16.0", true),
];

/// CT settings, E43/E44 only.
const COUNTIS_CT_ROWS: &[(u16, &str, f64, &str, &str, bool)] = &[
    (0xE001, "u16", 1.0, "A", "1-0:0.4.5", false),
    (0xE002, "u16", 1.0, "A", "1-0:0.4.2", false),
];

#[test]
fn countis_profiles_hold_every_row_of_the_socomec_table() {
    use super::value_type::ValueType;
    let set = ProfileSet::builtin();
    for name in ["countis-e33", "countis-e43", "countis-e44"] {
        let profile = set.get(name).unwrap();
        let has_ct = name != "countis-e33";
        let rows: Vec<_> = COUNTIS_ROWS
            .iter()
            .chain(COUNTIS_CT_ROWS.iter().filter(|_| has_ct))
            .collect();
        assert_eq!(
            profile.registers.len(),
            rows.len(),
            "{name}: nothing more than the table"
        );
        for &&(address, value_type, scale, unit, obis, optional) in &rows {
            let register = profile
                .registers
                .iter()
                .find(|r| r.address == address)
                .unwrap_or_else(|| panic!("{name}: 0x{address:04X} missing"));
            let expected_type: ValueType = toml::Value::String(value_type.to_owned()).try_into().unwrap();
            assert_eq!(register.value_type, expected_type, "{name} 0x{address:04X}");
            assert_eq!(register.scale, scale, "{name} 0x{address:04X}");
            assert_eq!(register.unit.as_str(), unit, "{name} 0x{address:04X}");
            assert_eq!(register.obis.to_string(), obis, "{name} 0x{address:04X}");
            assert_eq!(register.optional, optional, "{name} 0x{address:04X}");
        }
        // Signed powers split by direction; PF is signed by character, not split.
        let negative = |address: u16| {
            profile
                .registers
                .iter()
                .find(|r| r.address == address)
                .and_then(|r| r.obis_negative.as_ref())
                .map(ToString::to_string)
        };
        for (address, code) in [
            (0xC568, "1-1:2.7.0"),
            (0xC56A, "1-1:4.7.0"),
            (0xC570, "1-1:22.7.0"),
            (0xC572, "1-1:42.7.0"),
            (0xC574, "1-1:62.7.0"),
            (0xC576, "1-1:24.7.0"),
            (0xC578, "1-1:44.7.0"),
            (0xC57A, "1-1:64.7.0"),
        ] {
            assert_eq!(negative(address).as_deref(), Some(code), "{name} 0x{address:04X}");
        }
        assert_eq!(negative(0xC56E), None);
        assert_eq!(profile.modbus.max_registers_per_request, 125);
        assert_eq!(profile.modbus.word_order, super::value_type::WordOrder::HighFirst);
        assert!(profile.modbus.not_available_sentinels);
        let tariff = &profile.modbus.commands["set_tariff"];
        assert_eq!((tariff.function, tariff.address, tariff.broadcast), (6, 0x9E21, true));
        for command in [
            "reset_counters",
            "reset_tariff_counters",
            "reset_partial",
            "set_address",
        ] {
            assert!(profile.modbus.commands.contains_key(command), "{name}: {command}");
        }
        assert_eq!(profile.modbus.commands.contains_key("set_ct_primary"), has_ct, "{name}");
        assert_eq!(profile.legal_metrology.is_some(), name == "countis-e44", "{name}");
        let ids: Vec<_> = profile
            .identification
            .iter()
            .map(|i| (i.address, i.count, i.expect.clone().unwrap()))
            .collect();
        let model = name.trim_start_matches("countis-");
        assert_eq!(
            ids,
            vec![(0xC350, 4, "SOCO".to_owned()), (0xC38A, 8, format!("countis {model}"))]
        );
        // Identification table: serial words, then the three name strings
        // (extended, vendor, product), 8 words each, two characters a register.
        let identity: Vec<_> = profile
            .identity
            .iter()
            .map(|entry| (entry.address, entry.count, entry.format))
            .collect();
        use super::meter_identity::IdentityFormat::{Text, Words};
        assert_eq!(
            identity,
            vec![
                (0xC358, 3, Words),
                (0xC38A, 8, Text),
                (0xC37A, 8, Text),
                (0xC382, 8, Text)
            ],
            "{name}"
        );
        // Load curve (V200.53): the records are the CT's secondary side.
        let curve = profile.modbus.load_curve.as_ref().unwrap();
        let ct = has_ct.then_some([0xE002, 0xE001]);
        assert_eq!((curve.ct_registers, curve.read_minutes), (ct, 15), "{name}");
    }
    let e44 = set.get("countis-e44").unwrap();
    let legal = e44.legal_metrology.as_deref().unwrap();
    assert!(legal.contains("no legal value") && legal.contains("display"), "{legal}");
}

#[test]
fn countis_reads_plan_around_the_v201_registers() {
    let profile = ProfileSet::builtin().get("countis-e43").unwrap();
    let realtime = profile.blocks(RegisterGroup::Realtime);
    assert_eq!(
        realtime.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(),
        vec![(0xC552, 54)],
        "every instantaneous value in one request"
    );
    let energy: Vec<_> = profile
        .blocks(RegisterGroup::Energy)
        .iter()
        .map(|b| (b.start, b.count, b.optional))
        .collect();
    assert_eq!(
        energy,
        vec![
            (0xC354, 4, false),
            (0xC702, 4, false),
            (0xC706, 2, true),
            (0xC708, 2, false),
            (0xC70A, 2, true),
            (0xC70C, 4, false),
            (0xC710, 2, true),
            (0xC712, 2, false),
            (0xC714, 2, true),
            (0xC800, 10, false),
            (0xC812, 8, true),
            (0xE001, 2, false),
        ]
    );
}

#[test]
fn identification_entries_are_checked() {
    let with = |entry: &str| format!("{MINIMAL}\n[[identification]]\n{entry}\n");
    assert!(
        Profile::parse(
            "tiny.toml",
            &with("address = 0x100\ncount = 4\nencoding = \"low_byte\"\nexpect = \"SOCO\"")
        )
        .is_ok()
    );
    let error = refusal(&with(
        "address = 0x100\ncount = 3\nencoding = \"low_byte\"\nexpect = \"SOCO\"",
    ));
    assert!(
        error.contains("identification[0].expect: must be ASCII of at most 3"),
        "{error}"
    );
    let error = refusal(&with("address = 0x100\ncount = 4"));
    assert!(
        error.contains("identification[0].expect: a text entry needs"),
        "{error}"
    );
    let error = refusal(&with("address = 0x0011\ncount = 2\nexpect = \"AB\""));
    assert!(error.contains("identification[0].address: overlaps Energy"), "{error}");
    let error = refusal(&with("address = 0x0010\ncount = 3\nkind = \"date\""));
    assert!(
        error.contains("identification[0].kind: a date entry names a date_ymd register"),
        "{error}"
    );
    let error = refusal(&with("address = 0x100\ncount = 4\nexpect = \"A\"\ncolour = 1"));
    assert!(error.contains("unknown field `colour`"), "{error}");
    let error = refusal(&MINIMAL.replace("[modbus]", "legal_metrology = \" \"\n[modbus]"));
    assert!(error.contains("legal_metrology: must not be empty"), "{error}");
    let error = refusal(&MINIMAL.replace("[modbus]", "max_current_a = 0.0\n[modbus]"));
    assert!(error.contains("max_current_a: must be a positive number"), "{error}");
}

#[test]
fn the_direct_countis_e33_is_bounded_by_100_a_and_its_u32_energy_wraps_at_2_pow_32_hundredths() {
    let e33 = Profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/countis-e33.toml"
    )))
    .unwrap();
    // COUNTIS E33 manual: "current of 100 A (max.) in each current circuit".
    assert_eq!(e33.max_current_a, Some(100.0));
    let energy = e33
        .registers
        .iter()
        .find(|r| r.obis.to_string() == "1-1:1.8.0")
        .unwrap();
    // u32 at 0.01 kWh: 4 294 967 296 × 0.01 = 42 949 672.96 kWh.
    let wrap = energy.wrap_point().unwrap();
    assert!((wrap - 42_949_672.96).abs() < 1e-6, "{wrap}");
}

/// A profile read only over IEC 62056-21: no register map.
const IEC_ONLY: &str = r#"
name = "iec-meter"
manufacturer = "Test"
model = "I"
description = "two values"

[iec62056]
values = [
    { obis = "1-1:1.8.0", unit = "kWh", group = "energy", name = "Import", history = [1, 15] },
    { obis = "1-1:1.6.0", unit = "kW", group = "energy", name = "Demand", shape = "number_with_time" },
]

[[iec62056.status]]
obis = "0-0:F.F.0"
name = "errors"
format = "binary"
severity = "error"
bits = { 0 = "clock_error" }
"#;

#[test]
fn each_meters_registers_roll_over_where_its_manual_says() {
    let wrap = |name: &str, decimals: Option<i16>| ProfileSet::builtin().get(name).unwrap().energy_wrap(None, decimals);
    // A1000 manual 1.1, item 5: 99999.99 or 999999.9 kWh (2 decimals by default).
    assert_eq!(wrap("a1000", None), Some(100_000.0));
    assert_eq!(wrap("a1000", Some(1)), Some(1_000_000.0));
    // TH40C: 8 digits, 2 decimals by default; COUNTIS E33: 0 to 999999.9 kWh.
    assert_eq!(wrap("th40c", None), Some(1_000_000.0));
    assert_eq!(wrap("countis-e33", None), Some(1_000_000.0));
    // The E43/E44 give no digits that bind their registers: none.
    assert_eq!(wrap("countis-e43", None), None);
}

#[test]
fn an_iec_only_profile_needs_no_register_map() {
    let profile = Profile::parse("iec.toml", IEC_ONLY).unwrap();
    assert!(profile.speaks_iec62056() && !profile.speaks_modbus());
    let iec = profile.iec62056.as_ref().unwrap();
    assert_eq!(iec.max_baud, 9600);
    assert!(iec.value_for(&"1-1:1.8.0*15".parse().unwrap()).is_some());
    assert!(iec.value_for(&"1-1:1.8.0*16".parse().unwrap()).is_none());
    assert!(iec.value_for(&"1-1:1.6.0*1".parse().unwrap()).is_none());
    assert_eq!(iec.status[0].parse("0000 0101"), Some(5));
    let conditions = iec.status[0].conditions(5);
    assert_eq!(
        conditions.iter().map(|code| code.as_str()).collect::<Vec<_>>(),
        ["clock_error", "unnamed_bit_2"]
    );
}

#[test]
fn malformed_iec_sections_name_file_field_and_reason() {
    let refuse = |text: &str| Profile::parse("iec.toml", text).unwrap_err().to_string();
    let error = refuse(&IEC_ONLY.replace("history = [1, 15]", "history = [15, 1]"));
    assert_eq!(
        error,
        "profile iec.toml: iec62056.values[0] (Import).history: must be [first, last] with 1 <= first <= last"
    );
    let error = refuse(&IEC_ONLY.replace("\"1-1:1.8.0\"", "\"1-1:1.8.0*1\""));
    assert!(
        error.contains("iec62056.values[0] (Import).obis: give the code without its billing suffix"),
        "{error}"
    );
    // Without a history, a suffix is part of the code: that value alone.
    let exact = Profile::parse("iec.toml", &IEC_ONLY.replace("\"1-1:1.6.0\"", "\"0-0:C.50.41*21\"")).unwrap();
    let iec = exact.iec62056.unwrap();
    assert!(iec.value_for(&"0-0:C.50.41*21".parse().unwrap()).is_some());
    assert!(iec.value_for(&"0-0:C.50.41*22".parse().unwrap()).is_none());
    let error = refuse(&IEC_ONLY.replace("0 = \"clock_error\"", "40 = \"clock_error\""));
    assert!(
        error.contains("iec62056.status[0] (errors).bits.40: bits are numbered 0-31"),
        "{error}"
    );
    let error = refuse(&IEC_ONLY.replace("0 = \"clock_error\"", "0 = \"Clock Error\""));
    assert!(error.contains("bits.0: must be a snake_case condition code"), "{error}");
    // A meter's code never stands for an event the head-end raises itself.
    let error = refuse(&IEC_ONLY.replace("0 = \"clock_error\"", "0 = \"comm_lost\""));
    assert!(
        error.contains("iec62056.status[0] (errors).bits.0: names an event the head-end raises itself"),
        "{error}"
    );
    // A word kept as its value only names no bits.
    let error = refuse(&IEC_ONLY.replace("severity = \"error\"\n", "severity = \"error\"\nraw_only = true\n"));
    assert!(
        error.contains("iec62056.status[0] (errors).bits: a word kept as its value only names no bits"),
        "{error}"
    );
    let error = refuse(&IEC_ONLY.replace("[iec62056]", "[iec62056]\nmax_baud = 115200"));
    assert!(error.contains("iec62056.max_baud: must be one of 300"), "{error}");
    // An event register pairs two listed time values.
    let with_event = |start: &str| {
        format!(
            "{IEC_ONLY}\n[[iec62056.events]]\ncode = \"cover_open\"\nseverity = \"critical\"\nstart = \"{start}\"\nstop = \"{start}\"\n"
        )
    };
    let error = refuse(&with_event("1-1:1.8.0"));
    assert!(
        error.contains("iec62056.events[0] (cover_open).start: must be a listed value of shape \"time\""),
        "{error}"
    );
    let error = refuse(&with_event("0-0:C.90.1"));
    assert!(error.contains("iec62056.events[0] (cover_open).start"), "{error}");
    let error = refuse(&IEC_ONLY[..IEC_ONLY.find("[iec62056]").unwrap()]);
    assert!(
        error.contains("registers: a profile needs a Modbus register map, an [iec62056] section, or both"),
        "{error}"
    );
}

#[test]
fn logbook_sections_are_checked_and_a_programming_log_is_a_profile_edit_away() {
    let refuse = |text: &str| Profile::parse("iec.toml", text).unwrap_err().to_string();
    let logbook = "\n[iec62056.logbook]\nprofile = 98\nmax_entries = 255\n\
                   codes = { \"0x40\" = { code = \"cover_opened\", severity = \"warning\" } }\n";
    let log = |profile: u8| format!("\n[iec62056.programming_log]\nprofile = {profile}\nmax_entries = 200\n");
    let profile = Profile::parse("iec.toml", &format!("{IEC_ONLY}{logbook}{}", log(99))).unwrap();
    let iec = profile.iec62056.unwrap();
    let listed: Vec<(&str, u8, u16)> = iec
        .logbooks()
        .map(|(section, settings)| (section, settings.profile, settings.max_entries))
        .collect();
    assert_eq!(listed, vec![("logbook", 98, 255), ("programming_log", 99, 200)]);
    let error = refuse(&format!("{IEC_ONLY}{logbook}{}", log(98)));
    assert!(
        error.contains("iec62056.programming_log.profile: is the logbook's profile number"),
        "{error}"
    );
    let error = refuse(&format!("{IEC_ONLY}{}", log(0)));
    assert!(
        error.contains("iec62056.programming_log.profile: must be 1-99"),
        "{error}"
    );
    let error = refuse(&format!("{IEC_ONLY}{}", logbook.replace("cover_opened", "comm_lost")));
    assert!(
        error.contains("iec62056.logbook.codes.0x40.code: names an event the head-end raises itself"),
        "{error}"
    );
    // The TH40C: P.98, 255 entries (manual, "Eventi e allarmi"), no codes, no programming log.
    let th40c = crate::device::registry::ProfileSet::builtin().get("th40c").unwrap();
    let iec = th40c.iec62056.as_ref().unwrap();
    let shipped: Vec<(&str, u8, u16, usize)> = iec
        .logbooks()
        .map(|(section, s)| (section, s.profile, s.max_entries, s.codes.len()))
        .collect();
    assert_eq!(shipped, vec![("logbook", 98, 255, 0)]);
}

#[test]
fn th40c_closed_billing_periods_form_the_history_group() {
    let profile = ProfileSet::builtin().get("th40c").unwrap();
    // App. G: the "last month" (*1) and "two months ago" (*2) energies and
    // demands, with their demand time stamps, and nothing else.
    for register in &profile.registers {
        assert_eq!(
            register.group == RegisterGroup::History,
            register.obis.billing().is_some(),
            "{}",
            register.name
        );
    }
    assert!(!profile.blocks(RegisterGroup::History).is_empty());
    assert_eq!(profile.schedule.history_seconds, 900);
}

#[test]
fn the_history_period_defaults_and_must_be_positive() {
    let profile = Profile::parse("tiny.toml", MINIMAL).unwrap();
    assert_eq!(profile.schedule.history_seconds, 900);
    let zero = MINIMAL.replace(
        "[modbus]",
        "[schedule]\nrealtime_seconds = 10\nenergy_seconds = 60\nhistory_seconds = 0\n[modbus]",
    );
    assert!(
        refusal(&zero).contains("schedule.history_seconds"),
        "{}",
        refusal(&zero)
    );
    let history = MINIMAL.replace(
        "group = \"energy\"\nname = \"Power\"",
        "group = \"history\"\nname = \"Power\"",
    );
    let profile = Profile::parse("tiny.toml", &history).unwrap();
    assert_eq!(profile.blocks(RegisterGroup::History).len(), 1);
}

#[test]
fn iec_commands_are_checked_with_file_and_key() {
    let with_command = |write: &str| {
        format!(
            "{IEC_ONLY}\n[iec62056.commands.set_clock]\ndescription = \"clock\"\nfield_programming = true\nwrites = [{write}]\n"
        )
    };
    let profile = Profile::parse("iec.toml", &with_command("{ address = \"0.9.1\", clock = \"%H%M%S\" }")).unwrap();
    let command = &profile.iec62056.unwrap().commands["set_clock"];
    assert!(command.field_programming);
    assert_eq!(command.writes[0].address, "0.9.1");
    let error = Profile::parse("iec.toml", &with_command("{ address = \"0.9.1\" }"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "profile iec.toml: iec62056.commands.set_clock.writes[0].value: give exactly one of value and clock"
    );
}

#[test]
fn both_iec_meters_set_their_clock_in_field_programming_only() {
    let profiles = ProfileSet::builtin();
    for (name, date, time) in [("a1000", "0.9.2", "0.9.1"), ("th40c", "1-0:0.9.2", "1-0:0.9.1")] {
        let iec = profiles.get(name).unwrap().iec62056.clone().unwrap();
        // No public source gives the address of a billing or demand reset.
        assert_eq!(iec.commands.keys().collect::<Vec<_>>(), ["set_clock"], "{name}");
        let command = &iec.commands["set_clock"];
        assert!(command.field_programming, "{name}");
        let writes: Vec<(&str, Option<&str>)> = command
            .writes
            .iter()
            .map(|write| (write.address.as_str(), write.clock.as_deref()))
            .collect();
        assert_eq!(writes, [(date, Some("%y%m%d")), (time, Some("%H%M%S"))], "{name}");
    }
}
