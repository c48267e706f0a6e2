//! How the head-end reaches a bus: the settings stored with each bus.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Transport of a bus. Stored as JSON with a `kind` tag, exactly as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transport {
    /// Modbus TCP (MBAP header), e.g. a meter with an Ethernet port.
    ModbusTcp {
        #[serde(deserialize_with = "named::host")]
        host: String,
        #[serde(deserialize_with = "named::port")]
        #[schema(maximum = 65535)]
        port: u16,
    },
    /// Modbus RTU frames carried over TCP by a transparent serial gateway.
    RtuOverTcp {
        #[serde(deserialize_with = "named::host")]
        host: String,
        #[serde(deserialize_with = "named::port")]
        #[schema(maximum = 65535)]
        port: u16,
    },
    /// Modbus RTU on a local serial line (RS485 adapter).
    SerialRtu {
        #[serde(deserialize_with = "named::path")]
        path: String,
        #[serde(deserialize_with = "named::baud")]
        baud: u32,
        #[serde(deserialize_with = "named::parity")]
        parity: Parity,
        #[serde(deserialize_with = "named::stop_bits")]
        stop_bits: u8,
    },
    /// IEC 62056-21 on a local serial line (RS485 multi-drop, RS232): 7E1,
    /// sign-on at `initial_baud` (300 by the standard), then the rate the
    /// meter offers, at most `max_baud`. Each device is selected by its
    /// device address.
    Iec62056Serial {
        #[serde(deserialize_with = "named::path")]
        path: String,
        #[serde(default = "iec_initial_baud", deserialize_with = "named::initial_baud")]
        initial_baud: u32,
        #[serde(default = "iec_max_baud", deserialize_with = "named::max_baud")]
        max_baud: u32,
    },
    /// An IEC 62056-21 optical probe (one meter per probe): like
    /// `iec62056_serial`, with a settle delay after each baud switch, which
    /// probes behind USB converters need.
    Optical {
        #[serde(deserialize_with = "named::path")]
        path: String,
        #[serde(default = "iec_max_baud", deserialize_with = "named::max_baud")]
        max_baud: u32,
        #[serde(default = "optical_settle_ms", deserialize_with = "named::settle_ms")]
        settle_ms: u32,
    },
    /// IEC 62056-21 over TCP (a meter's Ethernet port or a transparent
    /// gateway): no baud switch.
    Iec62056Tcp {
        #[serde(deserialize_with = "named::host")]
        host: String,
        #[serde(deserialize_with = "named::port")]
        #[schema(maximum = 65535)]
        port: u16,
    },
}

/// A field of a transport, deserialized with its name in the error: inside
/// a `kind`-tagged enum serde no longer knows which field it is reading,
/// and a client told `must be a number` deserves to know it was `port`.
macro_rules! named_fields {
    ($($name:ident: $type:ty),* $(,)?) => {
        mod named {
            use super::*;
            $(
                pub(super) fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<$type, D::Error> {
                    <$type>::deserialize(deserializer).map_err(|error| {
                        serde::de::Error::custom(format_args!(concat!(stringify!($name), ": {}"), error))
                    })
                }
            )*
        }
    };
}

named_fields!(
    host: String,
    port: u16,
    path: String,
    baud: u32,
    parity: Parity,
    stop_bits: u8,
    initial_baud: u32,
    max_baud: u32,
    settle_ms: u32,
);

/// The protocol a bus speaks, which decides how its devices are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Modbus,
    Iec62056,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Modbus => "modbus",
            Protocol::Iec62056 => "iec62056",
        }
    }
}

fn iec_initial_baud() -> u32 {
    300
}

fn iec_max_baud() -> u32 {
    9600
}

fn optical_settle_ms() -> u32 {
    300
}

