//! The self-hosted relay: TLS listener with ALPN split, tunnel registry, stream routing, REST API, JWT auth.
//!
//! ```text
//! server      listeners + executor threads, one task per connection; descriptor limit
//! admission   connection cap, per-source cap on connections that have not authenticated
//! connection  TLS handshake, ALPN split, first-message dispatch (rstrm/1)
//! control     an agent's control channel: tunnels, heartbeats, liveness
//! streams     StreamReq / ProxyReq: pending streams, agent legs, splice
//! http_side   HTTP connections: published tunnel by SNI/Host, else the REST API
//! published   <name>.t.<host> → the tunnel's agent (404 / 401 / 502 pages, 308 to https for token_auth)
//! onward      a token_auth request as the device sees it: without the caller's token, one per connection
//! api         REST API (/api/auth, /api/tunnels, /api/clients, /metrics); filters, inventory: its JSON
//! watch       /api/sse and /api/websocket: one subscriber's event stream; events: the bus they read from;
//!             summary: the stream.summary of every stream
//! registry    clients, tunnels, pending streams (one mutex, never held across .await)
//! names       who owns a tunnel name (the registering token's subject), reserved through a grace period
//! name_store  those owners on disk, so a restart gives every owner its names back first
//! auth, jwt   HS256 tokens and rstream's permission names; revocation: the list of revoked token ids
//! state       state dir: generated CA + leaf certificate, HS256 secret
//! ```
//! Everything network-facing is bounded by [`crate::limits`] and every wait has a deadline.

pub mod admission;
pub mod api;
pub mod auth;
pub mod clock;
pub mod connection;
pub mod control;
pub mod events;
pub mod filters;
pub mod http_side;
pub mod ids;
pub mod inventory;
pub mod jwt;
pub mod metrics;
pub mod name_store;
pub mod names;
pub mod onward;
pub mod published;
pub mod registry;
pub mod revocation;
pub mod routing;
pub mod server;
pub mod splice;
pub mod state;
pub mod streams;
pub mod summary;
pub mod watch;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::limits::MAX_ENGINE_CONNECTIONS;
use crate::proto::rstream::{some_str, ServerDetails};
use admission::Admission;
use auth::Authorizer;
use metrics::{Gauges, Metrics};
use registry::TunnelRegistry;
use routing::PublicHosts;

/// Shared state of one running engine.
pub struct Engine {
    /// Clients, tunnels, pending streams.
    pub registry: Arc<TunnelRegistry>,
    /// Token verification.
    pub auth: Authorizer,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Public host names and port.
    pub hosts: PublicHosts,
    /// Connection caps applied at accept.
    pub admission: Admission,
}

impl Engine {
    /// A fresh engine with `secret` for tokens and `hosts` for published tunnels.
    pub fn new(secret: Vec<u8>, hosts: PublicHosts) -> Self {
        Engine {
            registry: Arc::default(),
            auth: Authorizer::new(secret),
            metrics: Arc::default(),
            hosts,
            admission: Admission::new(MAX_ENGINE_CONNECTIONS),
        }
    }

    /// Also refuses the tokens listed in `revocations` (`engine token revoke`).
    pub fn with_revocations(mut self, revocations: revocation::RevocationList) -> Self {
        self.auth = self.auth.with_revocations(revocations);
        self
    }

    /// Keeps a dropped tunnel's name reserved for its owner for `grace` (`engine serve --name-grace`).
    pub fn with_name_grace(mut self, grace: std::time::Duration) -> Self {
        self.registry = Arc::new(TunnelRegistry::with_name_grace(grace));
        self
    }

    /// What the engine tells agents about itself.
    pub fn server_details(&self) -> ServerDetails {
        ServerDetails {
            agent: some_str("rstream-rs engine"),
            channel: some_str("stable"),
            version: some_str(env!("CARGO_PKG_VERSION")),
            plan: some_str("self-hosted"),
            provider: some_str("self-hosted"),
            region: None,
            update: None,
        }
    }

    /// Counts a refused credential.
    pub fn note_auth_failure(&self) {
        self.metrics.auth_failures_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text for `/metrics`.
    pub fn render_metrics(&self) -> String {
        let (clients, tunnels, pending_streams) = self.registry.counts();
        let event_subscribers = self.registry.event_subscribers();
        self.metrics.render(&Gauges { clients, tunnels, pending_streams, event_subscribers })
    }
}
