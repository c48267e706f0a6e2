//! A Modbus TCP meter that answers every holding-register read with zeros
//! and counts the requests by their first register: a test knows from the
//! meter's side how many reads of a block were answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ohmnibus::domain::ids::DeviceId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The COUNTIS E43's line voltage U12, the first register of its real-time
/// block (E43/E44 manual, communication table: 0xC552, U32, V/100): the
/// block whose answered reads the tests count.
pub(crate) const U12_ADDRESS: u16 = 0xC552;
pub(crate) const U12_OBIS: &str = "1-1:132.7.0";

/// Distinct real-time reads of a device stored as its own, and held.
pub(crate) const STORED: &str = "SELECT count(DISTINCT read_at) FROM readings WHERE device_id = $1 AND obis = $2";
pub(crate) const HELD: &str = "SELECT count(DISTINCT read_at) FROM held_readings WHERE device_id = $1 AND obis = $2";

/// Distinct real-time (U12) reads of `device` that `query` ([`STORED`],
/// [`HELD`]) counts.
pub(crate) async fn polls_in(pool: &sqlx::PgPool, query: &'static str, device: DeviceId) -> usize {
    let count: i64 = sqlx::query_scalar(query)
        .bind(device)
        .bind(U12_OBIS)
        .fetch_one(pool)
        .await
        .unwrap();
    count as usize
}

/// Requests answered, by first register.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answered(Arc<Mutex<HashMap<u16, usize>>>);

impl Answered {
    /// Reads of the block starting at `address` answered so far.
    pub(crate) fn at(&self, address: u16) -> usize {
        self.0.lock().unwrap().get(&address).copied().unwrap_or(0)
    }

    /// Every request answered so far.
    pub(crate) fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }
}

/// Starts the meter on a free port.
pub(crate) async fn counting_meter() -> (u16, Answered) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = Answered::default();
    let counted = answered.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_reads(stream, counted.clone()));
        }
    });
    (port, answered)
}

async fn answer_reads(mut stream: TcpStream, answered: Answered) {
    let mut header = [0u8; 7];
    while stream.read_exact(&mut header).await.is_ok() {
        let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let mut pdu = vec![0u8; length.saturating_sub(1)];
        if stream.read_exact(&mut pdu).await.is_err() || pdu.len() < 5 {
            return;
        }
        let start = u16::from_be_bytes([pdu[1], pdu[2]]);
        let count = usize::from(u16::from_be_bytes([pdu[3], pdu[4]]));
        let mut answer = header.to_vec();
        answer[4..6].copy_from_slice(&u16::try_from(3 + 2 * count).unwrap().to_be_bytes());
        answer.extend([3, u8::try_from(2 * count).unwrap()]);
        answer.extend(std::iter::repeat_n(0u8, 2 * count));
        if stream.write_all(&answer).await.is_err() {
            return;
        }
        // Counted once the answer is on its way: a read the meter answered.
        *answered.0.lock().unwrap().entry(start).or_default() += 1;
    }
}
