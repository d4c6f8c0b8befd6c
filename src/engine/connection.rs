//! One accepted connection: TLS handshake, ALPN split, and the first-message dispatch of the rstream protocol.
//!
//! `rstrm/1` → the first framed `Message` decides the connection's role: control channel
//! (`open_control_channel_req`), client stream (`stream_req`) or agent leg (`proxy_req`). Anything else, a
//! malformed or oversize frame, or silence past [`FIRST_MESSAGE_TIMEOUT`] closes this connection only.
//! `http/1.1` or no ALPN → the HTTP side (REST API and published tunnels).

use std::net::SocketAddr;
use std::sync::Arc;

use async_net::TcpStream;
use futures_rustls::TlsAcceptor;

use super::splice::Duplex;
use super::{control, streams, Engine};
use crate::deadline::timeout;
use crate::limits::{FIRST_MESSAGE_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};
use crate::proto::frame::read_frame;
use crate::proto::rstream::message::Payload;
use crate::proto::rstream::{Message, ALPN_RSTRM};
use crate::transport::tls_server::accept;

/// Serves one TCP connection on the TLS port until it ends.
pub async fn serve_tls(engine: Arc<Engine>, acceptor: TlsAcceptor, tcp: TcpStream, peer: SocketAddr) {
    let Some(_slot) = engine.metrics.try_connection() else {
        log_warn!("connection from {peer} refused: engine at its connection limit");
        return;
    };
    let _ = tcp.set_nodelay(true);
    let mut tls = match accept(&acceptor, tcp, TLS_HANDSHAKE_TIMEOUT).await {
        Ok(tls) => tls,
        Err(e) => {
            log_debug!("TLS handshake with {peer} failed: {e}");
            return;
        }
    };
    let (alpn, sni) = tls.alpn_and_sni();
    if alpn.as_deref() == Some(ALPN_RSTRM) {
        // Agents and rstream clients are often embedded-tls: half-close towards them with a bare FIN.
        tls.set_fin_half_close(true);
        serve_rstream(&engine, tls, peer).await;
    } else {
        super::http_side::serve(&engine, tls, peer, sni.as_deref(), true).await;
    }
}

/// Serves one TCP connection on the plain-HTTP listener (published tunnels only).
pub async fn serve_plain(engine: Arc<Engine>, tcp: TcpStream, peer: SocketAddr) {
    let Some(_slot) = engine.metrics.try_connection() else {
        log_warn!("connection from {peer} refused: engine at its connection limit");
        return;
    };
    let _ = tcp.set_nodelay(true);
    super::http_side::serve(&engine, tcp, peer, None, false).await;
}

/// Reads the first framed message of an `rstrm/1` connection and hands the connection to its role.
pub async fn serve_rstream<S: Duplex + 'static>(engine: &Engine, mut stream: S, peer: SocketAddr) {
    let first: Message = match timeout(FIRST_MESSAGE_TIMEOUT, read_frame(&mut stream)).await {
        Ok(Ok(msg)) => msg,
        Ok(Err(e)) => {
            log_debug!("first message from {peer}: {e}");
            return;
        }
        Err(e) => {
            log_debug!("first message from {peer}: {e}");
            return;
        }
    };
    match first.payload {
        Some(Payload::OpenControlChannelReq(req)) => control::serve(engine, stream, req, peer).await,
        Some(Payload::StreamReq(req)) => streams::serve_stream_req(engine, stream, req, peer).await,
        Some(Payload::ProxyReq(req)) => streams::serve_proxy_req(engine, stream, req, peer).await,
        other => log_debug!("connection from {peer} opened with an unexpected message: {other:?}"),
    }
}

/// Writes one framed message within `limit`; false if it failed or stalled.
pub async fn send<W>(writer: &mut W, payload: Payload, limit: std::time::Duration) -> bool
where
    W: futures_lite::AsyncWrite + Unpin,
{
    let msg = Message::new(payload);
    matches!(timeout(limit, crate::proto::frame::write_frame(writer, &msg)).await, Ok(Ok(())))
}
