//! The WebTTY server's HTTP face: one [`WebttyServer`] serves every incoming byte stream the same way —
//! a TCP connection in local `--listen` mode ([`serve_listener`], plain with [`PlainTcp`] or TLS with
//! `tls_listen::TlsHandshake` in builds with feature `engine`), or a proxied tunnel stream in `--rstream` mode
//! (it is the agent's [`StreamHandler`]).
//!
//! Per connection: HTTP/1.1 requests ([`crate::http::ServerConn`]) pass the [`AccessPolicy`] (bearer token,
//! origin, `Host` of an unauthenticated listener); a refused request is answered (401, 403, 421) and ends its
//! connection, so a client without the token holds nothing. `/fs` and `/fs/…` go to the WebDAV sidecar
//! ([`WebDav`]) when one is configured; any other path is the terminal endpoint, where a WebSocket upgrade starts
//! one WebTTY session ([`serve_session`]). A plain request there gets `426 Upgrade Required`.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use async_lock::Semaphore;
use async_net::{TcpListener, TcpStream};
use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use futures_lite::{future, AsyncRead, AsyncWrite};

use super::admission::Admission;
use super::gate::{upgrade_response, AccessPolicy};
use super::policy::{SessionPolicy, Shutdown};
use super::session::serve_session;
use super::wire::ws_config;
use crate::agent::{StreamHandler, StreamInfo};
use crate::http::{ResponseHead, ServerConn};
use crate::limits;
use crate::transport::TlsStream;
use crate::webdav::WebDav;

/// Everything a WebTTY server needs to answer a connection.
pub struct WebttyServer {
    /// Token and origin rules.
    pub access: AccessPolicy,
    /// Session limits and shutdown signal.
    pub sessions: SessionPolicy,
    /// The WebDAV sidecar mounted at `/fs`, when `--fs-root` is given.
    pub fs: Option<WebDav>,
}

impl WebttyServer {
    /// `Some(read_only)` when the filesystem sidecar is served (and advertised in labels).
    pub fn fs_mode(&self) -> Option<bool> {
        self.fs.as_ref().map(WebDav::is_read_only)
    }

    /// Serves one connection until it closes or its WebTTY session ends.
    pub async fn serve_connection<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.serve_connection_with(stream, None, || {}).await;
    }

    /// [`WebttyServer::serve_connection`] for a client that reached `local`, calling `on_admitted` whenever a
    /// request has passed the access check.
    pub async fn serve_connection_with<S>(&self, stream: S, local: Option<IpAddr>, on_admitted: impl Fn())
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut conn = ServerConn::new(stream);
        loop {
            let req = match conn.next_request().await {
                Ok(Some(req)) => req,
                Ok(None) => return,
                Err(e) => {
                    log_debug!("webtty server: bad request: {e}");
                    return;
                }
            };
            if let Err(refusal) = self.access.check(&req, local) {
                log_debug!("webtty server: {} {} refused: {refusal:?}", req.method, req.path());
                let (head, body) = refusal.response();
                let _ = conn.respond_and_close(head, body.as_bytes()).await;
                return;
            }
            on_admitted();
            if let Some(dav) = self.fs.as_ref().filter(|dav| dav.owns(req.path())) {
                if let Err(e) = dav.handle(&mut conn, &req).await {
                    log_debug!("webtty server: webdav connection failed: {e}");
                    return;
                }
                continue;
            }
            match upgrade_response(&req) {
                Err(refusal) => {
                    if respond(&mut conn, refusal.response()).await.is_err() {
                        return;
                    }
                }
                Ok(head) => {
                    let Ok(stream) = conn.upgrade(head).await else { return };
                    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(ws_config())).await;
                    serve_session(ws, &self.sessions).await;
                    return;
                }
            }
        }
    }
}

/// In `--rstream` mode every proxied tunnel stream is one HTTP connection to this server.
impl StreamHandler for WebttyServer {
    type Local = ();

    async fn prepare(&self, _info: &StreamInfo) -> Result<(), String> {
        Ok(())
    }

    async fn handle(&self, stream: TlsStream, info: StreamInfo, (): ()) {
        log_debug!("webtty server: stream {} on tunnel {:?}", info.stream_id, info.tunnel_name);
        self.serve_connection(stream).await;
    }
}

async fn respond<S>(conn: &mut ServerConn<S>, (head, body): (ResponseHead, String)) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    conn.respond(head, body.as_bytes()).await
}

/// How an accepted TCP connection becomes the byte stream HTTP is served over.
pub trait Handshake: Clone + 'static {
    /// The stream the server reads requests from.
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    /// `ws` or `wss`: how clients name the terminal endpoint.
    const WS_SCHEME: &'static str;

    /// Turns `tcp` into [`Self::Stream`]; runs on the connection's own task, so a slow peer delays only itself.
    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<Self::Stream>>;
}

/// The TCP connection as it is (`ws://`, `http://`).
#[derive(Clone, Copy, Debug)]
pub struct PlainTcp;

impl Handshake for PlainTcp {
    type Stream = TcpStream;
    const WS_SCHEME: &'static str = "ws";

    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<TcpStream>> {
        future::ready(Ok(tcp))
    }
}

/// Accepts TCP connections until `shutdown` fires, running `handshake` on each and serving it on `ex`. At most
/// [`limits::MAX_WEBTTY_CONNECTIONS`] connections (handshaking or served) are open at once. When full, a new
/// client is admitted by closing the oldest connection that has not yet sent a request passing the access check
/// ([`Admission`]); if every connection is busy it waits, and further clients wait in the kernel's accept queue.
pub async fn serve_listener<H: Handshake>(
    listener: TcpListener,
    handshake: H,
    server: Arc<WebttyServer>,
    ex: &smol::LocalExecutor<'_>,
    shutdown: Shutdown,
) -> io::Result<()> {
    let open = Arc::new(Semaphore::new(limits::MAX_WEBTTY_CONNECTIONS));
    let admission = Admission::default();
    loop {
        let Some(accepted) = until(&shutdown, listener.accept()).await else { return Ok(()) };
        let (tcp, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // Out of descriptors and similar: back off briefly instead of spinning.
                log_warn!("webtty server: accept failed: {e}");
                async_io::Timer::after(limits::ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let permit = match open.try_acquire_arc() {
            Some(permit) => permit,
            None => {
                if admission.evict_oldest() {
                    log_debug!("webtty server: full; closing the oldest connection without a request for {peer}");
                }
                let Some(permit) = until(&shutdown, open.acquire_arc()).await else { return Ok(()) };
                permit
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok().map(|a| a.ip());
        log_debug!("webtty server: connection from {peer}");
        let server = server.clone();
        let handshake = handshake.clone();
        let ticket = admission.enter();
        ex.spawn(async move {
            let serve = async {
                match handshake.handshake(tcp).await {
                    Ok(stream) => server.serve_connection_with(stream, local, || ticket.proven()).await,
                    Err(e) => log_debug!("webtty server: connection from {peer}: {e}"),
                }
            };
            let evicted = async {
                ticket.evicted().await;
                log_debug!("webtty server: closed the connection from {peer} (no admitted request yet, server full)");
            };
            future::or(serve, evicted).await;
            drop(permit);
        })
        .detach();
    }
}

/// Runs `fut` unless `shutdown` fires first (then `None`).
async fn until<T>(shutdown: &Shutdown, fut: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        shutdown.wait().await;
        None
    })
    .await
}
