//! Who may hold one of the engine's connections, decided at `accept` before any byte is read.
//!
//! All connections together stay under the engine's connection cap, which [`connection_cap`] derives from the
//! descriptor limit (so the cap, not `EMFILE`, is what a flood meets). And per source — an IPv4 address, an IPv6
//! /64, which one host can hold as easily as one address — connections that have not authenticated yet (in their
//! TLS handshake, waiting for their first message or request, or on the REST API without a valid token) are
//! bounded twice:
//! - at most [`MAX_PREAUTH_CONNECTIONS_PER_SOURCE`] are held; beyond it a new connection is closed at once;
//! - at most [`MAX_PREAUTH_HANDSHAKES_PER_SOURCE`] of them get past their first byte (TLS handshake, first
//!   message); the others wait their turn ([`Admitted::wait_turn`]) holding a few hundred bytes, so a burst of
//!   honest connections from one host (an agent dialing a leg per stream) goes through, while one host's silent or
//!   slow connections cost at most that many handshakes' memory.
//!
//! A connection leaves both counts once it is [`Admitted::authenticated`].
//!
//! ```
//! use std::net::IpAddr;
//! use std::sync::Arc;
//! use rstream::engine::admission::Admission;
//! use rstream::engine::metrics::Metrics;
//! use rstream::limits::MAX_PREAUTH_CONNECTIONS_PER_SOURCE;
//!
//! let (admission, metrics) = (Admission::new(1000), Arc::new(Metrics::default()));
//! let host: IpAddr = "192.0.2.7".parse().unwrap();
//! let mut held: Vec<_> =
//!     (0..MAX_PREAUTH_CONNECTIONS_PER_SOURCE).map(|_| admission.admit(&metrics, host).unwrap()).collect();
//! assert!(admission.admit(&metrics, host).is_err(), "the source is at its limit");
//! held[0].authenticated(); // an authenticated connection no longer counts
//! assert!(admission.admit(&metrics, host).is_ok());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use async_lock::{Semaphore, SemaphoreGuardArc};

use super::metrics::{Metrics, Permit};
use crate::limits::{
    ENGINE_FDS_PER_CONNECTION, ENGINE_RESERVED_FDS, MAX_ENGINE_CONNECTIONS, MAX_PREAUTH_CONNECTIONS_PER_SOURCE,
    MAX_PREAUTH_HANDSHAKES_PER_SOURCE,
};

/// The connection cap for a soft descriptor limit of `nofile`: [`MAX_ENGINE_CONNECTIONS`], or fewer when the
/// descriptors left after [`ENGINE_RESERVED_FDS`] do not allow it (at least 1).
pub fn connection_cap(nofile: u64) -> usize {
    let fds = nofile.saturating_sub(ENGINE_RESERVED_FDS) / ENGINE_FDS_PER_CONNECTION;
    usize::try_from(fds).unwrap_or(usize::MAX).clamp(1, MAX_ENGINE_CONNECTIONS)
}

/// The descriptor limit that lets the engine reach [`MAX_ENGINE_CONNECTIONS`].
pub fn wanted_nofile() -> u64 {
    MAX_ENGINE_CONNECTIONS as u64 * ENGINE_FDS_PER_CONNECTION + ENGINE_RESERVED_FDS
}

/// Where a connection comes from, as far as the per-source limits are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address (also when it arrives IPv4-mapped on an IPv6 socket).
    V4([u8; 4]),
    /// The /64 prefix of an IPv6 address: one host is handed a whole /64.
    V6Prefix([u8; 8]),
}

impl Source {
    /// The source of a peer at `ip`.
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Source::V6Prefix(prefix)
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::V4(octets) => write!(f, "{}", std::net::Ipv4Addr::from(*octets)),
            Source::V6Prefix(prefix) => {
                let mut octets = [0; 16];
                octets[..8].copy_from_slice(prefix);
                write!(f, "{}/64", std::net::Ipv6Addr::from(octets))
            }
        }
    }
}

