//! Modbus unit addresses.

use serde::{Deserialize, Serialize};

/// A Modbus unit address a device can have: 1–255 (0 is broadcast). The
/// Modbus serial line specification reserves 248–255, but meters whose
/// manuals allow them take them (COUNTIS E33 and the pulse concentrator:
/// 1–255); each profile bounds its device's (`max_address`, 247 unless
/// its manual says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UnitAddress(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {0} is out of range: a device address is 1-255")]
pub struct AddressError(pub i64);

impl UnitAddress {
    pub fn new(value: i64) -> Result<UnitAddress, AddressError> {
        match u8::try_from(value) {
            Ok(byte @ 1..=255) => Ok(UnitAddress(byte)),
            _ => Err(AddressError(value)),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for UnitAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        UnitAddress::new(i64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for UnitAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_device_addresses() {
        assert!(UnitAddress::new(0).is_err());
        assert_eq!(UnitAddress::new(1).unwrap().get(), 1);
        assert_eq!(UnitAddress::new(247).unwrap().get(), 247);
        assert_eq!(UnitAddress::new(255).unwrap().get(), 255);
        assert!(UnitAddress::new(256).is_err());
        assert!(UnitAddress::new(-1).is_err());
    }
}
