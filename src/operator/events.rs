//! The engine's event stream as the operator reads it (`rstream events`): one subscription to `GET /api/sse`
//! or `GET /api/websocket` with `?params=<WatchParams>` and the context's bearer token, over the same verified TLS
//! path as every other API call ([`EngineEndpoint::connect`]).
//!
//! [`EventStream::next`] yields one event (a JSON object, `state.initial` first) at a time. Every event is
//! bounded by [`EVENT_CLIENT_MAX_LEN`]; a silent SSE stream (no event, no heartbeat comment) is dead after
//! [`EVENT_CLIENT_IDLE_TIMEOUT`]; a WebSocket is pinged after [`EVENT_CLIENT_PING_INTERVAL`] of silence and
//! dropped after [`EVENT_CLIENT_WS_TIMEOUT`]. Refusals are [`WatchError::Refused`] (401/403/400: retrying cannot
//! help), everything else [`WatchError::Lost`] (reconnect).

use std::fmt;
use std::time::Instant;

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use async_tungstenite::WebSocketStream;
use futures_lite::{AsyncReadExt, StreamExt};
use serde::Serialize;
use serde_json::Value;

use super::filter::{ClientFilters, TunnelFilters};
use crate::deadline::timeout;
use crate::http::{percent::encode_component, ClientConn, RequestHead};
use crate::limits::{
    API_TIMEOUT, EVENT_CLIENT_IDLE_TIMEOUT, EVENT_CLIENT_MAX_LEN, EVENT_CLIENT_PING_INTERVAL, EVENT_CLIENT_WS_TIMEOUT,
    HTTP_HEAD_TIMEOUT, MAX_HTTP_BUFFERED_BODY,
};
use crate::proto::rstream::ALPN_HTTP1;
use crate::transport::{EngineEndpoint, TlsStream};

/// Which endpoint carries the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `GET /api/websocket`, one text frame per event (upstream's default).
    WebSocket,
    /// `GET /api/sse`, `data: <json>` events.
    Sse,
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "websocket" | "ws" => Ok(Transport::WebSocket),
            "sse" => Ok(Transport::Sse),
            other => Err(format!("unknown transport {other:?}: expected websocket or sse")),
        }
    }
}

/// `?params=` of the event endpoints: which clients and tunnels to hear about (absent = all).
#[derive(Clone, Debug, Default, Serialize)]
pub struct WatchParams {
    /// Client filters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientFilters>,
    /// Tunnel filters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnels: Option<TunnelFilters>,
}

impl WatchParams {
    /// The request path of `transport` with these params.
    pub fn path(&self, transport: Transport) -> String {
        let base = match transport {
            Transport::WebSocket => "/api/websocket",
            Transport::Sse => "/api/sse",
        };
        match serde_json::to_string(self) {
            Ok(json) if json != "{}" => format!("{base}?params={}", encode_component(&json)),
            _ => base.to_owned(),
        }
    }
}

/// Why a subscription failed or ended.
#[derive(Debug)]
pub enum WatchError {
    /// The engine refused the subscription for good (bad token, missing permission, bad params): HTTP status and
    /// the engine's message.
    Refused(u16, String),
    /// The connection failed or ended; a new subscription may work.
    Lost(String),
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Refused(status, message) => {
                write!(f, "the engine refused the subscription: {message} ({status})")
            }
            WatchError::Lost(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for WatchError {}

/// Statuses that no retry can fix.
fn is_permanent(status: u16) -> bool {
    matches!(status, 400 | 401 | 403 | 404 | 405 | 426)
}

/// A refusal: permanent statuses become [`WatchError::Refused`], others (503: too many subscribers) `Lost`.
fn refusal(status: u16, body: &[u8]) -> WatchError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(4096)]).trim().to_owned());
    if is_permanent(status) {
        WatchError::Refused(status, message)
    } else {
        WatchError::Lost(format!("the engine answered {status}: {message}"))
    }
}

