//! Failed authentication, counted per client address: after
//! [`MAX_FAILURES`] failures within [`WINDOW`] of an address's first, the
//! address is refused (429, `Retry-After`) every credential, right or
//! wrong, until the window ends, without the database being asked. A
//! missing credential is no guess and is not counted, nor is a success.
//!
//! The address is the peer of the TCP connection: the server trusts no
//! `X-Forwarded-For`, which any client can send. Behind a reverse proxy
//! every client thus shares the proxy's address and its allowance
//! (docs/DEPLOYMENT.md). IPv6 clients are counted per /64, the block one
//! host is usually given. The counts are kept in memory, per instance, for
//! at most [`MAX_ADDRESSES`] addresses: a full table first forgets ended
//! windows, then the oldest.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};

/// Failed authentications an address may make per window.
pub(crate) const MAX_FAILURES: u32 = 10;
/// How long an address's failures count, from its first.
pub(crate) const WINDOW: Duration = Duration::seconds(60);
/// Addresses counted at once.
pub(crate) const MAX_ADDRESSES: usize = 10_000;

/// Who is counted: a client's address (an IPv6 one masked to its /64), or
/// `None` when the connection's peer is not known (a request handed to the
/// router in process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientAddress(pub Option<IpAddr>);

impl ClientAddress {
    pub(crate) fn of(peer: IpAddr) -> ClientAddress {
        ClientAddress(Some(match peer.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
            v4 => v4,
        }))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(ClientAddress(None), |ConnectInfo(peer)| ClientAddress::of(peer.ip())))
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: DateTime<Utc>,
    count: u32,
}

/// The failure counts of every address; cheap to clone (one shared table).
#[derive(Debug, Clone, Default)]
pub struct FailedAuthLimiter {
    table: Arc<Mutex<HashMap<ClientAddress, Failures>>>,
}

impl FailedAuthLimiter {
    /// `Err(seconds)` while `client` has used up its failures: try again
    /// in that many seconds (at least 1).
    pub(crate) fn check(&self, client: ClientAddress, now: DateTime<Utc>) -> Result<(), u64> {
        let mut table = self.table.lock().expect("limiter lock");
        let Some(failures) = table.get(&client).copied() else {
            return Ok(());
        };
        let ends = failures.since + WINDOW;
        if now >= ends {
            table.remove(&client);
            return Ok(());
        }
        if failures.count < MAX_FAILURES {
            return Ok(());
        }
        let left = (ends - now).num_milliseconds();
        Err(u64::try_from((left + 999) / 1000).unwrap_or(1).max(1))
    }

    /// Counts a failed authentication of `client`.
    pub(crate) fn record_failure(&self, client: ClientAddress, now: DateTime<Utc>) {
        let mut table = self.table.lock().expect("limiter lock");
        if !table.contains_key(&client) && table.len() >= MAX_ADDRESSES {
            table.retain(|_, failures| now < failures.since + WINDOW);
            if table.len() >= MAX_ADDRESSES
                && let Some(oldest) = table.iter().min_by_key(|(_, f)| f.since).map(|(client, _)| *client)
            {
                table.remove(&oldest);
            }
        }
        let failures = table.entry(client).or_insert(Failures { since: now, count: 0 });
        if now >= failures.since + WINDOW {
            *failures = Failures { since: now, count: 0 };
        }
        failures.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_ends() {
        let limiter = FailedAuthLimiter::default();
        let client = ClientAddress::of("192.0.2.7".parse().unwrap());
        let other = ClientAddress::of("192.0.2.8".parse().unwrap());
        for second in 0..i64::from(MAX_FAILURES) {
            assert_eq!(limiter.check(client, at(second)), Ok(()));
            limiter.record_failure(client, at(second));
        }
        assert_eq!(limiter.check(client, at(10)), Err(50));
        assert_eq!(limiter.check(client, at(59)), Err(1));
        assert_eq!(limiter.check(other, at(10)), Ok(()));
        assert_eq!(limiter.check(client, at(60)), Ok(()));
        limiter.record_failure(client, at(61));
        assert_eq!(limiter.check(client, at(61)), Ok(()));
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a = ClientAddress::of("2001:db8:1:2::1".parse().unwrap());
        let b = ClientAddress::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = ClientAddress::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            ClientAddress::of("::ffff:192.0.2.7".parse().unwrap()),
            ClientAddress::of("192.0.2.7".parse().unwrap())
        );
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = FailedAuthLimiter::default();
        for n in 0..(MAX_ADDRESSES as u32 + 5) {
            limiter.record_failure(ClientAddress(Some(IpAddr::from(n.to_be_bytes()))), at(0));
        }
        assert_eq!(limiter.table.lock().unwrap().len(), MAX_ADDRESSES);
    }
}
