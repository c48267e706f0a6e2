//! Checks a parsed profile as a whole: what TOML types cannot say (ranges,
//! overlaps, duplicate codes, time stamps without their value, identification
//! entries), so a malformed profile is refused at load with the field at fault.

use std::collections::HashSet;

use super::identify::{IdentificationKind, TextEncoding};
use super::profile::{Encode, MODBUS_MAX_REGISTERS, Profile, ProfileError, Register, WriteCommand};
use super::register_group::RegisterGroup;
use super::value_type::ValueType;
use super::write_rules::{Expect, Verify};

impl Profile {
    pub(super) fn check(&self, file: &str) -> Result<(), ProfileError> {
        let fail = |field: String, reason: String| ProfileError {
            file: file.to_owned(),
            field,
            reason,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(fail("name".into(), "must be lowercase letters, digits and '-'".into()));
        }
        if self.max_address == 0 {
            return Err(fail("max_address".into(), "must be 1-255".into()));
        }
        for group in RegisterGroup::ALL {
            if self.schedule.interval(group) == 0 {
                return Err(fail(format!("schedule.{group}_seconds"), "must be at least 1".into()));
            }
        }
        let limit = self.modbus.max_registers_per_request;
        if !(1..=MODBUS_MAX_REGISTERS).contains(&limit) {
            return Err(fail(
                "modbus.max_registers_per_request".into(),
                format!("must be 1-{MODBUS_MAX_REGISTERS}"),
            ));
        }
        if let Some(curve) = &self.modbus.load_curve
            && !(1..=1440).contains(&curve.read_minutes)
        {
            return Err(fail("modbus.load_curve.read_minutes".into(), "must be 1-1440".into()));
        }
        for (name, command) in &self.modbus.commands {
            let field = format!("modbus.commands.{name}");
            match (command.function, command.count) {
                (6, 1) | (16, 1..=123) => {}
                (6, _) => return Err(fail(field, "function 6 writes exactly one register".into())),
                (16, _) => return Err(fail(field, "function 16 writes 1-123 registers".into())),
                _ => return Err(fail(field, "function must be 6 or 16".into())),
            }
            if let Some(clock) = command.clock.filter(|clock| clock.count() != command.count) {
                return Err(fail(
                    format!("{field}.clock"),
                    format!("this layout fills {} registers, not {}", clock.count(), command.count),
                ));
            }
            check_kind(command).map_err(|(key, reason)| fail(format!("{field}.{key}"), reason))?;
            check_verify(command).map_err(|(key, reason)| fail(format!("{field}.{key}"), reason))?;
        }
        if self.registers.is_empty() && self.iec62056.is_none() {
            return Err(fail(
                "registers".into(),
                "a profile needs a Modbus register map, an [iec62056] section, or both".into(),
            ));
        }
        if let Some(iec) = &self.iec62056 {
            iec.check().map_err(|error| fail(error.field, error.reason))?;
        }

        let mut readings = HashSet::new();
        for (index, register) in self.registers.iter().enumerate() {
            let field = |name: &str| format!("registers[{index}] ({}).{name}", register.name);
            if register.end() > 0x1_0000 {
                return Err(fail(field("address"), "value runs past register 0xFFFF".into()));
            }
            if !register.scale.is_finite() || register.scale == 0.0 {
                return Err(fail(field("scale"), "must be a finite, non-zero number".into()));
            }
            if register.value_type.width() > limit {
                return Err(fail(field("type"), "wider than max_registers_per_request".into()));
            }
            if register.obis_negative.is_some() && matches!(register.value_type, ValueType::U16 | ValueType::U32) {
                return Err(fail(
                    field("obis_negative"),
                    "an unsigned value is never negative".into(),
                ));
            }
            if !register.value_type.is_timestamp_part() {
                for code in std::iter::once(&register.obis).chain(register.obis_negative.as_ref()) {
                    if !readings.insert(code.clone()) {
                        return Err(fail(
                            field("obis"),
                            format!("{code} is already given by another register"),
                        ));
                    }
                }
            }
        }
        let mut stamps = HashSet::new();
        for (index, register) in self.registers.iter().enumerate() {
            if register.value_type.is_timestamp_part() {
                let field = format!("registers[{index}] ({}).obis", register.name);
                if !readings.contains(&register.obis) {
                    return Err(fail(
                        field,
                        format!("time stamp for {} but no register gives that value", register.obis),
                    ));
                }
                if !stamps.insert((register.obis.clone(), register.value_type)) {
                    return Err(fail(
                        field,
                        format!("{} has two {:?} registers", register.obis, register.value_type),
                    ));
                }
                // A whole date and time (Ymdhms) or MMDD + HHMM, not both.
                let other_form = match register.value_type {
                    ValueType::Ymdhms => [ValueType::Mmdd, ValueType::Hhmm]
                        .iter()
                        .any(|&part| stamps.contains(&(register.obis.clone(), part))),
                    _ => stamps.contains(&(register.obis.clone(), ValueType::Ymdhms)),
                };
                if other_form {
                    return Err(fail(
                        field,
                        format!(
                            "{} has both a six-register time (ymdhms) and MMDD/HHMM parts",
                            register.obis
                        ),
                    ));
                }
            }
        }

        self.check_identification(&fail)?;
        self.check_identity(&fail)?;
        self.check_energy_display(&fail)?;
        if self
            .legal_metrology
            .as_deref()
            .is_some_and(|text| text.trim().is_empty())
        {
            return Err(fail("legal_metrology".into(), "must not be empty when given".into()));
        }
        if self
            .max_current_a
            .is_some_and(|amperes| !(amperes.is_finite() && amperes > 0.0))
        {
            return Err(fail(
                "max_current_a".into(),
                "must be a positive number of amperes".into(),
            ));
        }

        let mut by_address: Vec<&Register> = self.registers.iter().collect();
        by_address.sort_by_key(|register| register.address);
        for pair in by_address.windows(2) {
            if pair[0].end() > u32::from(pair[1].address) {
                let index = self
                    .registers
                    .iter()
                    .position(|r| std::ptr::eq(r, pair[1]))
                    .unwrap_or(0);
                return Err(fail(
                    format!("registers[{index}] ({}).address", pair[1].name),
                    format!(
                        "0x{:04X} overlaps {} at 0x{:04X}",
                        pair[1].address, pair[0].name, pair[0].address
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_energy_display(&self, fail: &impl Fn(String, String) -> ProfileError) -> Result<(), ProfileError> {
        let Some(display) = &self.energy_display else {
            return Ok(());
        };
        if !(1..=12).contains(&display.digits) || display.max_decimals >= display.digits {
            return Err(fail(
                "energy_display.digits".into(),
                "must be 1-12, more than max_decimals".into(),
            ));
        }
        if !(display.min_decimals..=display.max_decimals).contains(&display.decimals) {
            return Err(fail(
                "energy_display.decimals".into(),
                format!(
                    "must be within min_decimals–max_decimals ({}–{})",
                    display.min_decimals, display.max_decimals
                ),
            ));
        }
        Ok(())
    }

    fn check_identity(&self, fail: &impl Fn(String, String) -> ProfileError) -> Result<(), ProfileError> {
        for (index, entry) in self.identity.iter().enumerate() {
            if !(1..=MODBUS_MAX_REGISTERS).contains(&entry.count)
                || u32::from(entry.address) + u32::from(entry.count) > 0x1_0000
            {
                return Err(fail(
                    format!("identity[{index}].count"),
                    format!("must be 1-{MODBUS_MAX_REGISTERS} within the map"),
                ));
            }
        }
        Ok(())
    }

    fn check_identification(&self, fail: &impl Fn(String, String) -> ProfileError) -> Result<(), ProfileError> {
        for (index, entry) in self.identification.iter().enumerate() {
            let field = |name: &str| format!("identification[{index}].{name}");
            if !(1..=MODBUS_MAX_REGISTERS).contains(&entry.count)
                || u32::from(entry.address) + u32::from(entry.count) > 0x1_0000
            {
                return Err(fail(
                    field("count"),
                    format!("must be 1-{MODBUS_MAX_REGISTERS} within the map"),
                ));
            }
            let (start, end) = (
                u32::from(entry.address),
                u32::from(entry.address) + u32::from(entry.count),
            );
            match entry.kind {
                IdentificationKind::Text => {
                    let Some(expect) = entry.expect.as_deref().filter(|text| !text.trim().is_empty()) else {
                        return Err(fail(field("expect"), "a text entry needs the text it expects".into()));
                    };
                    let room = match entry.encoding {
                        TextEncoding::LowByte => usize::from(entry.count),
                        TextEncoding::HighLow => 2 * usize::from(entry.count),
                    };
                    if !expect.is_ascii() || expect.len() > room {
                        return Err(fail(
                            field("expect"),
                            format!("must be ASCII of at most {room} characters"),
                        ));
                    }
                    // The simulators serve the text from this entry, so it
                    // cannot share registers with a value.
                    if let Some(register) = self
                        .registers
                        .iter()
                        .find(|r| u32::from(r.address) < end && r.end() > start)
                    {
                        return Err(fail(field("address"), format!("overlaps {}", register.name)));
                    }
                }
                IdentificationKind::Ranges => {
                    let bounded = entry.within.len() == usize::from(entry.count)
                        && entry.within.iter().all(|[least, most]| least <= most);
                    if !bounded || entry.expect.is_some() {
                        return Err(fail(
                            field("within"),
                            "a ranges entry gives [least, most] for each of its registers, no expect".into(),
                        ));
                    }
                }
                IdentificationKind::Date => {
                    let is_date = self
                        .registers
                        .iter()
                        .any(|r| r.address == entry.address && r.value_type == ValueType::DateYmd);
                    if entry.count != 3 || entry.expect.is_some() || !is_date {
                        return Err(fail(
                            field("kind"),
                            "a date entry names a date_ymd register of the profile: its address, count 3, no expect"
                                .into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks that a write's verification can be done: registers a request may
/// read, a reason for reading none, a clock read with its tolerance, and
/// the clock read before a write held to clock rules.
fn check_verify(command: &WriteCommand) -> Result<(), (&'static str, String)> {
    let clock_read = match &command.verify {
        Verify::Mode(_) => false,
        Verify::Skip { none } if none.trim().is_empty() => {
            return Err(("verify", "say why the write is not verified".into()));
        }
        Verify::Skip { .. } => false,
        Verify::Read(read) => {
            if !(1..=MODBUS_MAX_REGISTERS).contains(&read.count) {
                return Err(("verify.count", format!("must be 1-{MODBUS_MAX_REGISTERS}")));
            }
            if (read.expect == Expect::Clock) != read.within_s.is_some() {
                return Err(("verify.within_s", "a clock read, and only one, takes within_s".into()));
            }
            read.expect == Expect::Clock
        }
    };
    if command.clock_rule().is_some() && !clock_read {
        return Err((
            "verify",
            "max_change_s and once_per_day need the clock read (expect = \"clock\")".into(),
        ));
    }
    Ok(())
}

/// Checks that a write's kind, parameter and encoding fit together: the
/// parameter is one the kind takes, fixed values fill the registers, a
/// bitmask is one register, a pulse input's settings five.
fn check_kind(command: &WriteCommand) -> Result<(), (&'static str, String)> {
    let Some(kind) = command.kind else {
        return Ok(());
    };
    if let Some(parameter) = &command.parameter
        && !kind.parameters().iter().any(|known| known.as_str() == parameter)
    {
        return Err(("parameter", format!("{kind} takes no parameter {parameter:?}")));
    }
    let count = usize::from(command.count);
    match command.encode {
        Encode::Fixed if command.values.as_ref().map(Vec::len) != Some(count) => {
            Err(("values", format!("a fixed write needs {count} value(s)")))
        }
        Encode::Bitmask if command.parameter.is_none() || count != 1 => {
            Err(("encode", "a bitmask fills one register from a list parameter".into()))
        }
        Encode::ChannelConfig if count != 5 || command.channel_stride.is_none() => Err((
            "encode",
            "a pulse input's settings are 5 registers, with channel_stride".into(),
        )),
        Encode::Parameter if command.parameter.is_none() && command.clock.is_none() && command.values.is_none() => {
            Err((
                "parameter",
                format!("{kind} needs a parameter, values or a clock layout"),
            ))
        }
        _ => Ok(()),
    }
}
