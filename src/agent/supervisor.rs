//! The agent's outer loop: run a session, and when it ends, wait (backoff) and run another.
//!
//! Refusals that retrying cannot fix — the engine rejecting the token or its permissions (`UNAUTHORIZED`), our
//! protocol version, or a tunnel feature it does not offer (`FEATURE_NOT_AVAILABLE`) — stop the agent at once;
//! so do the HTTP-like codes of pre-1.4 engines (401, 403, 400). Tunnel names are checked before connecting, so
//! an `INVALID_REQUEST` for a tunnel means its name is in use by another tunnel (as upstream answers; 409 before
//! 1.4): that stops the agent too when it is refused on the first registration and [`Retry::name_in_use`] is
//! off; once the tunnel has been online, a refused name is most likely this agent's own predecessor channel that
//! the engine has not timed out yet, and is retried. Everything else (engine unreachable, restarted) is retried
//! until the agent is dropped, unless [`Retry::enabled`] is false.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use async_lock::Semaphore;

use super::events::{ignore_events, EventSink};
use super::handler::StreamHandler;
use super::leg_pool::LegPool;
use super::session::Session;
use crate::backoff::Backoff;
use crate::limits::{HEARTBEAT_INTERVAL, MAX_AGENT_STREAMS, MAX_TUNNELS_PER_CLIENT};
use crate::proto::rstream::{opt_str, tunnel_name_refusal, Error as WireError, ErrorCode, TunnelProperties};
use crate::proto::rstream::{MAX_HEARTBEAT_TIMEOUT_MS, MIN_HEARTBEAT_INTERVAL_MS};
use crate::transport::EngineEndpoint;

/// Why the agent stopped (or a session ended).
#[derive(Clone, Debug)]
pub enum AgentError {
    /// The agent was configured wrongly (no tunnels, too many).
    Config(String),
    /// The engine could not be reached, or the control channel could not be opened.
    Connect(String),
    /// The engine refused the control channel.
    Refused(WireError),
    /// The engine refused a tunnel.
    TunnelRefused {
        /// Tunnel name.
        name: String,
        /// The engine's error.
        error: WireError,
    },
    /// An open session was lost.
    Lost(String),
}

impl AgentError {
    /// Whether retrying cannot help: a bad configuration, the token refused or not allowed, a protocol version
    /// the engine will not serve, or a tunnel the engine will never accept as asked.
    pub fn is_permanent(&self) -> bool {
        use ErrorCode::*;
        let refused = |e: &WireError, also: &[ErrorCode], legacy: &[i32]| {
            let coded = [Unauthorized, ProtocolVersionMissing, ProtocolVersionInvalid, ProtocolVersionIncompatible];
            coded.iter().chain(also).any(|c| e.is(*c)) || legacy.contains(&e.code)
        };
        match self {
            AgentError::Config(_) => true,
            AgentError::Refused(e) => refused(e, &[], &[401, 403]),
            AgentError::TunnelRefused { error: e, .. } => refused(e, &[FeatureNotAvailable], &[400, 401, 403]),
            AgentError::Connect(_) | AgentError::Lost(_) => false,
        }
    }

    /// Whether the engine refused a tunnel because its name is in use by another tunnel: `INVALID_REQUEST`
    /// (the name itself was checked before connecting), or 409 from a pre-1.4 engine.
    pub fn is_name_in_use(&self) -> bool {
        matches!(self, AgentError::TunnelRefused { error, .. } if error.is(ErrorCode::InvalidRequest) || error.code == 409)
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Config(m) | AgentError::Connect(m) | AgentError::Lost(m) => f.write_str(m),
            AgentError::Refused(e) => write!(f, "the engine refused the control channel: {e}"),
            AgentError::TunnelRefused { name, error } => write!(f, "the engine refused tunnel {name:?}: {error}"),
        }
    }
}

impl std::error::Error for AgentError {}

