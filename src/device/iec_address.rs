//! How the addresses of an IEC 62056-21 readout name OBIS codes.
//!
//! A meter writes an address in full (`1-1:1.8.0*101`) or reduced, leaving
//! out groups A-B and sometimes E (`1.8.0`, `0.1.2*101`, `C.1.0`, `F.F`);
//! IEC 62056-21 leaves the choice to the meter (facts in `docs/PROTOCOLS.md`,
//! "Data sets"). Two kinds of code are told apart:
//!
//! - electrical quantities (value group C = 1–94, and the manufacturer
//!   ranges): their A-B says which measuring channel, so a reduced address
//!   takes the profile's `reduced_prefix` and a full one is taken as written;
//! - general-purpose codes (C = 0, C = 96–99 and the letter codes, see
//!   [`ObisCode::is_general_purpose`]): the same object whatever A-B the
//!   meter writes or leaves out, so an address matches the profile's entry
//!   of the same C.D.E and is stored under that entry's code. Such a code
//!   the profile does not list gets `0-0` when written reduced.
//!
//! So an A1000 writing `0.1.2*101` (the reset time of the last billing set:
//! its manual's App. A numbers the sets `*101`…, the profile gives the time
//! the standard code `0-0:0.1.2`) is stored as `0-0:0.1.2*101`, and a TH40C
//! writing its clock `1-0:0.9.2` (manual App. A) matches an entry `0-0:0.9.2`.

use super::iec::IecSettings;
use crate::domain::obis::ObisCode;

impl IecSettings {
    /// The OBIS code an address of a readout is stored under, or `None`
    /// when it is no OBIS address. E = 0 when left out.
    pub fn full_code(&self, address: &str) -> Option<ObisCode> {
        let code = written_code(address, &self.reduced_prefix)?;
        if !code.is_general_purpose() {
            return Some(code);
        }
        Some(match self.listed_general(&code) {
            Some((medium, channel)) => code.with_groups_ab(medium, channel),
            None => code,
        })
    }

    /// Groups A-B of the profile's value or status word that is the same
    /// general-purpose object as `code` (same C.D.E), if one is listed.
    fn listed_general(&self, code: &ObisCode) -> Option<(u8, u8)> {
        let current = code.current();
        self.values
            .iter()
            .map(|value| &value.obis)
            .chain(self.status.iter().map(|word| &word.obis))
            .map(|listed| (listed.current(), listed.groups_ab()))
            .find(|(listed, (medium, channel))| *listed == current.with_groups_ab(*medium, *channel))
            .map(|(_, groups)| groups)
    }
}

/// The code as the meter wrote it: a full address as it is; a reduced one
/// with `reduced_prefix` for an electrical quantity, `0-0` for a
/// general-purpose code.
fn written_code(address: &str, reduced_prefix: &str) -> Option<ObisCode> {
    let address = address.trim();
    if address.contains(':') {
        return address.parse().ok();
    }
    let (body, suffix) = match address.split_once(['*', '&']) {
        Some((body, suffix)) => (body, Some(suffix)),
        None => (address, None),
    };
    let body = match body.split('.').count() {
        2 => format!("{body}.0"),
        3 => body.to_owned(),
        _ => return None,
    };
    let text = match suffix {
        Some(suffix) => format!("{reduced_prefix}:{body}*{suffix}"),
        None => format!("{reduced_prefix}:{body}"),
    };
    let code: ObisCode = text.parse().ok()?;
    Some(match code.is_general_purpose() {
        true => code.with_groups_ab(0, 0),
        false => code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::registry::ProfileSet;

    fn builtin(name: &str) -> IecSettings {
        ProfileSet::builtin()
            .get(name)
            .unwrap()
            .iec62056
            .clone()
            .expect("read over IEC 62056-21")
    }

    fn stored(settings: &IecSettings, address: &str) -> Option<String> {
        settings.full_code(address).map(|code| code.to_string())
    }

    #[test]
    fn general_purpose_addresses_match_the_profile_whatever_their_groups_a_b() {
        let a1000 = builtin("a1000");
        // A1000 App. A: history sets *101..*116; the profile lists the reset
        // time as 0-0:0.1.2 and the reset count as 0-0:0.1.0.
        assert_eq!(stored(&a1000, "0.1.2*101").as_deref(), Some("0-0:0.1.2*101"));
        assert_eq!(stored(&a1000, "1-0:0.1.2*116").as_deref(), Some("0-0:0.1.2*116"));
        assert_eq!(stored(&a1000, "0.1.0").as_deref(), Some("0-0:0.1.0"));
        assert_eq!(stored(&a1000, "F.F").as_deref(), Some("0-0:F.F.0"));
        assert_eq!(stored(&a1000, "1-0:F.F.1").as_deref(), Some("0-0:F.F.1"));
        assert_eq!(stored(&a1000, "C.50.41*21").as_deref(), Some("0-0:C.50.41*21"));
        // Not listed: reduced ones get 0-0, full ones stay as written.
        assert_eq!(stored(&a1000, "C.1.0").as_deref(), Some("0-0:C.1.0"));
        assert_eq!(stored(&a1000, "96.1.0").as_deref(), Some("0-0:96.1.0"));
        assert_eq!(stored(&a1000, "1-0:96.1.0").as_deref(), Some("1-0:96.1.0"));

        // The TH40C manual (App. A) writes its clock 1-0:0.9.2 / 1-0:0.9.1.
        let listed: IecSettings = toml::from_str(
            r#"
            values = [
                { obis = "1-0:0.9.2", unit = "", group = "realtime", name = "Date" },
                { obis = "0-0:96.1.0", unit = "", group = "energy", name = "Meter number" },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(stored(&listed, "0.9.2").as_deref(), Some("1-0:0.9.2"));
        assert_eq!(stored(&listed, "0-0:0.9.2").as_deref(), Some("1-0:0.9.2"));
        assert_eq!(stored(&listed, "96.1.0").as_deref(), Some("0-0:96.1.0"));
        assert_eq!(stored(&listed, "1-1:96.1.0").as_deref(), Some("0-0:96.1.0"));
        assert_eq!(stored(&listed, "0.9.1").as_deref(), Some("0-0:0.9.1"));
    }

    #[test]
    fn electrical_quantities_keep_the_reduced_prefix_or_their_own() {
        let a1000 = builtin("a1000");
        assert_eq!(stored(&a1000, "1.8.0").as_deref(), Some("1-1:1.8.0"));
        assert_eq!(stored(&a1000, "1.8").as_deref(), Some("1-1:1.8.0"));
        assert_eq!(stored(&a1000, "1.8.0&04").as_deref(), Some("1-1:1.8.0*4"));
        assert_eq!(stored(&a1000, "32.7.0").as_deref(), Some("1-1:32.7.0"));
        assert_eq!(stored(&a1000, "1-0:1.8.0").as_deref(), Some("1-0:1.8.0"));
        // TH40C App. A: current loss start, manufacturer range C = 181.
        let th40c = builtin("th40c");
        assert_eq!(stored(&th40c, "181.130.0*1").as_deref(), Some("1-1:181.130.0*1"));
        assert_eq!(stored(&a1000, "no address"), None);
        assert_eq!(stored(&a1000, "1.8.0.0"), None);
        assert_eq!(stored(&a1000, "1.8.0*x"), None);
    }
}
