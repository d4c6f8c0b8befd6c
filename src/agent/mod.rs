//! Device side of the tunnel plane: control channel, tunnel registration, proxy legs, reconnect.
//!
//! An [`Agent`] keeps one control channel to the engine (rstream protocol 1.4.5, liveness negotiated), registers its tunnels on it
//! and, for every `ProxyConnReq`, dials a proxy leg and hands that byte stream to a [`StreamHandler`]. When
//! the channel is lost (engine restart, network cut, 3 missed heartbeats) it reconnects with jittered
//! exponential backoff and registers every tunnel again. Everything runs on smol; every buffer, queue and
//! wait is bounded by `crate::limits`.
//!
//! - [`session`]: one control-channel lifetime (open, register, serve, heartbeats);
//! - [`stream_task`]: one incoming stream (local side, leg, `ProxyConnRsp`, handler, redirects);
//! - [`leg`]: the per-stream `ProxyReq` connection; [`leg_pool`]: legs handshaken ahead of time in bursts;
//! - [`handler`]: the seam applications plug into ([`TcpTarget`] for `forward`, the WebTTY server);
//! - [`events`]: what the agent reports (`forward` prints it); [`status`]: `forward`'s status block;

mod events;
mod handler;
mod leg;
mod leg_pool;
mod session;
pub mod status;
mod stream_task;
mod supervisor;
mod tcp_target;

pub use crate::backoff::Backoff;
pub use events::{ignore_events, AgentEvent, EventSink};
pub use handler::{StreamHandler, StreamInfo};
pub use supervisor::{Agent, AgentError, Retry};
pub use tcp_target::TcpTarget;
