//! The agent's outer loop: run a session, and when it ends, wait (backoff) and run another.
//!
//! Refusals that retrying cannot fix — the engine rejecting the token (401) or its permissions (403), or a
//! tunnel's properties (400) — stop the agent at once. A tunnel name in use by another tunnel (409, or upstream's
//! `INVALID_REQUEST`) stops it too when it is refused on the first registration and [`Retry::name_in_use`] is
//! off; once the tunnel has been online, a refused name is most likely this agent's own predecessor channel that
//! the engine has not timed out yet, and is retried. Everything else (engine unreachable, restarted) is retried
//! until the agent is dropped, unless [`Retry::enabled`] is false.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use async_lock::Semaphore;

use super::backoff::Backoff;
use super::events::{ignore_events, EventSink};
use super::handler::StreamHandler;
use super::leg_pool::LegPool;
use super::session::Session;
use crate::limits::{MAX_AGENT_STREAMS, MAX_TUNNELS_PER_CLIENT};
use crate::proto::rstream::{opt_str, Error as WireError, TunnelProperties};
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
    /// Whether retrying cannot help: a bad configuration, the token refused (401) or not allowed (403), or a
    /// tunnel the engine will never accept as asked (400).
    pub fn is_permanent(&self) -> bool {
        match self {
            AgentError::Config(_) => true,
            AgentError::Refused(e) => matches!(e.code, 401 | 403),
            AgentError::TunnelRefused { error: e, .. } => matches!(e.code, 400 | 401 | 403),
            AgentError::Connect(_) | AgentError::Lost(_) => false,
        }
    }

    /// Whether the engine refused a tunnel because its name is in use by another tunnel: 409 from this engine,
    /// `INVALID_REQUEST` (2000) from upstream's.
    pub fn is_name_in_use(&self) -> bool {
        matches!(self, AgentError::TunnelRefused { error, .. } if matches!(error.code, 409 | INVALID_REQUEST))
    }
}

/// Upstream's `ErrorCode.INVALID_REQUEST`, what its engines answer for a tunnel name held by another subject.
const INVALID_REQUEST: i32 = 2000;

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
        Ok(())
    }
}

#[cfg(all(test, feature = "engine"))]
#[path = "agent_tests.rs"]
mod tests;
