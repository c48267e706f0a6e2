//! Device secrets at rest: sealed with XChaCha20-Poly1305 (an AEAD: a
//! ciphertext that was altered, or is opened with another key, does not
//! open) under the server's key `OHMNIBUS_SECRET_KEY`. Each secret is bound
//! to its device and name (the associated data), so a ciphertext copied to
//! another device's row does not open either. Pure functions: the nonce
//! comes from the caller ([`fresh_nonce`]).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use super::ids::DeviceId;
use super::secret::{Secret, SecretName};

/// The environment variable the key comes from.
pub const SECRET_KEY_VARIABLE: &str = "OHMNIBUS_SECRET_KEY";

/// Length of a nonce: XChaCha20's 24 bytes, long enough to draw at random.
pub const NONCE_LEN: usize = 24;

/// The key secrets are sealed with: 32 bytes. Never printed; wiped when
/// dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// Why a key does not parse; never holds the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{SECRET_KEY_VARIABLE} must be 32 bytes written as 64 hex digits or in base64 (44 characters); the value given ({length} characters) is neither"
)]
pub struct SecretKeyError {
    length: usize,
}

/// 64 hex digits, or standard base64 with or without its padding.
impl FromStr for SecretKey {
    type Err = SecretKeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let decoded = if text.len() == 64 {
            hex::decode(text).ok()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .ok()
        };
        decoded
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(SecretKey)
            .ok_or(SecretKeyError { length: text.len() })
    }
}

/// A secret as stored: its ciphertext (with the 16-byte tag) and nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
}

/// A nonce drawn from the operating system's generator (through `rand`'s
/// thread generator, which it seeds).
pub fn fresh_nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// What binds a sealed secret to its place: the device and the name.
fn associated_data(device: DeviceId, name: SecretName) -> Vec<u8> {
    format!("ohmnibus device secret v1/{}/{}", device.0, name.as_str()).into_bytes()
}

/// Seals `secret` of `device` under `key` with `nonce`.
pub fn seal(key: &SecretKey, device: DeviceId, name: SecretName, secret: &Secret, nonce: [u8; NONCE_LEN]) -> Sealed {
    let cipher = XChaCha20Poly1305::new(&Key::from(key.0));
    let aad = associated_data(device, name);
    let payload = Payload {
        msg: secret.expose().as_bytes(),
        aad: &aad,
    };
    let ciphertext = cipher
        .encrypt(&XNonce::from(nonce), payload)
        .expect("XChaCha20-Poly1305 seals any message under 256 GiB");
    Sealed {
        ciphertext,
        nonce: nonce.to_vec(),
    }
}

/// Why a stored secret does not open. Names neither the value nor the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The key is not the one it was sealed with, or the row was altered.
    #[error(
        "the stored {name} does not open with the configured {SECRET_KEY_VARIABLE} (the key changed, or the stored row was altered); set it again"
    )]
    WrongKey { name: SecretName },
    /// A secret is stored, but the server has no key to open it.
    #[error("the stored {name} cannot be opened: the server has no {SECRET_KEY_VARIABLE}")]
    NoKey { name: SecretName },
    #[error("the stored {name} has a nonce of {length} bytes, not {NONCE_LEN}")]
    BadNonce { name: SecretName, length: usize },
}

/// Opens what [`seal`] sealed for the same device and name under the same key.
pub fn open(key: &SecretKey, device: DeviceId, name: SecretName, sealed: &Sealed) -> Result<Secret, OpenError> {
    let Ok(nonce) = <[u8; NONCE_LEN]>::try_from(sealed.nonce.as_slice()) else {
        return Err(OpenError::BadNonce {
            name,
            length: sealed.nonce.len(),
        });
    };
    let cipher = XChaCha20Poly1305::new(&Key::from(key.0));
    let aad = associated_data(device, name);
    let payload = Payload {
        msg: &sealed.ciphertext,
        aad: &aad,
    };
    let plain = cipher
        .decrypt(&XNonce::from(nonce), payload)
        .map_err(|_| OpenError::WrongKey { name })?;
    // Only a value that was a secret was sealed; text it is.
    Secret::from_opened(plain).map_err(|_| OpenError::WrongKey { name })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: SecretName = SecretName::IecPassword;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes([byte; 32])
    }

    fn password(text: &str) -> Secret {
        NAME.check(text).unwrap()
    }

    #[test]
    fn what_is_sealed_opens_and_does_not_hold_the_value() {
        let secret = password("87654321");
        let sealed = seal(&key(7), DeviceId(3), NAME, &secret, [1; NONCE_LEN]);
        // 8 bytes of text and the 16-byte Poly1305 tag.
        assert_eq!(sealed.ciphertext.len(), 8 + 16);
        assert_eq!(sealed.nonce, vec![1; NONCE_LEN]);
        assert!(!sealed.ciphertext.windows(8).any(|w| w == b"87654321"));
        assert_eq!(open(&key(7), DeviceId(3), NAME, &sealed), Ok(secret.clone()));
        // Another nonce, another ciphertext of the same value.
        let again = seal(&key(7), DeviceId(3), NAME, &secret, [2; NONCE_LEN]);
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }

    #[test]
    fn another_key_device_or_a_tampered_byte_does_not_open() {
        let sealed = seal(&key(7), DeviceId(3), NAME, &password("87654321"), [1; NONCE_LEN]);
        let refused = Err(OpenError::WrongKey { name: NAME });
        assert_eq!(open(&key(8), DeviceId(3), NAME, &sealed), refused);
        assert_eq!(open(&key(7), DeviceId(4), NAME, &sealed), refused);
        for at in [0, 7, 8, 23] {
            let mut tampered = sealed.clone();
            tampered.ciphertext[at] ^= 0x01;
            assert_eq!(open(&key(7), DeviceId(3), NAME, &tampered), refused, "byte {at}");
        }
        let mut nonce = sealed.clone();
        nonce.nonce[0] ^= 0x01;
        assert_eq!(open(&key(7), DeviceId(3), NAME, &nonce), refused);
        let mut short = sealed;
        short.nonce.truncate(12);
        assert_eq!(
            open(&key(7), DeviceId(3), NAME, &short),
            Err(OpenError::BadNonce { name: NAME, length: 12 })
        );
        let message = OpenError::WrongKey { name: NAME }.to_string();
        assert!(
            message.contains("OHMNIBUS_SECRET_KEY") && message.contains("iec_password"),
            "{message}"
        );
    }

    #[test]
    fn a_key_is_64_hex_digits_or_base64_of_32_bytes() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8);
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        assert_eq!(hex.parse(), Ok(SecretKey::from_bytes(bytes)));
        assert_eq!(hex.to_uppercase().parse(), Ok(SecretKey::from_bytes(bytes)));
        // The same 32 bytes in base64, worked out by hand: 000102 → AAEC, …
        let base64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(base64.parse(), Ok(SecretKey::from_bytes(bytes)));
        assert_eq!(base64.trim_end_matches('=').parse(), Ok(SecretKey::from_bytes(bytes)));
        for bad in [
            "",
            "00",
            &hex[..62],
            &format!("{hex}00"),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
            "zz",
        ] {
            let error = bad.parse::<SecretKey>().unwrap_err().to_string();
            assert!(
                error.starts_with("OHMNIBUS_SECRET_KEY must be 32 bytes"),
                "{bad:?}: {error}"
            );
        }
        let hidden = "g".repeat(64).parse::<SecretKey>().unwrap_err().to_string();
        assert!(!hidden.contains("gggg"), "{hidden}");
        assert_eq!(format!("{:?}", SecretKey::from_bytes(bytes)), "SecretKey(***)");
    }
}
