//! Per-device secrets: which ones a device may carry ([`SecretName`]), what
//! each may hold, and the [`Secret`] value, which never prints itself.
//! Sealing and opening at rest are in [`super::sealing`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The secrets a device may carry. Stored in `device_secrets.name` as its
/// snake_case name (the column's `device_secrets_name_check` allows exactly
/// these); a new secret is a variant here, its rule in
/// [`SecretName::check`], and the name added to that check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretName {
    /// `iec_password`: the IEC 62056-21 programming-mode password, sent in
    /// the `P1` command after the meter's `P0` request (docs/PROTOCOLS.md,
    /// "Programming mode"). Overrides the `[iec62056] password` of the
    /// device's profile.
    IecPassword,
}

/// Longest IEC 62056-21 password: the password travels as the value of the
/// `P1` data set `(password)`, and a value is at most 32 characters
/// (IEC 62056-21:2002, 6.5; docs/PROTOCOLS.md, "Data sets"). Neither the
/// A1000 nor the TH40C manual gives a length of its own.
pub const IEC_PASSWORD_MAX_LEN: usize = 32;

/// Characters a data-set value cannot hold: `(` and `)` bracket it, `*`
/// parts it from its unit, `/` starts an identification and `!` ends a
/// data block (IEC 62056-21:2002, 6.5; docs/PROTOCOLS.md, "Data sets").
const IEC_RESERVED: [char; 5] = ['(', ')', '*', '/', '!'];

impl SecretName {
    pub const ALL: [SecretName; 1] = [SecretName::IecPassword];

    pub fn as_str(self) -> &'static str {
        match self {
            SecretName::IecPassword => "iec_password",
        }
    }

    /// Takes `value` as this secret when it is what the secret can carry;
    /// the error says why not, without repeating the value.
    pub fn check(self, value: &str) -> Result<Secret, SecretValueError> {
        match self {
            SecretName::IecPassword => {
                let length = value.chars().count();
                if !(1..=IEC_PASSWORD_MAX_LEN).contains(&length) {
                    return Err(SecretValueError(format!(
                        "an IEC 62056-21 password is 1–{IEC_PASSWORD_MAX_LEN} characters (a data-set value, IEC 62056-21 6.5); this one has {length}"
                    )));
                }
                if let Some(at) = value.chars().position(|c| !c.is_ascii_graphic()) {
                    return Err(SecretValueError(format!(
                        "an IEC 62056-21 password is visible ASCII (no spaces or control characters); character {} is not",
                        at + 1
                    )));
                }
                if let Some(at) = value.chars().position(|c| IEC_RESERVED.contains(&c)) {
                    return Err(SecretValueError(format!(
                        "an IEC 62056-21 password cannot hold ( ) * / or ! (they frame a data set, IEC 62056-21 6.5); character {} does",
                        at + 1
                    )));
                }
                Ok(Secret(value.to_owned()))
            }
        }
    }
}

/// Why a value cannot be a secret of its name; never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretValueError(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown secret {0:?}: expected iec_password")]
pub struct SecretNameError(String);

impl FromStr for SecretName {
    type Err = SecretNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SecretName::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or_else(|| SecretNameError(text.to_owned()))
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

super::column::text_column!(SecretName);

/// A secret value in the clear. `Debug` and `Display` print `***`, so it
/// cannot reach a log, an error message or a page by formatting; the one
/// way to the value is [`Secret::expose`], for the wire. Its memory is
/// wiped when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that sends it to the meter.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret from its stored bytes, once opened.
    pub(super) fn from_opened(bytes: Vec<u8>) -> Result<Secret, std::string::FromUtf8Error> {
        String::from_utf8(bytes).map(Secret)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_ones_are_refused() {
        for name in SecretName::ALL {
            assert_eq!(name.as_str().parse::<SecretName>(), Ok(name));
        }
        assert_eq!("iec_password".parse(), Ok(SecretName::IecPassword));
        assert!("password".parse::<SecretName>().is_err());
        assert_eq!(serde_json::to_value(SecretName::IecPassword).unwrap(), "iec_password");
    }

    #[test]
    fn an_iec_password_is_what_p1_can_carry() {
        let name = SecretName::IecPassword;
        for good in ["0", "00000000", "Abc-123_#$%&+,.:;<=>?@[]^{|}~", &"9".repeat(32)] {
            assert_eq!(name.check(good).unwrap().expose(), good, "{good:?}");
        }
        let bad = [
            ("", "1–32"),
            (&"9".repeat(33) as &str, "this one has 33"),
            ("pass word", "character 5 is not"),
            ("pass\tword", "character 5 is not"),
            ("passé", "character 5 is not"),
            ("(1234)", "character 1 does"),
            ("12*34", "character 3 does"),
            ("12/34", "character 3 does"),
            ("1234!", "character 5 does"),
        ];
        for (value, reason) in bad {
            let error = name.check(value).unwrap_err().to_string();
            assert!(error.contains(reason), "{value:?}: {error}");
            if value.len() > 2 {
                assert!(!error.contains(value), "{value:?} is repeated in {error}");
            }
        }
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = SecretName::IecPassword.check("hunter22").unwrap();
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(***))");
    }
}
