//! The `forward` handler: each stream becomes a TCP connection to a local service, spliced both ways. The local
//! connection is dialed first (within `DIAL_TIMEOUT`), so a service that is down refuses the stream to the
//! engine (`SERVICE_UNAVAILABLE`) before any leg is dialed.

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
    type Local = TcpStream;

    async fn prepare(&self, _info: &StreamInfo) -> Result<TcpStream, String> {
        let addr = self.addr.as_str();
        let local = with_deadline(DIAL_TIMEOUT, format!("connecting to {addr}"), TcpStream::connect(addr)).await;
        let local = local.map_err(|e| format!("cannot reach the local service {addr}: {e}"))?;
        let _ = local.set_nodelay(true);
        Ok(local)
    }

    async fn handle(&self, stream: TlsStream, info: StreamInfo, local: TcpStream) {
        if let Err(e) = splice(stream, local).await {
            log_debug!("stream {}: {e}", info.stream_id);
        }
    }
}