/// One open subscription.
pub enum EventStream {
    /// SSE: the HTTP connection and the bytes read but not yet split into lines.
    Sse { conn: Box<ClientConn<TlsStream>>, pending: Vec<u8> },
    /// WebSocket: the stream and when it last heard anything.
    WebSocket { ws: Box<WebSocketStream<TlsStream>>, heard: Instant },
}

impl EventStream {
    /// Subscribes to the engine of `endpoint`; succeeds once the engine accepted (its first event follows).
    pub async fn open(
        endpoint: &EngineEndpoint,
        transport: Transport,
        params: &WatchParams,
    ) -> Result<Self, WatchError> {
        let path = params.path(transport);
        let lost = |e: &dyn fmt::Display| WatchError::Lost(format!("subscribing to {}: {e}", endpoint.addr));
        let tls = endpoint.connect(ALPN_HTTP1).await.map_err(|e| lost(&e))?;
        let bearer = format!("Bearer {}", endpoint.token.expose());
        match transport {
            Transport::Sse => {
                let mut conn = ClientConn::with_timeouts(
                    tls,
                    endpoint.tls.server_name.clone(),
                    HTTP_HEAD_TIMEOUT,
                    EVENT_CLIENT_IDLE_TIMEOUT,
                );
                let head = RequestHead::new("GET", &path)
                    .header("Authorization", bearer)
                    .header("Accept", "text/event-stream");
                let resp = timeout(API_TIMEOUT, conn.request(&head, &[]))
                    .await
                    .map_err(|_| lost(&"no answer in time"))?
                    .map_err(|e| lost(&e))?;
                if resp.status != 200 {
                    let body = conn.read_body_to_vec(MAX_HTTP_BUFFERED_BODY).await.unwrap_or_default();
                    return Err(refusal(resp.status, &body));
                }
                Ok(EventStream::Sse { conn: Box::new(conn), pending: Vec::new() })
            }
            Transport::WebSocket => {
                let port = endpoint.addr.rsplit(':').next().unwrap_or("443");
                let url = format!("wss://{}:{port}{path}", endpoint.tls.server_name);
                let mut request = url.as_str().into_client_request().map_err(|e| lost(&e))?;
                let value =
                    HeaderValue::from_str(&bearer).map_err(|_| lost(&"the token is not a valid header value"))?;
                request.headers_mut().insert("authorization", value);
                let config = WebSocketConfig::default()
                    .max_message_size(Some(EVENT_CLIENT_MAX_LEN))
                    .max_frame_size(Some(EVENT_CLIENT_MAX_LEN));
                let handshake = async_tungstenite::client_async_with_config(request, tls, Some(config));
                match timeout(API_TIMEOUT, handshake).await {
                    Err(_) => Err(lost(&"websocket handshake timed out")),
                    Ok(Ok((ws, _))) => Ok(EventStream::WebSocket { ws: Box::new(ws), heard: Instant::now() }),
                    Ok(Err(WsError::Http(response))) => {
                        Err(refusal(response.status().as_u16(), response.body().as_deref().unwrap_or_default()))
                    }
                    Ok(Err(e)) => Err(lost(&e)),
                }
            }
        }
    }

    /// The next event; `Lost` when the stream ends or breaks.
    pub async fn next(&mut self) -> Result<Value, WatchError> {
        match self {
            EventStream::Sse { conn, pending } => next_sse(conn, pending).await,
            EventStream::WebSocket { ws, heard } => next_ws(ws, heard).await,
        }
    }
}

/// Parses one event's JSON.
fn decode(text: &[u8]) -> Result<Value, WatchError> {
    let v: Value =
        serde_json::from_slice(text).map_err(|e| WatchError::Lost(format!("the engine sent a bad event: {e}")))?;
    if v.get("type").and_then(Value::as_str).is_none() {
        return Err(WatchError::Lost("the engine sent an event without a type".into()));
    }
    Ok(v)
}