/// Why a connection was refused at accept.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The engine holds its connection cap.
    Full(usize),
    /// The source holds [`MAX_PREAUTH_CONNECTIONS_PER_SOURCE`] unauthenticated connections.
    SourceBusy(Source),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Full(cap) => write!(f, "engine at its connection cap ({cap})"),
            Refused::SourceBusy(source) => write!(
                f,
                "{source} already has {MAX_PREAUTH_CONNECTIONS_PER_SOURCE} connections that have not authenticated"
            ),
        }
    }
}

/// One source's unauthenticated connections: how many are held, and the turns past the first byte.
struct SourceState {
    held: usize,
    turns: Arc<Semaphore>,
}

type Sources = Arc<Mutex<HashMap<Source, SourceState>>>;

fn lock(sources: &Sources) -> MutexGuard<'_, HashMap<Source, SourceState>> {
    sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The admission rules of one engine.
pub struct Admission {
    max_connections: usize,
    sources: Sources,
}

/// An admitted connection: its place under the connection cap and, until it authenticates, under its source's.
pub struct Admitted {
    _connection: Permit,
    preauth: Option<PreAuth>,
}

/// One unauthenticated connection of a source, and its turn once it has one; released on drop.
struct PreAuth {
    source: Source,
    sources: Sources,
    turns: Arc<Semaphore>,
    turn: Option<SemaphoreGuardArc>,
}

impl Admission {
    /// Rules with a cap of `max_connections` connections in all.
    pub fn new(max_connections: usize) -> Admission {
        Admission { max_connections, sources: Arc::default() }
    }

    /// The connection cap.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Admits a new connection from `ip`, unauthenticated, or says why not.
    pub fn admit(&self, metrics: &Arc<Metrics>, ip: IpAddr) -> Result<Admitted, Refused> {
        let source = Source::of(ip);
        let preauth = {
            let mut sources = lock(&self.sources);
            let state = sources.entry(source).or_insert_with(|| SourceState {
                held: 0,
                turns: Arc::new(Semaphore::new(MAX_PREAUTH_HANDSHAKES_PER_SOURCE)),
            });
            if state.held >= MAX_PREAUTH_CONNECTIONS_PER_SOURCE {
                return Err(Refused::SourceBusy(source));
            }
            state.held += 1;
            let turns = Arc::clone(&state.turns);
            PreAuth { source, sources: Arc::clone(&self.sources), turns, turn: None }
        };
        let connection = metrics.try_connection(self.max_connections).ok_or(Refused::Full(self.max_connections))?;
        Ok(Admitted { _connection: connection, preauth: Some(preauth) })
    }

    /// Unauthenticated connections held by the source of `ip` now.
    pub fn unauthenticated_from(&self, ip: IpAddr) -> usize {
        lock(&self.sources).get(&Source::of(ip)).map_or(0, |state| state.held)
    }
}

impl Admitted {
    /// Waits until this connection may go past its first byte: fewer than [`MAX_PREAUTH_HANDSHAKES_PER_SOURCE`]
    /// unauthenticated connections of its source are. At once for an authenticated one. The caller bounds the wait
    /// with the connection's own deadline.
    pub async fn wait_turn(&mut self) {
        if let Some(preauth) = &mut self.preauth {
            if preauth.turn.is_none() {
                preauth.turn = Some(preauth.turns.acquire_arc().await);
            }
        }
    }

    /// The connection authenticated (or its first message went to a handler that checks it at once and closes a
    /// refused peer): it no longer counts against its source.
    pub fn authenticated(&mut self) {
        self.preauth = None;
    }

    /// Whether [`Admitted::authenticated`] was called.
    pub fn is_authenticated(&self) -> bool {
        self.preauth.is_none()
    }
}

