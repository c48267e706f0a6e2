//! Test fixtures for the session: a line that records what the client
//! sent, at which rate, and when it switched; and a meter that follows a
//! script of raw bytes on the other end.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::time::Instant;

use super::frame::{Command, CommandKind, DataBlock};
use super::line::LineSpeed;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineEvent {
    Sent { baud: u32, bytes: Vec<u8> },
    Switched { baud: u32 },
}

/// Shared log of a [`RecordingLine`], with the (paused) clock's time of
/// each event.
#[derive(Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<(Instant, LineEvent)>>>);

impl Log {
    fn push(&self, event: LineEvent) {
        self.0.lock().unwrap().push((Instant::now(), event));
    }

    pub(crate) fn events(&self) -> Vec<LineEvent> {
        self.0.lock().unwrap().iter().map(|(_, event)| event.clone()).collect()
    }

    pub(crate) fn timed(&self) -> Vec<(Instant, LineEvent)> {
        self.0.lock().unwrap().clone()
    }
}

/// The client's end of an in-memory line with a local baud rate, as a
/// serial port has.
pub(crate) struct RecordingLine {
    inner: DuplexStream,
    baud: u32,
    log: Log,
}

/// A line at `baud`, the meter at its other end, and the line's log.
pub(crate) fn line(baud: u32) -> (RecordingLine, Meter<DuplexStream>, Log) {
    let (client, meter) = tokio::io::duplex(1 << 20);
    let log = Log::default();
    let line = RecordingLine {
        inner: client,
        baud,
        log: log.clone(),
    };
    (line, Meter(meter), log)
}

impl LineSpeed for RecordingLine {
    fn set_baud(&mut self, baud: u32) -> io::Result<()> {
        self.baud = baud;
        self.log.push(LineEvent::Switched { baud });
        Ok(())
    }

    fn has_baud_rate(&self) -> bool {
        true
    }
}

impl AsyncRead for RecordingLine {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RecordingLine {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            let event = LineEvent::Sent {
                baud: self.baud,
                bytes: buf[..n].to_vec(),
            };
            self.log.push(event);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The meter's end: expects exact bytes and answers with raw bytes.
pub(crate) struct Meter<T>(pub(crate) T);

impl<T: AsyncRead + AsyncWrite + Unpin> Meter<T> {
    /// Reads exactly `expected.len()` bytes and checks them.
    pub(crate) async fn expect(&mut self, expected: &[u8]) {
        let mut got = vec![0; expected.len()];
        if let Err(error) = self.0.read_exact(&mut got).await {
            panic!("meter waited for {:?}: {error}", expected.escape_ascii().to_string());
        }
        assert_eq!(
            got.escape_ascii().to_string(),
            expected.escape_ascii().to_string(),
            "the client sent something else"
        );
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).await.unwrap();
    }

    /// Whatever the client sends until it closes the line.
    pub(crate) async fn rest(mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.0.read_to_end(&mut rest).await.unwrap();
        rest
    }
}

/// `STX text ETX|EOT BCC`, BCC from the codec (tested against hand
/// computations in `frame.rs`).
pub(crate) fn block(text: &str, last: bool) -> Vec<u8> {
    DataBlock {
        text: text.into(),
        last,
    }
    .encode()
    .unwrap()
}

/// The same block with its BCC spoiled.
pub(crate) fn corrupted(text: &str, last: bool) -> Vec<u8> {
    let mut frame = block(text, last);
    *frame.last_mut().unwrap() ^= 0x01;
    frame
}

/// `SOH kind STX data ETX BCC`.
pub(crate) fn command(kind: CommandKind, data: &str) -> Vec<u8> {
    Command::new(kind, data).encode().unwrap()
}

/// The meter end of a [`line`].
pub(crate) type DuplexMeter = Meter<DuplexStream>;
