//! The client half of the WebTTY session protocol, shared by exec and the interactive terminal: send `Open`,
//! wait for `Ack` (or the server's `Error`), heartbeats, liveness, and a bounded closing handshake.

use async_lock::Mutex;
use async_tungstenite::{WebSocketReceiver, WebSocketSender};
use futures_lite::StreamExt;

use super::super::error::WebttyError;
use super::super::timeout;
use super::super::wire::{self, next_payload, payload_name};
use super::connect::{BoxConn, ClientWs};
use crate::limits;
use crate::proto::webtty::message::Payload;
use crate::proto::webtty::{Close, Config, Heartbeat, Open};

/// The writing half of a client session, shared by the stdin pump, heartbeats and resizes.
pub(crate) type ClientTx = Mutex<WebSocketSender<BoxConn>>;
/// The reading half of a client session.
pub(crate) type ClientRx = WebSocketReceiver<BoxConn>;

/// Sends one payload and waits until the WebSocket accepted it.
pub(crate) async fn send(tx: &ClientTx, payload: Payload) -> Result<(), WebttyError> {
    tx.lock().await.send(wire::encode(payload)).await.map_err(|e| WebttyError::Disconnected(e.to_string()))
}

/// Sends `Open{config}` and waits for `Ack`; the server's `Error` becomes [`WebttyError::Refused`].
pub(crate) async fn open(ws: ClientWs, config: Config) -> Result<(ClientTx, ClientRx), WebttyError> {
    let (tx, mut rx) = ws.split();
    let tx = Mutex::new(tx);
    send(&tx, Payload::Open(Open { config: Some(config) })).await?;
    loop {
        let next = timeout(limits::WEBTTY_OPEN_TIMEOUT, next_payload(&mut rx)).await.ok_or_else(|| {
            WebttyError::Protocol(format!("no Ack within {} s", limits::WEBTTY_OPEN_TIMEOUT.as_secs()))
        })?;
        match next.map_err(|e| WebttyError::Protocol(e.to_string()))? {
            Some(Payload::Ack(_)) => return Ok((tx, rx)),
            Some(Payload::Error(e)) => return Err(WebttyError::Refused(e.msg)),
            Some(Payload::Heartbeat(_)) => continue,
            Some(other) => {
                return Err(WebttyError::Protocol(format!("expected Ack, got {}", payload_name(&other))));
            }
            None => return Err(WebttyError::Disconnected("server closed the connection before Ack".into())),
        }
    }
}

/// The next payload from the server; with `heartbeats` a server silent for [`limits::HEARTBEAT_DEAD_AFTER`]
/// is declared dead. `Ok(None)`: the WebSocket closed.
pub(crate) async fn next(rx: &mut ClientRx, heartbeats: bool) -> Result<Option<Payload>, WebttyError> {
    let next = if heartbeats {
        timeout(limits::HEARTBEAT_DEAD_AFTER, next_payload(rx)).await.ok_or_else(|| {
            WebttyError::Disconnected(format!("server silent for {} s", limits::HEARTBEAT_DEAD_AFTER.as_secs()))
        })?
    } else {
        next_payload(rx).await
    };
    next.map_err(|e| WebttyError::Protocol(e.to_string()))
}

/// Sends a heartbeat every [`limits::HEARTBEAT_INTERVAL`]; returns only when sending fails.
pub(crate) async fn heartbeats(tx: &ClientTx) -> WebttyError {
    loop {
        async_io::Timer::after(limits::HEARTBEAT_INTERVAL).await;
        if let Err(e) = send(tx, Payload::Heartbeat(Heartbeat {})).await {
            return e;
        }
    }
}

/// Ends the session from the client side (the server kills the remote process group): `Close`, then the
/// WebSocket closing handshake, bounded by [`limits::WS_CLOSE_TIMEOUT`].
pub(crate) async fn abandon(tx: &ClientTx, rx: &mut ClientRx) {
    timeout(limits::WS_CLOSE_TIMEOUT, async {
        let _ = send(tx, Payload::Close(Close { return_code: 0 })).await;
    })
    .await;
    close(tx, rx).await;
}

/// The WebSocket closing handshake, bounded by [`limits::WS_CLOSE_TIMEOUT`].
pub(crate) async fn close(tx: &ClientTx, rx: &mut ClientRx) {
    timeout(limits::WS_CLOSE_TIMEOUT, async {
        let _ = tx.lock().await.close(None).await;
        while let Some(Ok(_)) = rx.next().await {}
    })
    .await;
}
