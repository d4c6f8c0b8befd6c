//! The HTTP side of the engine's ports: published tunnels by host name, else the REST API.
//!
//! On the TLS port (ALPN `http/1.1` or none) the SNI name decides first: `<name>.t.<host>` routes the whole
//! connection to that published tunnel. Without such an SNI (an IP literal, the engine's own name) the first
//! request's `Host` decides the same way; anything else is the REST API. The plain listener serves published
//! tunnels only (a token never crosses it in clear: `token_auth` ones are redirected to https) and answers 404
//! otherwise.
//!
//! A REST connection keeps alive only once a request on it carried a valid token; until then it counts against
//! its source as unauthenticated (`engine::admission`), and every answer — a 401 or 403 above all — is its last:
//! the connection is closed, so tokenless clients cannot hold connections open. A connection routed to a
//! published tunnel is settled by the tunnel's own rules (`published`). `/api/sse` and `/api/websocket` take
//! the connection over for their event stream (`watch`).

use std::net::SocketAddr;

use super::admission::Admitted;
use super::splice::Duplex;
use super::{api, published, watch, Engine};
use crate::http::{RequestHead, ServerConn};

/// Serves one HTTP connection; `sni` is the TLS server name, `tls` tells the TLS port from the plain one.
pub async fn serve<S: Duplex>(
    engine: &Engine,
    stream: S,
    peer: SocketAddr,
    sni: Option<&str>,
    tls: bool,
    mut admitted: Admitted,
) {
    let mut conn = ServerConn::new(stream);
    let mut req = match conn.next_request().await {
        Ok(Some(req)) => req,
        Ok(None) => return,
        Err(e) => {
            log_debug!("HTTP request from {peer}: {e}");
            return;
        }
    };
    let host_header = req.headers.get("host").map(str::to_owned);
    let tunnel = sni
        .and_then(|s| engine.hosts.tunnel_name(s))
        .or_else(|| host_header.as_deref().and_then(|h| engine.hosts.tunnel_name(h)))
        .map(str::to_owned);
    if let Some(name) = tunnel {
        admitted.authenticated(); // the tunnel checks its token at once and answers a refusal with a closing page
        return Box::pin(published::serve(engine, conn, req, &name, peer, tls)).await;
    }
    if !tls {
        let host = host_header.unwrap_or_default();
        return published::page(&mut conn, 404, &format!("No tunnel is published at {host}.")).await;
    }
    loop {
        if watch::is_watch_path(req.path()) {
            return watch::serve(engine, conn, req, peer, &mut admitted).await;
        }
        let answer = api::handle(engine, &req);
        log_debug!("{} {} from {peer}: {}", req.method, req.path(), answer.status);
        let refused = matches!(answer.status, 401 | 403);
        if !refused && !admitted.is_authenticated() && carries_valid_token(engine, &req) {
            admitted.authenticated();
        }
        if refused || !admitted.is_authenticated() {
            if let Err(e) = conn.respond_and_close(answer.head(), &answer.body).await {
                log_debug!("answer to {peer}: {e}");
            }
            return;
        }
        if conn.respond(answer.head(), &answer.body).await.is_err() {
            return;
        }
        req = match conn.next_request().await {
            Ok(Some(req)) => req,
            _ => return,
        };
    }
}

/// Whether `req` carries a bearer token the engine accepts (whatever it may do).
fn carries_valid_token(engine: &Engine, req: &RequestHead) -> bool {
    api::bearer(req).is_some() && engine.auth.authorize(api::bearer(req), None).is_ok()
}