/// Reconnect policy.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Reconnect after a lost or failed session (default true); false = stop at the first failure.
    pub enabled: bool,
    /// Longest wait between attempts (default `limits::RECONNECT_MAX`).
    pub max_interval: Option<Duration>,
    /// Keep retrying when the first registration finds a tunnel name in use (default true: a restarted device
    /// waits until the engine drops its predecessor); false = stop with [`AgentError::is_name_in_use`].
    pub name_in_use: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { enabled: true, max_interval: None, name_in_use: true }
    }
}

/// A device agent serving a set of tunnels with one handler.
pub struct Agent<H> {
    endpoint: Arc<EngineEndpoint>,
    tunnels: Vec<TunnelProperties>,
    handler: Arc<H>,
    events: EventSink,
    retry: Retry,
    heartbeat_interval: Duration,
}

impl<H: StreamHandler> Agent<H> {
    /// An agent for `tunnels` on `endpoint`, handing every stream to `handler`.
    pub fn new(endpoint: EngineEndpoint, tunnels: Vec<TunnelProperties>, handler: H) -> Self {
        Agent {
            endpoint: Arc::new(endpoint),
            tunnels,
            handler: Arc::new(handler),
            events: ignore_events(),
            retry: Retry::default(),
            heartbeat_interval: HEARTBEAT_INTERVAL,
        }
    }

    /// Reports events to `sink`.
    pub fn with_events(mut self, sink: EventSink) -> Self {
        self.events = sink;
        self
    }

    /// Uses `retry` as reconnect policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Asks the engine for heartbeats every `interval` (default [`HEARTBEAT_INTERVAL`]), kept within the
    /// protocol's bounds (100 ms ..= 15 min); the engine's timeout is then three intervals.
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        let bounds = (u64::from(MIN_HEARTBEAT_INTERVAL_MS), u64::from(MAX_HEARTBEAT_TIMEOUT_MS));
        let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).clamp(bounds.0, bounds.1);
        self.heartbeat_interval = Duration::from_millis(ms);
        self
    }

    /// Runs until a permanent failure (or any failure without retry); returns it. Drop the future to stop.
    pub async fn run(self) -> AgentError {
        if let Err(e) = self.check() {
            return e;
        }
        let session = Session {
            legs: LegPool::new(self.endpoint.clone()),
            endpoint: self.endpoint,
            tunnels: Arc::new(self.tunnels),
            handler: self.handler,
            events: self.events.clone(),
            streams: Arc::new(Semaphore::new(MAX_AGENT_STREAMS)),
            stream_count: Arc::new(AtomicU64::new(0)),
            heartbeat_interval: self.heartbeat_interval,
        };
        let mut backoff = Backoff::new(self.retry.max_interval);
        let mut ever_registered = false;
        loop {
            let (registered, error) = session.run().await;
            if registered {
                backoff.reset();
                ever_registered = true;
            }
            let name_refused = error.is_name_in_use() && !ever_registered && !self.retry.name_in_use;
            if error.is_permanent() || name_refused || !self.retry.enabled {
                return error;
            }
            let delay = backoff.next_delay();
            log_debug!("reconnecting in {delay:?} after: {error}");
            async_io::Timer::after(delay).await;
        }
    }

    fn check(&self) -> Result<(), AgentError> {
        if self.tunnels.is_empty() {
            return Err(AgentError::Config("an agent needs at least one tunnel".into()));
        }
        if self.tunnels.len() > MAX_TUNNELS_PER_CLIENT {
            let n = self.tunnels.len();
            return Err(AgentError::Config(format!("{n} tunnels, at most {MAX_TUNNELS_PER_CLIENT} per agent")));
        }
        if let Some(t) = self.tunnels.iter().find(|t| opt_str(&t.name).is_none_or(str::is_empty)) {
            return Err(AgentError::Config(format!("every tunnel needs a name: {t:?}")));
        }
        if let Some(refusal) = self.tunnels.iter().find_map(|t| tunnel_name_refusal(opt_str(&t.name)?)) {
            return Err(AgentError::Config(refusal));
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "engine"))]
#[path = "agent_tests.rs"]
mod tests;
