//! What the agent does with each incoming stream: the [`StreamHandler`] seam.
//!
//! The agent owns the engine side (control channel, proxy legs, reconnects); a handler owns the application
//! side. `forward` plugs in [`super::TcpTarget`] (dial a local TCP service and splice); the WebTTY server plugs
//! in its HTTP/WebSocket server. Each stream runs in two steps on its own task (at most
//! `limits::MAX_AGENT_STREAMS` at once): [`StreamHandler::prepare`] readies the local side (`forward` dials its
//! service) — when it fails the engine is told `SERVICE_UNAVAILABLE` and no leg is dialed; then the agent dials
//! the leg, confirms the stream to the engine (`ProxyConnRsp`, protocol 1.4's completion ack) and calls
//! [`StreamHandler::handle`] with the leg — a [`TlsStream`] already past its `ProxyReq`, carrying the client's
//! raw bytes — which runs until the stream is done.
//!
//! ```no_run
//! use rstream::agent::{StreamHandler, StreamInfo};
//! use rstream::transport::TlsStream;
//! use futures_lite::AsyncWriteExt;
//!
//! struct Hello;
//! impl StreamHandler for Hello {
//!     type Local = ();
//!     async fn prepare(&self, _info: &StreamInfo) -> Result<(), String> {
//!         Ok(())
//!     }
//!     async fn handle(&self, mut stream: TlsStream, info: StreamInfo, _local: ()) {
//!         let _ = stream.write_all(format!("hello from {}\n", info.tunnel_name).as_bytes()).await;
//!         let _ = stream.close().await;
//!     }
//! }
//! ```

use std::future::Future;
use std::net::IpAddr;

use crate::transport::TlsStream;

/// Which tunnel a stream belongs to and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// Engine id of the tunnel.
    pub tunnel_id: String,
    /// Name of the tunnel.
    pub tunnel_name: String,
    /// Engine stream id.
    pub stream_id: String,
    /// Source address of the remote client, if the engine said.
    pub source_ip: Option<IpAddr>,
}

/// Serves one incoming stream.
pub trait StreamHandler: Send + Sync + 'static {
    /// What [`StreamHandler::prepare`] readies for the stream (a local connection, or nothing).
    type Local: Send + 'static;

    /// Readies the local side of a stream before its leg is dialed; an error (why the local service cannot be
    /// reached) refuses the stream to the engine with `SERVICE_UNAVAILABLE`. The agent gives it at most `limits::PROXY_LEG_DEADLINE`.
    fn prepare(&self, info: &StreamInfo) -> impl Future<Output = Result<Self::Local, String>> + Send;

    /// Runs until the stream is finished. Errors are the handler's to log; the agent only counts streams.
    fn handle(&self, stream: TlsStream, info: StreamInfo, local: Self::Local) -> impl Future<Output = ()> + Send;
}
