//! The server side of a WebSocket upgrade (RFC 6455 §4.2): checks the request and builds the
//! `101 Switching Protocols` head. Shared by `webtty server` and the engine's `/api/websocket`; the frames
//! themselves are async-tungstenite's.

use super::{RequestHead, ResponseHead};

/// Why an upgrade request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpgradeRefusal {
    /// A plain HTTP request (no `Upgrade: websocket`): answer 426.
    NotWebSocket,
    /// A broken upgrade request: answer 400; carries what is wrong.
    Bad(String),
}

/// Validates a WebSocket upgrade request and returns the `101 Switching Protocols` response head.
pub fn upgrade_response(req: &RequestHead) -> Result<ResponseHead, UpgradeRefusal> {
    if !req.headers.has_token("upgrade", "websocket") {
        return Err(UpgradeRefusal::NotWebSocket);
    }
    if req.method != "GET" {
        return Err(UpgradeRefusal::Bad(format!("method {:?} (expected GET)", req.method)));
    }
    if !req.headers.has_token("connection", "upgrade") {
        return Err(UpgradeRefusal::Bad("Connection header lacks \"upgrade\"".into()));
    }
    match req.headers.get("sec-websocket-version") {
        Some("13") => {}
        other => return Err(UpgradeRefusal::Bad(format!("Sec-WebSocket-Version {other:?} (expected 13)"))),
    }
    let key = req.headers.get("sec-websocket-key").map(str::trim).filter(|k| !k.is_empty());
    let key = key.ok_or_else(|| UpgradeRefusal::Bad("missing Sec-WebSocket-Key".into()))?;
    let accept = async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(ResponseHead::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept))
}
