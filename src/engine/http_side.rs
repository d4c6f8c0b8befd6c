//! The HTTP side of the engine's port (ALPN `http/1.1` or none): REST API and published tunnels.
//!
//! Waits for `crate::http`; until then HTTP connections are closed.

use std::net::SocketAddr;

use super::splice::Duplex;
use super::Engine;

/// Serves one HTTP connection. `sni` is the TLS server name; `tls` tells the TLS port from the plain one.
pub async fn serve<S: Duplex + 'static>(
    _engine: &Engine,
    _stream: S,
    peer: SocketAddr,
    _sni: Option<&str>,
    _tls: bool,
) {
    log_debug!("HTTP connection from {peer} closed: HTTP side not built yet");
}
