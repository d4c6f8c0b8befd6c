//! What the agent reports while it runs: connection state, tunnel registration, streams.
//!
//! The agent calls one [`EventSink`] for each [`AgentEvent`], in order, from its own task; `forward` turns them
//! into the status block and connection lines, the webtty server into log lines. A sink must return quickly.

use std::net::IpAddr;
use std::sync::Arc;

use crate::proto::rstream::{ServerDetails, TunnelProperties};

/// One thing that happened to the agent.
#[derive(Clone, Debug)]
pub enum AgentEvent {
    /// Dialing the engine (first time or after a loss).
    Connecting {
        /// Engine address.
        engine: String,
    },
    /// The control channel is open.
    Connected {
        /// Engine-assigned client id.
        client_id: String,
        /// What the engine says about itself.
        server: ServerDetails,
    },
    /// The engine could not be reached or refused the control channel.
    ConnectionFailed {
        /// Why.
        error: String,
    },
    /// A tunnel is registered and reachable.
    Online {
        /// Properties as stored by the engine (with its id and host); boxed, the largest event by far.
        tunnel: Box<TunnelProperties>,
    },
    /// The engine refused a tunnel.
    TunnelFailed {
        /// The tunnel's name.
        name: String,
        /// Why.
        error: String,
    },
    /// The control channel was lost; the agent will retry unless told not to.
    Disconnected {
        /// Why.
        error: String,
    },
    /// A stream arrived for a tunnel and its leg is being dialed.
    StreamOpened {
        /// Sequence number of the stream in this process (starting at 1).
        idx: u64,
        /// Engine stream id.
        stream_id: String,
        /// Where the stream came from, if the engine said.
        source_ip: Option<IpAddr>,
    },
    /// A stream ended (its handler returned, or its leg could not be dialed).
    StreamClosed {
        /// Sequence number from [`AgentEvent::StreamOpened`].
        idx: u64,
    },
}

/// Receives the agent's events.
pub type EventSink = Arc<dyn Fn(&AgentEvent) + Send + Sync>;

/// A sink that ignores everything.
pub fn ignore_events() -> EventSink {
    Arc::new(|_| {})
}
