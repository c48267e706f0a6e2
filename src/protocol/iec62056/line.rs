//! The line under a session: how its baud rate follows the protocol.
//!
//! IEC 62056-21 lines are 7E1 and start at 300 baud; in modes B and C both
//! sides change rate after the identification (`docs/PROTOCOLS.md`,
//! "Line"). On a serial port or an
//! optical probe the client switches its own UART. Behind a TCP gateway
//! the serial side belongs to the gateway, so nothing switches here.

use std::io;

use tokio::net::TcpStream;
use tokio_serial::{DataBits, FlowControl, Parity, SerialPort, SerialPortBuilderExt, SerialStream, StopBits};

/// A line whose local baud rate the session can change.
pub trait LineSpeed {
    /// Changes the local rate. Called by the session after the bytes sent
    /// at the old rate have had time to leave (the settle delay).
    fn set_baud(&mut self, baud: u32) -> io::Result<()>;

    /// Whether the line has a local rate at all. When false, the session
    /// does not wait a settle delay around [`LineSpeed::set_baud`], which
    /// is a no-op.
    fn has_baud_rate(&self) -> bool;
}

impl LineSpeed for SerialStream {
    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        self.set_baud_rate(baud).map_err(io::Error::from)
    }

    fn has_baud_rate(&self) -> bool {
        true
    }
}

/// A TCP connection to a transparent gateway or a meter's Ethernet port:
/// the far end's serial rate is configured there, not switched by us.
impl LineSpeed for TcpStream {
    fn set_baud(&mut self, _baud: u32) -> io::Result<()> {
        Ok(())
    }

    fn has_baud_rate(&self) -> bool {
        false
    }
}

/// Opens a serial port or optical probe for IEC 62056-21: 7 data bits,
/// even parity, 1 stop bit, no flow control, at `baud` (300 for a mode
/// A/B/C sign-on; some RS485 ports run at a fixed 9600, TH40C manual §1).
pub fn open_serial(path: &str, baud: u32) -> io::Result<SerialStream> {
    tokio_serial::new(path, baud)
        .data_bits(DataBits::Seven)
        .parity(Parity::Even)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .open_native_async()
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Linux pseudo-terminal keeps its own character format (it reads
    /// back 8N1 whatever was set), so 7E1 cannot be observed without
    /// hardware; the rate it does keep.
    #[tokio::test]
    async fn serial_lines_open_and_switch_rate() {
        let (_master, slave) = SerialStream::pair().expect("pseudo-terminal pair");
        let path = slave.name().expect("slave path");
        let mut port = open_serial(&path, 300).unwrap();
        assert!(port.has_baud_rate());
        assert_eq!(port.baud_rate().unwrap(), 300);
        port.set_baud(9600).unwrap();
        assert_eq!(port.baud_rate().unwrap(), 9600);
    }

    #[tokio::test]
    async fn tcp_streams_have_no_rate_to_switch() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        assert!(!stream.has_baud_rate());
        stream.set_baud(9600).unwrap();
    }
}
