//! The `forward` handler: each stream becomes a TCP connection to a local service, spliced both ways.

use async_net::TcpStream;

use super::handler::{StreamHandler, StreamInfo};
use crate::limits::DIAL_TIMEOUT;
use crate::transport::{splice, with_deadline, TlsStream};

/// Forwards every stream to one local TCP address (`host:port`).
#[derive(Clone, Debug)]
pub struct TcpTarget {
    /// Where the local service listens.
    pub addr: String,
}

impl StreamHandler for TcpTarget {
    async fn handle(&self, stream: TlsStream, info: StreamInfo) {
        let addr = self.addr.as_str();
        let local = with_deadline(DIAL_TIMEOUT, format!("connecting to {addr}"), TcpStream::connect(addr)).await;
        let local = match local {
            Ok(tcp) => tcp,
            Err(e) => return log_warn!("stream {}: cannot reach the local service {addr}: {e}", info.stream_id),
        };
        let _ = local.set_nodelay(true);
        if let Err(e) = splice(stream, local).await {
            log_debug!("stream {}: {e}", info.stream_id);
        }
    }
}
