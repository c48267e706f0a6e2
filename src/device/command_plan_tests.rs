//! Typed commands planned on the bundled profiles, against frames laid out
//! by hand from the manuals and the Modbus specification.

use chrono::{TimeZone, Utc};

use super::*;
use crate::device::registry::ProfileSet;
use crate::domain::transport::Parity;

fn profile(name: &str) -> Profile {
    ProfileSet::builtin().get(name).unwrap().as_ref().clone()
}

fn command(kind: CommandKind, parameters: CommandParameters) -> Command {
    Command::new(kind, parameters).unwrap()
}

fn rtu() -> Transport {
    Transport::SerialRtu {
        path: "/dev/ttyUSB0".into(),
        baud: 9600,
        parity: Parity::None,
        stop_bits: 1,
    }
}

fn words(writes: &[PlannedWrite]) -> Vec<(u8, u16, Vec<u16>)> {
    let now = Utc::now();
    writes
        .iter()
        .map(|write| (write.function, write.address, write.words(now, chrono_tz::UTC).unwrap()))
        .collect()
}

#[test]
fn set_tariff_on_an_e43_is_fc6_at_0x9e21_and_may_be_broadcast() {
    let e43 = profile("countis-e43");
    let asked = CommandParameters {
        tariff: Some(2),
        broadcast: true,
        ..CommandParameters::default()
    };
    let writes = plan_modbus(&e43, &command(CommandKind::SetTariff, asked)).unwrap();
    assert_eq!(words(&writes), [(6, 0x9E21, vec![2])]);
    // Unit 0, FC6, register 9E21, value 0002, CRC low byte first.
    let frame = writes[0].frame(&rtu(), 5, &[2]);
    let crc = crate::protocol::modbus::frame::crc16(&[0x00, 0x06, 0x9E, 0x21, 0x00, 0x02]);
    let mut expected = vec![0x00, 0x06, 0x9E, 0x21, 0x00, 0x02];
    expected.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(frame, expected);
}

#[test]
fn a_tariff_outside_1_to_4_is_named() {
    let e43 = profile("countis-e43");
    let asked = CommandParameters {
        tariff: Some(5),
        ..CommandParameters::default()
    };
    let refused = plan_modbus(&e43, &command(CommandKind::SetTariff, asked)).unwrap_err();
    assert_eq!(refused.to_string(), "tariff: countis-e43 takes 1-4, not 5");
}

#[test]
fn the_ct_ratio_is_two_writes_within_the_manuals_ranges() {
    let e44 = profile("countis-e44");
    let ratio = |primary, secondary| {
        command(
            CommandKind::SetCtRatio,
            CommandParameters {
                primary_a: Some(primary),
                secondary_a: Some(secondary),
                ..CommandParameters::default()
            },
        )
    };
    let writes = plan_modbus(&e44, &ratio(400, 5)).unwrap();
    assert_eq!(words(&writes), [(6, 0xE002, vec![400]), (6, 0xE001, vec![5])]);
    assert_eq!(
        plan_modbus(&e44, &ratio(12_001, 5)).unwrap_err().to_string(),
        "primary_a: countis-e44 takes 1-12000, not 12001"
    );
    assert_eq!(
        plan_modbus(&e44, &ratio(400, 2)).unwrap_err().to_string(),
        "secondary_a: countis-e44 takes 1 or 5, not 2"
    );
    // A ratio may not be broadcast: each meter has its own CT.
    let mut broadcast = ratio(400, 5);
    broadcast.parameters.broadcast = true;
    assert!(
        plan_modbus(&e44, &broadcast)
            .unwrap_err()
            .to_string()
            .starts_with("broadcast: ")
    );
}

#[test]
fn front_panel_only_kinds_are_refused_with_the_manuals_reason() {
    let e43 = profile("countis-e43");
    let refused = plan_modbus(&e43, &command(CommandKind::StartPartial, CommandParameters::default())).unwrap_err();
    assert!(matches!(refused, PlanError::NotOverWire(_)));
    assert!(refused.to_string().contains("front panel only"), "{refused}");
    assert!(refused.to_string().contains("10.6.1"), "{refused}");
    let none = plan_modbus(&e43, &command(CommandKind::BillingReset, CommandParameters::default())).unwrap_err();
    assert_eq!(
        none.to_string(),
        "countis-e43 has no billing_reset over Modbus in its profile"
    );
}

