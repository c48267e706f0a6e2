//! How the head-end reaches a bus: the settings stored with each bus.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Transport of a bus. Stored as JSON with a `kind` tag, exactly as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transport {
    /// Modbus TCP (MBAP header), e.g. a meter with an Ethernet port.
    ModbusTcp { host: String, port: u16 },
    /// Modbus RTU frames carried over TCP by a transparent serial gateway.
    RtuOverTcp { host: String, port: u16 },
    /// Modbus RTU on a local serial line (RS485 adapter).
    SerialRtu {
        path: String,
        baud: u32,
        parity: Parity,
        stop_bits: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// Baud rates a serial bus may use (the devices we support span 1200–115200).
pub const BAUD_RATES: [u32; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200];

/// A transport setting that is out of range, with the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TransportError {
    pub field: &'static str,
    pub reason: String,
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::ModbusTcp { .. } => "modbus_tcp",
            Transport::RtuOverTcp { .. } => "rtu_over_tcp",
            Transport::SerialRtu { .. } => "serial_rtu",
        }
    }

    /// Checks the values serde cannot: empty host, port 0, unknown baud rate.
    pub fn check(&self) -> Result<(), TransportError> {
        let fail = |field, reason: &str| {
            Err(TransportError {
                field,
                reason: reason.to_owned(),
            })
        };
        match self {
            Transport::ModbusTcp { host, port } | Transport::RtuOverTcp { host, port } => {
                if host.trim().is_empty() {
                    return fail("transport.host", "must not be empty");
                }
                if *port == 0 {
                    return fail("transport.port", "must be 1-65535");
                }
            }
            Transport::SerialRtu {
                path, baud, stop_bits, ..
            } => {
                if path.trim().is_empty() {
                    return fail("transport.path", "must name a serial device, e.g. /dev/ttyUSB0");
                }
                if !BAUD_RATES.contains(baud) {
                    return fail(
                        "transport.baud",
                        "must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200",
                    );
                }
                if !matches!(stop_bits, 1 | 2) {
                    return fail("transport.stop_bits", "must be 1 or 2");
                }
            }
        }
        Ok(())
    }

    /// Short human description for pages and logs.
    pub fn describe(&self) -> String {
        match self {
            Transport::ModbusTcp { host, port } => format!("Modbus TCP {host}:{port}"),
            Transport::RtuOverTcp { host, port } => format!("RTU over TCP {host}:{port}"),
            Transport::SerialRtu {
                path,
                baud,
                parity,
                stop_bits,
            } => {
                let parity = match parity {
                    Parity::None => 'N',
                    Parity::Even => 'E',
                    Parity::Odd => 'O',
                };
                format!("Serial RTU {path} {baud} 8{parity}{stop_bits}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_api_shapes() {
        let tcp: Transport =
            serde_json::from_str(r#"{"kind": "modbus_tcp", "host": "127.0.0.1", "port": 5020}"#).unwrap();
        assert_eq!(
            tcp,
            Transport::ModbusTcp {
                host: "127.0.0.1".into(),
                port: 5020
            }
        );
        let serial: Transport = serde_json::from_str(
            r#"{"kind": "serial_rtu", "path": "/dev/ttyUSB0", "baud": 9600, "parity": "even", "stop_bits": 1}"#,
        )
        .unwrap();
        assert!(serial.check().is_ok());
        assert_eq!(serial.describe(), "Serial RTU /dev/ttyUSB0 9600 8E1");
    }

    #[test]
    fn refuses_out_of_range_settings() {
        let serial = Transport::SerialRtu {
            path: "/dev/ttyS0".into(),
            baud: 9601,
            parity: Parity::None,
            stop_bits: 1,
        };
        assert_eq!(serial.check().unwrap_err().field, "transport.baud");
        let serial = Transport::SerialRtu {
            path: "/dev/ttyS0".into(),
            baud: 9600,
            parity: Parity::None,
            stop_bits: 3,
        };
        assert_eq!(serial.check().unwrap_err().field, "transport.stop_bits");
        let tcp = Transport::RtuOverTcp {
            host: " ".into(),
            port: 502,
        };
        assert_eq!(tcp.check().unwrap_err().field, "transport.host");
        assert!(serde_json::from_str::<Transport>(r#"{"kind": "can_bus"}"#).is_err());
    }
}
