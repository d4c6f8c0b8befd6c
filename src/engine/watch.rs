//! `GET /api/sse` and `GET /api/websocket`: the engine's event stream for one subscriber.
//!
//! Auth is `Authorization: Bearer` or `?rstream.token=`, with `tunnels.resources.read-only`; `?params=` is
//! `WatchParams` JSON (the list endpoints' filters, [`super::filters`]), applied here. The stream opens with
//! `state.initial` and then carries every change that passes the filters, each event one JSON object:
//! - SSE: `data: <json>` and a blank line, no `event:` names (browsers read them with `EventSource.onmessage`);
//!   an idle stream gets a `: heartbeat` comment every [`EVENT_HEARTBEAT_INTERVAL`];
//! - WebSocket: one text frame per event; the subscriber's pings are answered, the engine pings when idle.
//!
//! A subscriber that stops reading is cut off once its queue ([`crate::limits::EVENT_QUEUE_DEPTH`]) is full or
//! one write stalls for [`EVENT_WRITE_TIMEOUT`]: it gets a last word — an SSE comment, or a WebSocket close
//! with code 1008 — if it still takes bytes, and the connection ends. It may reconnect for a fresh
//! `state.initial`.

use std::net::SocketAddr;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::Message as WsMessage;
use async_tungstenite::{WebSocketSender, WebSocketStream};
use futures_lite::{future, AsyncRead, AsyncWrite, AsyncWriteExt, StreamExt};

use super::admission::Admitted;
use super::api::ApiResponse;
use super::auth::RESOURCES_READ_ONLY;
use super::events::{state_initial, Subscription};
use super::filters::{parse_params_as, WatchParams};
use super::published::query_token;
use super::splice::Duplex;
use super::{api, Engine};
use crate::deadline::timeout;
use crate::http::websocket::{upgrade_response, UpgradeRefusal};
use crate::http::{RequestHead, ResponseHead, ServerConn};
use crate::limits::{
    EVENT_HEARTBEAT_INTERVAL, EVENT_QUEUE_DEPTH, EVENT_WRITE_TIMEOUT, EVENT_WS_MAX_INCOMING, MAX_FRAME_LEN,
    WS_CLOSE_TIMEOUT,
};

/// The SSE endpoint.
pub const SSE_PATH: &str = "/api/sse";
/// The WebSocket endpoint.
pub const WEBSOCKET_PATH: &str = "/api/websocket";

/// What a subscriber that fell behind is told before its connection ends.
fn overflow_reason() -> String {
    format!("subscriber fell behind by {EVENT_QUEUE_DEPTH} events and was dropped; reconnect for a fresh state.initial")
}

/// Whether `path` is one of the event endpoints.
pub fn is_watch_path(path: &str) -> bool {
    path == SSE_PATH || path == WEBSOCKET_PATH
}

/// Why a subscriber's stream ended.
enum End {
    /// The bus cut it off (its queue was full).
    Overflowed,
    /// A write stalled past [`EVENT_WRITE_TIMEOUT`].
    Stalled,
    /// The subscriber went away (or a write failed).
    Gone,
}

/// Serves one event-stream request (its path passed [`is_watch_path`]); the connection ends with the stream.
pub async fn serve<S: Duplex>(
    engine: &Engine,
    mut conn: ServerConn<S>,
    req: RequestHead,
    peer: SocketAddr,
    admitted: &mut Admitted,
) {
    let subscribed = subscribe(engine, &req);
    let (initial, subscription, params) = match subscribed {
        Ok(v) => v,
        Err(answer) => {
            log_debug!("{} {} from {peer}: {}", req.method, req.path(), answer.status);
            let _ = conn.respond_and_close(answer.head(), &answer.body).await;
            return;
        }
    };
    admitted.authenticated();
    let end = if req.path() == WEBSOCKET_PATH {
        let head = match upgrade_response(&req) {
            Ok(head) => head,
            Err(refusal) => {
                let answer = match refusal {
                    UpgradeRefusal::NotWebSocket => {
                        ApiResponse::error(426, format!("{WEBSOCKET_PATH} takes a WebSocket upgrade"))
                    }
                    UpgradeRefusal::Bad(why) => ApiResponse::error(400, format!("bad websocket upgrade: {why}")),
                };
                let _ = conn.respond_and_close(answer.head(), &answer.body).await;
                return;
            }
        };
        let Ok(stream) = conn.upgrade(head).await else { return };
        websocket(stream, initial, &subscription, &params).await
    } else {
        sse(&mut conn, initial, &subscription, &params).await
    };
    let why = match end {
        End::Overflowed => "fell behind",
        End::Stalled => "stalled",
        End::Gone => "left",
    };
    log_debug!("event subscriber {peer} on {} {why}", req.path());
}

