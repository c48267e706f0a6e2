//! The physical limits a device's settings may change (CT ratio, largest
//! current, voltage, phases): their defaults and how a sent value is checked.

use super::ServiceError;

/// A direct connection: no current transformer.
pub(crate) const DEFAULT_CT_RATIO: f64 = 1.0;
/// The nominal European phase-to-neutral voltage (the schema's default).
pub(crate) const DEFAULT_VOLTAGE_V: f64 = 230.0;
pub(crate) const DEFAULT_PHASES: u8 = 3;

/// A sent value that must be a positive number, or null.
pub(crate) fn positive(field: &str, value: Option<f64>) -> Result<Option<f64>, ServiceError> {
    match value {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(ServiceError::invalid(field, format!("{x} is not above 0"))),
        other => Ok(other),
    }
}

/// A sent number of phases: 1 or 3 (a two-phase supply is not offered), or null.
pub(crate) fn phases(value: Option<i64>) -> Result<Option<u8>, ServiceError> {
    match value {
        None => Ok(None),
        Some(1) => Ok(Some(1)),
        Some(3) => Ok(Some(3)),
        Some(other) => Err(ServiceError::invalid("phases", format!("{other} is not 1 or 3"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_must_be_positive_and_phases_one_or_three() {
        assert_eq!(positive("ct_ratio", Some(40.0)).unwrap(), Some(40.0));
        assert_eq!(positive("ct_ratio", None).unwrap(), None);
        assert!(positive("ct_ratio", Some(0.0)).is_err());
        assert!(positive("voltage_v", Some(-230.0)).is_err());
        assert_eq!(phases(Some(1)).unwrap(), Some(1));
        assert_eq!(phases(None).unwrap(), None);
        assert!(phases(Some(2)).is_err());
    }
}
