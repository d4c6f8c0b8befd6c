//! The HTTP side of the engine's ports: published tunnels by host name, else the REST API.
//!
//! On the TLS port (ALPN `http/1.1` or none) the SNI name decides first: `<name>.t.<host>` routes the whole
//! connection to that published tunnel. Without such an SNI (an IP literal, the engine's own name) the first
//! request's `Host` decides the same way; anything else is the REST API, with keep-alive. The plain listener
//! serves published tunnels only (a token never crosses it in clear: `token_auth` ones are redirected to https)
//! and answers 404 otherwise.

use std::net::SocketAddr;

use super::splice::Duplex;
use super::{api, published, Engine};
use crate::http::ServerConn;

/// Serves one HTTP connection; `sni` is the TLS server name, `tls` tells the TLS port from the plain one.
pub async fn serve<S: Duplex>(engine: &Engine, stream: S, peer: SocketAddr, sni: Option<&str>, tls: bool) {
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
        return published::serve(engine, conn, req, &name, peer, tls).await;
    }
    if !tls {
        let host = host_header.unwrap_or_default();
        return published::page(&mut conn, 404, &format!("No tunnel is published at {host}.")).await;
    }
    loop {
        let answer = api::handle(engine, &req);
        log_debug!("{} {} from {peer}: {}", req.method, req.path(), answer.status);
        if conn.respond(answer.head(), &answer.body).await.is_err() {
            return;
        }
        req = match conn.next_request().await {
            Ok(Some(req)) => req,
            _ => return,
        };
    }
}