impl Drop for PreAuth {
    fn drop(&mut self) {
        self.turn = None;
        let mut sources = lock(&self.sources);
        if let Some(state) = sources.get_mut(&self.source) {
            state.held -= 1;
            if state.held == 0 {
                sources.remove(&self.source); // the map holds only sources with connections
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sources_are_addresses_for_ipv4_and_slash_64s_for_ipv6() {
        assert_eq!(Source::of(ip("192.0.2.1")), Source::of(ip("::ffff:192.0.2.1")));
        assert_ne!(Source::of(ip("192.0.2.1")), Source::of(ip("192.0.2.2")));
        assert_eq!(Source::of(ip("2001:db8:1:2::1")), Source::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(Source::of(ip("2001:db8:1:2::1")), Source::of(ip("2001:db8:1:3::1")));
        assert_eq!(Source::of(ip("2001:db8:1:2::1")).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn each_source_has_its_own_limit_and_authenticated_or_closed_connections_leave_it() {
        let (admission, metrics) = (Admission::new(10_000), Arc::new(Metrics::default()));
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let mut held: Vec<Admitted> =
            (0..MAX_PREAUTH_CONNECTIONS_PER_SOURCE).map(|_| admission.admit(&metrics, a).unwrap()).collect();
        assert_eq!(admission.admit(&metrics, a).err(), Some(Refused::SourceBusy(Source::of(a))));
        assert!(admission.admit(&metrics, b).is_ok(), "another source is not affected");
        held.pop();
        let mut again = admission.admit(&metrics, a).expect("a closed connection frees its slot");
        again.authenticated();
        assert!(again.is_authenticated());
        assert_eq!(admission.unauthenticated_from(a), MAX_PREAUTH_CONNECTIONS_PER_SOURCE - 1);
        drop(held);
        assert_eq!(admission.unauthenticated_from(a), 0);
        assert!(lock(&admission.sources).is_empty(), "sources without connections are forgotten");
    }

    #[test]
    fn only_so_many_of_a_sources_connections_get_past_their_first_byte_at_once() {
        let (admission, metrics) = (Admission::new(10_000), Arc::new(Metrics::default()));
        let a = ip("192.0.2.1");
        let mut going: Vec<Admitted> = (0..MAX_PREAUTH_HANDSHAKES_PER_SOURCE)
            .map(|_| {
                let mut admitted = admission.admit(&metrics, a).unwrap();
                block_on(admitted.wait_turn());
                admitted
            })
            .collect();
        let mut waiting = admission.admit(&metrics, a).unwrap();
        assert!(block_on(poll_once(waiting.wait_turn())).is_none(), "the next one waits its turn");
        let mut other = admission.admit(&metrics, ip("192.0.2.2")).unwrap();
        assert!(block_on(poll_once(other.wait_turn())).is_some(), "another source has its own turns");
        going[0].authenticated(); // an authenticated connection gives its turn back
        assert!(block_on(poll_once(waiting.wait_turn())).is_some());
        going.truncate(1);
    }

    #[test]
    fn the_connection_cap_holds_whatever_the_source() {
        let (admission, metrics) = (Admission::new(2), Arc::new(Metrics::default()));
        let mut held: Vec<Admitted> =
            ["192.0.2.1", "192.0.2.2"].iter().map(|s| admission.admit(&metrics, ip(s)).unwrap()).collect();
        held.iter_mut().for_each(Admitted::authenticated);
        let third = ip("192.0.2.3");
        assert_eq!(admission.admit(&metrics, third).err(), Some(Refused::Full(2)));
        assert_eq!(admission.unauthenticated_from(third), 0, "a refused connection leaves no count behind");
    }

    #[test]
    fn the_cap_leaves_room_for_the_engines_own_descriptors() {
        assert_eq!(connection_cap(1024), 1024 - ENGINE_RESERVED_FDS as usize);
        assert_eq!(connection_cap(10), 1);
        assert_eq!(connection_cap(u64::MAX), MAX_ENGINE_CONNECTIONS);
        assert_eq!(connection_cap(wanted_nofile()), MAX_ENGINE_CONNECTIONS);
    }
}