/// Reads SSE lines until an event is complete (`data:` lines, then a blank line); comments are skipped.
async fn next_sse(conn: &mut ClientConn<TlsStream>, pending: &mut Vec<u8>) -> Result<Value, WatchError> {
    let mut data: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if !data.is_empty() {
                    return decode(&data);
                }
            } else if let Some(value) = line.strip_prefix(b"data:") {
                if !data.is_empty() {
                    data.push(b'\n');
                }
                data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
            }
            // `:` comments (heartbeats) and other fields (`event:`, `id:`) carry nothing we use.
        }
        if pending.len() + data.len() > EVENT_CLIENT_MAX_LEN {
            return Err(WatchError::Lost(format!("an event exceeded {EVENT_CLIENT_MAX_LEN} bytes")));
        }
        let n = conn.body().read(&mut buf).await.map_err(|e| WatchError::Lost(format!("event stream: {e}")))?;
        if n == 0 {
            return Err(WatchError::Lost("the engine ended the event stream".into()));
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

/// Reads WebSocket messages until a text frame arrives, pinging when the engine has been quiet.
async fn next_ws(ws: &mut WebSocketStream<TlsStream>, heard: &mut Instant) -> Result<Value, WatchError> {
    let lost = |e: &dyn fmt::Display| WatchError::Lost(format!("event websocket: {e}"));
    loop {
        let Ok(message) = timeout(EVENT_CLIENT_PING_INTERVAL, ws.next()).await else {
            if heard.elapsed() >= EVENT_CLIENT_WS_TIMEOUT {
                return Err(lost(&format!("silent for {} s", EVENT_CLIENT_WS_TIMEOUT.as_secs())));
            }
            ws.send(WsMessage::Ping(Vec::new().into())).await.map_err(|e| lost(&e))?;
            continue;
        };
        *heard = Instant::now();
        let Some(message) = message else { return Err(lost(&"the engine ended the event stream")) };
        match message.map_err(|e| lost(&e))? {
            WsMessage::Text(text) => return decode(text.as_bytes()),
            WsMessage::Close(frame) => {
                let why = frame.map(|f| f.reason.to_string()).filter(|r| !r.is_empty());
                return Err(lost(&why.unwrap_or_else(|| "closed by the engine".into())));
            }
            _ => {} // pings are answered by tungstenite; pongs and binary frames carry nothing for us
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::filter::{parse, parse_clients, BareWords};

    #[test]
    fn watch_params_carry_both_filter_kinds_url_encoded() {
        assert_eq!(WatchParams::default().path(Transport::Sse), "/api/sse");
        let params = WatchParams {
            tunnels: Some(parse("name=web", BareWords::Refuse).unwrap().tunnels),
            clients: Some(parse_clients("os=linux").unwrap()),
        };
        let path = params.path(Transport::WebSocket);
        let (base, q) = path.split_once("?params=").unwrap();
        assert_eq!(base, "/api/websocket");
        let decoded = crate::http::percent::decode_query_component(q).unwrap();
        assert_eq!(decoded, r#"{"clients":{"os":"linux"},"tunnels":{"name":"web"}}"#);
    }

    #[test]
    fn auth_and_param_refusals_are_permanent_and_capacity_is_not() {
        let e = refusal(401, br#"{"error":"invalid token"}"#);
        assert!(matches!(&e, WatchError::Refused(401, m) if m == "invalid token"), "{e:?}");
        assert!(matches!(refusal(403, b"forbidden"), WatchError::Refused(403, _)));
        assert!(matches!(refusal(503, b"too many subscribers"), WatchError::Lost(_)));
        assert_eq!(
            refusal(401, br#"{"error":"invalid token"}"#).to_string(),
            "the engine refused the subscription: invalid token (401)"
        );
    }

    #[test]
    fn events_need_a_type() {
        assert!(decode(br#"{"type":"state.initial","object":{}}"#).is_ok());
        assert!(decode(br#"{"object":{}}"#).is_err());
        assert!(decode(b"not json").is_err());
    }
}