/// Baud rates of IEC 62056-21 (mode A stays at 300; modes B and C go up to 19200).
pub const IEC_BAUD_RATES: [u32; 7] = [300, 600, 1200, 2400, 4800, 9600, 19200];

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
            Transport::Iec62056Serial { .. } => "iec62056_serial",
            Transport::Optical { .. } => "optical",
            Transport::Iec62056Tcp { .. } => "iec62056_tcp",
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self {
            Transport::ModbusTcp { .. } | Transport::RtuOverTcp { .. } | Transport::SerialRtu { .. } => {
                Protocol::Modbus
            }
            Transport::Iec62056Serial { .. } | Transport::Optical { .. } | Transport::Iec62056Tcp { .. } => {
                Protocol::Iec62056
            }
        }
    }

    /// Whether one line carries one device only (an optical probe).
    pub fn single_device(&self) -> bool {
        matches!(self, Transport::Optical { .. })
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
            Transport::ModbusTcp { host, port }
            | Transport::RtuOverTcp { host, port }
            | Transport::Iec62056Tcp { host, port } => {
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
            Transport::Iec62056Serial {
                path,
                initial_baud,
                max_baud,
            } => {
                if path.trim().is_empty() {
                    return fail("transport.path", "must name a serial device, e.g. /dev/ttyUSB0");
                }
                for (field, baud) in [
                    ("transport.initial_baud", initial_baud),
                    ("transport.max_baud", max_baud),
                ] {
                    if !IEC_BAUD_RATES.contains(baud) {
                        return fail(field, "must be one of 300, 600, 1200, 2400, 4800, 9600, 19200");
                    }
                }
                if initial_baud > max_baud {
                    return fail("transport.max_baud", "must not be below initial_baud");
                }
            }
            Transport::Optical {
                path,
                max_baud,
                settle_ms,
            } => {
                if path.trim().is_empty() {
                    return fail(
                        "transport.path",
                        "must name the probe's serial device, e.g. /dev/ttyUSB0",
                    );
                }
                if !IEC_BAUD_RATES.contains(max_baud) {
                    return fail(
                        "transport.max_baud",
                        "must be one of 300, 600, 1200, 2400, 4800, 9600, 19200",
                    );
                }
                if *settle_ms > 5_000 {
                    return fail("transport.settle_ms", "must be 0-5000 ms");
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
            Transport::Iec62056Serial {
                path,
                initial_baud,
                max_baud,
            } => format!("IEC 62056-21 {path} 7E1 {initial_baud}-{max_baud}"),
            Transport::Optical { path, max_baud, .. } => format!("Optical probe {path} 7E1 300-{max_baud}"),
            Transport::Iec62056Tcp { host, port } => format!("IEC 62056-21 over TCP {host}:{port}"),
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

    #[test]
    fn iec_kinds_take_the_standards_defaults_and_refuse_other_rates() {
        let line: Transport = serde_json::from_str(r#"{"kind": "iec62056_serial", "path": "/dev/ttyS1"}"#).unwrap();
        assert_eq!(
            line,
            Transport::Iec62056Serial {
                path: "/dev/ttyS1".into(),
                initial_baud: 300,
                max_baud: 9600
            }
        );
        assert_eq!(line.protocol(), Protocol::Iec62056);
        assert!(line.check().is_ok());
        let probe: Transport =
            serde_json::from_str(r#"{"kind": "optical", "path": "/dev/ttyUSB0", "max_baud": 19200}"#).unwrap();
        assert!(probe.check().is_ok() && probe.single_device());
        let too_fast: Transport =
            serde_json::from_str(r#"{"kind": "iec62056_serial", "path": "/dev/ttyS1", "max_baud": 38400}"#).unwrap();
        assert_eq!(too_fast.check().unwrap_err().field, "transport.max_baud");
        let tcp: Transport =
            serde_json::from_str(r#"{"kind": "iec62056_tcp", "host": "10.0.0.5", "port": 0}"#).unwrap();
        assert_eq!(tcp.check().unwrap_err().field, "transport.port");
        assert_eq!(
            Transport::ModbusTcp {
                host: "h".into(),
                port: 1
            }
            .protocol(),
            Protocol::Modbus
        );
    }
}