/// Checks the token and the params and subscribes: the `state.initial` line, the subscription, the filters.
fn subscribe(engine: &Engine, req: &RequestHead) -> Result<(String, Subscription, WatchParams), ApiResponse> {
    if req.method != "GET" {
        return Err(ApiResponse::error(405, format!("method {} not allowed on {}", req.method, req.path())));
    }
    let token = api::bearer(req).map(str::to_owned).or_else(|| query_token(req));
    if let Err(e) = engine.auth.authorize(token.as_deref(), Some(RESOURCES_READ_ONLY)) {
        engine.note_auth_failure();
        return Err(ApiResponse::error(e.code(), e));
    }
    let params: WatchParams = parse_params_as(req.query()).map_err(|e| ApiResponse::error(400, e))?;
    let (clients, tunnels, subscription) = engine.registry.subscribe().map_err(|e| ApiResponse::error(503, e))?;
    Ok((state_initial(&clients, &tunnels, &params), subscription, params))
}

/// The next line to send: an event that passes the filters, `None` after a heartbeat interval of silence, or
/// the reason the subscription ended.
async fn next_event(
    subscription: &Subscription,
    params: &WatchParams,
) -> Result<Option<std::sync::Arc<super::events::Event>>, End> {
    let wait = async {
        loop {
            match subscription.next().await {
                Some(event) if event.passes(params) => return Ok(event),
                Some(_) => continue,
                None if subscription.overflowed() => return Err(End::Overflowed),
                None => return Err(End::Gone),
            }
        }
    };
    match timeout(EVENT_HEARTBEAT_INTERVAL, wait).await {
        Ok(Ok(event)) => Ok(Some(event)),
        Ok(Err(end)) => Err(end),
        Err(_) => Ok(None),
    }
}

async fn write_bounded<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), End> {
    match timeout(EVENT_WRITE_TIMEOUT, async {
        w.write_all(bytes).await?;
        w.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Stalled),
    }
}

async fn sse<S: Duplex>(
    conn: &mut ServerConn<S>,
    initial: String,
    subscription: &Subscription,
    params: &WatchParams,
) -> End {
    conn.set_close();
    let head = ResponseHead::new(200)
        .header("Content-Type", "text/event-stream")
        .header("Cache-Control", "no-store")
        .header("X-Accel-Buffering", "no");
    let Ok(mut body) = conn.respond_stream(head, None).await else { return End::Gone };
    let stream = async {
        write_bounded(&mut body, format!("data: {initial}\n\n").as_bytes()).await?;
        loop {
            let line = match next_event(subscription, params).await? {
                Some(event) => format!("data: {}\n\n", event.json),
                None => ": heartbeat\n\n".to_owned(),
            };
            write_bounded(&mut body, line.as_bytes()).await?;
        }
    };
    let end = match stream.await {
        Ok(()) => End::Gone,
        Err(end) => end,
    };
    if matches!(end, End::Overflowed) {
        let last = format!(": closed: {}\n\n", overflow_reason());
        let _ = timeout(WS_CLOSE_TIMEOUT, async {
            body.write_all(last.as_bytes()).await?;
            body.finish().await
        })
        .await;
    }
    end
}

fn ws_config() -> WebSocketConfig {
    // An outgoing event is at most one tunnel's JSON (labels from one control frame, escaped).
    WebSocketConfig::default()
        .read_buffer_size(EVENT_WS_MAX_INCOMING)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * MAX_FRAME_LEN)
        .max_message_size(Some(EVENT_WS_MAX_INCOMING))
        .max_frame_size(Some(EVENT_WS_MAX_INCOMING))
}

async fn ws_send<S: AsyncRead + AsyncWrite + Unpin>(tx: &mut WebSocketSender<S>, msg: WsMessage) -> Result<(), End> {
    match timeout(EVENT_WRITE_TIMEOUT, tx.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Stalled),
    }
}

async fn websocket<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    initial: String,
    subscription: &Subscription,
    params: &WatchParams,
) -> End {
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(ws_config())).await;
    let (mut tx, mut rx) = ws.split();
    let writer = async {
        ws_send(&mut tx, WsMessage::text(initial)).await?;
        loop {
            let msg = match next_event(subscription, params).await? {
                Some(event) => WsMessage::text(event.json.to_string()),
                None => WsMessage::Ping(Vec::new().into()),
            };
            ws_send(&mut tx, msg).await?;
        }
    };
    // Reading answers the subscriber's pings (tungstenite queues the pong) and notices its close.
    let reader = async {
        while let Some(Ok(msg)) = rx.next().await {
            if msg.is_close() {
                break;
            }
        }
        Err::<(), End>(End::Gone)
    };
    let end = match future::or(writer, reader).await {
        Ok(()) => End::Gone,
        Err(end) => end,
    };
    if matches!(end, End::Overflowed) {
        let frame = CloseFrame { code: CloseCode::Policy, reason: overflow_reason().into() };
        let _ = timeout(WS_CLOSE_TIMEOUT, tx.close(Some(frame))).await;
    }
    end
}
