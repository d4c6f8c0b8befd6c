//! One accepted connection: TLS handshake, ALPN split, and the first-message dispatch of the rstream protocol.
//!
//! `rstrm/1` → the first framed `Message` decides the connection's role: control channel
//! (`open_control_channel_req`), client stream (`stream_req`) or agent leg (`proxy_req`). Anything else, a
//! malformed frame, one longer than [`MAX_FIRST_FRAME_LEN`], or silence past [`FIRST_MESSAGE_TIMEOUT`] closes this
//! connection only. `http/1.1` or no ALPN → the HTTP side (REST API and published tunnels).
//!
//! Until its first message (or request) the peer has proven nothing, so it costs as little as possible: no TLS
//! state before its first byte arrives and its source's turn comes (`Admitted::wait_turn`), the larger per-role
//! state only after the handshake, and a first-frame buffer that grows with the bytes really sent. Each connection arrives [`Admitted`] (`engine::admission`); the
//! handlers of the first message check its credential at once and close a refused peer, so from the dispatch on
//! it no longer counts as unauthenticated (the REST API is the exception: see `http_side`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use async_net::TcpStream;
use futures_rustls::TlsAcceptor;

use super::admission::Admitted;
use super::splice::Duplex;
use super::{control, streams, Engine};
use crate::deadline::{timeout, with_deadline};
use crate::limits::{
    FIRST_MESSAGE_TIMEOUT, HTTP_HEAD_TIMEOUT, HTTP_IDLE_TIMEOUT, MAX_FIRST_FRAME_LEN, TLS_HANDSHAKE_TIMEOUT,
};
use crate::proto::frame::read_frame_within;
use crate::proto::rstream::message::Payload;
use crate::proto::rstream::{Message, ALPN_RSTRM};
use crate::transport::tls_server::{accept, ServerTls};

/// Serves one TCP connection on the TLS port until it ends.
pub async fn serve_tls(
    engine: Arc<Engine>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    mut admitted: Admitted,
) {
    let _ = tcp.set_nodelay(true);
    match with_deadline(TLS_HANDSHAKE_TIMEOUT, "TLS handshake", handshake(&acceptor, tcp, &mut admitted)).await {
        Ok(Some(tls)) => serve_by_alpn(&engine, tls, peer, admitted).await,
        Ok(None) => {}
        Err(e) => log_debug!("TLS handshake with {peer} failed: {e}"),
    }
}

/// Waits for the peer's first byte and for its source's turn, then runs the TLS handshake; `None` if the peer
/// closed without a word. The handshake state and the session after it are allocations of their own, so this
/// task holds little while it waits.
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    admitted: &mut Admitted,
) -> std::io::Result<Option<Box<ServerTls>>> {
    if !first_byte(&tcp).await? {
        return Ok(None);
    }
    admitted.wait_turn().await;
    Box::pin(accept(acceptor, tcp, TLS_HANDSHAKE_TIMEOUT)).await.map(|tls| Some(Box::new(tls)))
}

/// The protocol the TLS connection negotiated (ALPN), as its own allocation: only the one in use is made.
fn serve_by_alpn(
    engine: &Engine,
    mut tls: Box<ServerTls>,
    peer: SocketAddr,
    admitted: Admitted,
) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
    let (alpn, sni) = tls.alpn_and_sni();
    if alpn.as_deref() == Some(ALPN_RSTRM) {
        // Agents and rstream clients are often embedded-tls: half-close towards them with a bare FIN.
        tls.set_fin_half_close(true);
        Box::pin(serve_rstream(engine, tls, peer, admitted))
    } else {
        Box::pin(async move { super::http_side::serve(engine, tls, peer, sni.as_deref(), true, admitted).await })
    }
}

/// Serves one TCP connection on the plain-HTTP listener (published tunnels only).
pub async fn serve_plain(engine: Arc<Engine>, tcp: TcpStream, peer: SocketAddr, mut admitted: Admitted) {
    let _ = tcp.set_nodelay(true);
    let ready = async {
        if !with_deadline(HTTP_IDLE_TIMEOUT, "first byte", first_byte(&tcp)).await? {
            return Ok(false);
        }
        let turn = async {
            admitted.wait_turn().await;
            Ok(())
        };
        with_deadline(HTTP_HEAD_TIMEOUT, "a turn of its source", turn).await?;
        Ok::<_, std::io::Error>(true)
    };
    match ready.await {
        Ok(true) => Box::pin(super::http_side::serve(&engine, tcp, peer, None, false, admitted)).await,
        Ok(false) => {}
        Err(e) => log_debug!("HTTP connection from {peer}: {e}"),
    }
}

/// Waits until the peer has sent something: true, or false if it closed first.
async fn first_byte(tcp: &TcpStream) -> std::io::Result<bool> {
    Ok(tcp.peek(&mut [0u8; 1]).await? > 0)
}

/// Reads the first framed message of an `rstrm/1` connection and hands the connection to its role.
pub async fn serve_rstream<S: Duplex + 'static>(
    engine: &Engine,
    mut stream: S,
    peer: SocketAddr,
    mut admitted: Admitted,
) {
    let first: Message = match timeout(FIRST_MESSAGE_TIMEOUT, read_frame_within(&mut stream, MAX_FIRST_FRAME_LEN)).await
    {
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
    admitted.authenticated(); // each handler checks the credential first and closes a refused peer
                              // Each role's state is allocated when the role is known (a waiting peer holds none of it).
    match first.payload {
        Some(Payload::OpenControlChannelReq(req)) => Box::pin(control::serve(engine, stream, req, peer)).await,
        Some(Payload::StreamReq(req)) => Box::pin(streams::serve_stream_req(engine, stream, req, peer)).await,
        Some(Payload::ProxyReq(req)) => Box::pin(streams::serve_proxy_req(engine, stream, req, peer)).await,
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
