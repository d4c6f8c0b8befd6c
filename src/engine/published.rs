//! Published HTTP tunnels: `https://<name>.t.<host>` (TLS terminated here) and `http://…` on the optional
//! plain listener, spliced to the tunnel's agent with the already-read request replayed first.
//!
//! Only tunnels with `publish` true are reachable; a private or unknown name gets the same 404 page, so the
//! public side reveals nothing about private tunnels. `token_auth` tunnels require a token with
//! `tunnels.streams.create-delete` (`Authorization: Bearer` or `?rstream.token=`), else 401, and are served over
//! TLS only: the plain listener answers `308` to the same URL on https (without the token parameter) and never
//! looks at the token. The token does not travel on to the device, and such a connection carries that one
//! checked request ([`super::onward`]). An agent that is gone, refuses, or does not connect its leg within
//! [`crate::limits::PROXY_LEG_DEADLINE`] yields 502. The whole connection then belongs to that tunnel.

use std::net::SocketAddr;

use super::api::bearer;
use super::auth::STREAMS_CREATE_DELETE;
use super::onward::{strip_token_param, OnwardRequest};
use super::routing::strip_port;
use super::splice::Duplex;
use super::streams::{connect_to_agent, relay, Readiness};
use super::Engine;
use crate::http::percent::query_pairs;
use crate::http::{RequestHead, ResponseHead, ServerConn};
use crate::proto::rstream::{Error as ProtoError, ErrorCode};

/// Query parameter carrying a token for `token_auth` tunnels.
pub const TOKEN_PARAM: &str = "rstream.token";

/// Serves a connection addressed to tunnel `name` whose first request is `req`; `tls` tells the TLS port from
/// the plain listener.
pub async fn serve<S: Duplex>(
    engine: &Engine,
    mut conn: ServerConn<S>,
    req: RequestHead,
    name: &str,
    peer: SocketAddr,
    tls: bool,
) {
    let published = engine.registry.find(name).filter(|t| t.props.is_published());
    let Some(tunnel) = published else {
        return page(&mut conn, 404, &format!("No tunnel is published at {name}.")).await;
    };
    let token_auth = tunnel.props.token_auth.is_some_and(|b| b.value);
    if token_auth && !tls {
        return redirect_to_https(engine, &mut conn, &req).await;
    }
    if token_auth {
        let token = bearer(&req).map(str::to_owned).or_else(|| query_token(&req));
        if let Err(e) = engine.auth.authorize(token.as_deref(), Some(STREAMS_CREATE_DELETE)) {
            engine.note_auth_failure();
            return page(&mut conn, 401, &format!("This tunnel requires a token: {e}.")).await;
        }
    }
    let admit = |props: &crate::proto::rstream::TunnelProperties| {
        if props.is_published() {
            Ok(())
        } else {
            Err(ProtoError::new(ErrorCode::TunnelNotFound, "not published"))
        }
    };
    let leg = match connect_to_agent(engine, name, Some(peer.ip()), Readiness::Leg, admit).await {
        Ok(leg) => leg,
        Err(e) => {
            log_info!("published request for {name:?} from {peer} failed: {e}");
            let (status, text) = match e.code() {
                ErrorCode::TunnelNotFound => (404, format!("No tunnel is published at {name}.")),
                ErrorCode::CapacityExhausted => (503, "The engine is busy; try again.".to_owned()),
                _ => (502, format!("The service behind {name} is not reachable right now.")),
            };
            return page(&mut conn, status, &text).await;
        }
    };
    // Neither can fail: nothing was read or written since the head.
    if token_auth {
        let Ok(raw) = conn.into_raw_request() else { return };
        relay(engine, &mut OnwardRequest::new(raw, &req), leg).await;
    } else {
        let Ok(mut client) = conn.into_replay() else { return };
        relay(engine, &mut client, leg).await;
    }
}

/// Sends a plain-HTTP request for a `token_auth` tunnel to the same URL on the engine's TLS port, without the
/// token parameter; the token itself is neither checked nor passed on.
async fn redirect_to_https<S: Duplex>(engine: &Engine, conn: &mut ServerConn<S>, req: &RequestHead) {
    conn.set_close();
    let host = strip_port(req.headers.get("host").unwrap_or_default()).trim_end_matches('.');
    let port = match engine.hosts.port() {
        443 => String::new(),
        port => format!(":{port}"),
    };
    let target = strip_token_param(&req.target).unwrap_or_else(|| req.target.clone());
    let location = format!("https://{host}{port}{target}");
    let body = format!(
        "<!doctype html>\n<html><head><title>308 Permanent Redirect</title></head><body><h1>HTTPS only</h1>\
         <p>This tunnel requires a token and is served over HTTPS only: <a href=\"{0}\">{0}</a>.</p>\
         <hr><p>rstream engine</p></body></html>\n",
        escape(&location)
    );
    let head = ResponseHead::new(308)
        .header("Location", location.as_str())
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Cache-Control", "no-store");
    let _ = conn.respond(head, body.as_bytes()).await;
}

/// The `rstream.token` query parameter of `req`.
pub fn query_token(req: &RequestHead) -> Option<String> {
    query_pairs(req.query()?).filter_map(Result::ok).find(|(k, _)| k == TOKEN_PARAM).map(|(_, v)| v)
}

/// Answers with a small HTML page and closes the connection.
pub async fn page<S: Duplex>(conn: &mut ServerConn<S>, status: u16, text: &str) {
    conn.set_close();
    let reason = crate::http::reason_phrase(status);
    let body = format!(
        "<!doctype html>\n<html><head><title>{status} {reason}</title></head>\
         <body><h1>{status} {reason}</h1><p>{}</p><hr><p>rstream engine</p></body></html>\n",
        escape(text)
    );
    let mut head = ResponseHead::new(status).header("Content-Type", "text/html; charset=utf-8");
    if status == 401 {
        head = head.header("WWW-Authenticate", "Bearer realm=\"rstream\"");
    }
    let _ = conn.respond(head, body.as_bytes()).await;
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
