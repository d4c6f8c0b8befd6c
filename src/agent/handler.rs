//! What the agent does with each incoming stream: the [`StreamHandler`] seam.
//!
//! The agent owns the engine side (control channel, proxy legs, reconnects); a handler owns the application
//! side. `forward` plugs in [`super::TcpTarget`] (dial a local TCP service and splice); the WebTTY server plugs
//! in its HTTP/WebSocket server. A handler gets the leg — a [`TlsStream`] already past its `ProxyReq`, carrying
//! the client's raw bytes — and runs until the stream is done; the agent spawns one handler future per stream
//! (at most `limits::MAX_AGENT_STREAMS` at once) and drops nothing else on its behalf.
//!
//! ```no_run
//! use rstream::agent::{StreamHandler, StreamInfo};
//! use rstream::transport::TlsStream;
//! use futures_lite::AsyncWriteExt;
//!
//! struct Hello;
//! impl StreamHandler for Hello {
//!     async fn handle(&self, mut stream: TlsStream, info: StreamInfo) {
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
    /// Runs until the stream is finished. Errors are the handler's to log; the agent only counts streams.
    fn handle(&self, stream: TlsStream, info: StreamInfo) -> impl Future<Output = ()> + Send;
}