#[test]
fn reset_counters_sets_bit_n_minus_1_per_input() {
    let concentrator = profile("pulse-concentrator");
    let asked = CommandParameters {
        channels: Some(vec![1, 5, 12]),
        ..CommandParameters::default()
    };
    let writes = plan_modbus(&concentrator, &command(CommandKind::ResetCounters, asked)).unwrap();
    // Bits 0, 4 and 11: 0x0001 + 0x0010 + 0x0800.
    assert_eq!(words(&writes), [(6, 0x0300, vec![0x0811])]);
    let asked = CommandParameters {
        channels: Some(vec![13]),
        ..CommandParameters::default()
    };
    let refused = plan_modbus(&concentrator, &command(CommandKind::ResetCounters, asked)).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "channels[0]: pulse-concentrator takes 1-12, not 13"
    );
}

#[test]
fn configure_channel_writes_input_ns_five_settings() {
    let concentrator = profile("pulse-concentrator");
    let asked = |vt: f64| CommandParameters {
        channel: Some(3),
        unit: Some("kWh".into()),
        pulse_weight: Some(0.1),
        ct_ratio: Some(200),
        vt_ratio: Some(vt),
        off_time_ms: Some(30),
        ..CommandParameters::default()
    };
    let writes = plan_modbus(&concentrator, &command(CommandKind::ConfigureChannel, asked(1.5))).unwrap();
    // Input 3: 0x0100 + 7 x 2 = 0x010E, settings from +2: 0x0110. kWh is
    // code 1, 0.1 per pulse code 2, VT 1.5 written as 15.
    assert_eq!(words(&writes), [(16, 0x0110, vec![1, 2, 200, 15, 30])]);
    let refused = plan_modbus(&concentrator, &command(CommandKind::ConfigureChannel, asked(1.55))).unwrap_err();
    assert_eq!(refused.to_string(), "vt_ratio: must be 1-3000.0 in steps of 0.1");
}

#[test]
fn the_th40c_clock_is_the_time_when_sent_in_the_meters_zone() {
    let th40c = profile("th40c");
    let writes = plan_modbus(&th40c, &command(CommandKind::SetClock, CommandParameters::default())).unwrap();
    assert_eq!(writes.len(), 1);
    assert_eq!((writes[0].function, writes[0].address), (16, 0x7000));
    // 2026-07-20 13:10:40 UTC is 15:10:40 in Rome (summer time).
    let now = Utc.with_ymd_and_hms(2026, 7, 20, 13, 10, 40).unwrap();
    let sent = writes[0].words(now, chrono_tz::Europe::Rome).unwrap();
    assert_eq!(sent, [0x1A07, 0x140F, 0x0A28]);
    // Modbus TCP: transaction 0, protocol 0, length 13, unit 1, FC16 at
    // 0x7000, 3 registers, 6 bytes.
    let tcp = Transport::ModbusTcp {
        host: "meter".into(),
        port: 502,
    };
    let writes = plan_modbus(&th40c, &command(CommandKind::SetClock, CommandParameters::default())).unwrap();
    assert_eq!(
        writes[0].frame(&tcp, 1, &sent),
        [
            0x00, 0x00, 0x00, 0x00, 0x00, 0x0D, 0x01, 0x10, 0x70, 0x00, 0x00, 0x03, 0x06, 0x1A, 0x07, 0x14, 0x0F, 0x0A,
            0x28
        ]
    );
}

#[test]
fn a_raw_write_is_fc6_for_one_value_fc16_for_more() {
    let e33 = profile("countis-e33");
    let raw = |values: Vec<i64>| {
        command(
            CommandKind::WriteRegisters,
            CommandParameters {
                register: Some(0x9E21),
                values: Some(values),
                ..CommandParameters::default()
            },
        )
    };
    assert_eq!(
        words(&plan_modbus(&e33, &raw(vec![3])).unwrap()),
        [(6, 0x9E21, vec![3])]
    );
    assert_eq!(
        words(&plan_modbus(&e33, &raw(vec![1, 2])).unwrap()),
        [(16, 0x9E21, vec![1, 2])]
    );
    assert_eq!(
        plan_modbus(&e33, &raw(vec![1, 70_000])).unwrap_err().to_string(),
        "values[1]: must be 0-65535"
    );
}
