//! WebTTY messages on a WebSocket: each protobuf [`Message`] travels as one binary WebSocket message
//! (upstream's `websocket` transport). Server and client share these helpers and the bounded WebSocket
//! configuration.

use std::fmt;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use futures_lite::{Stream, StreamExt};
use prost::Message as _;

use crate::limits;
use crate::proto::webtty::message::Payload;
use crate::proto::webtty::Message;

/// The WebSocket configuration every WebTTY peer uses: messages and frames capped at
/// [`limits::MAX_WS_MESSAGE_LEN`], a [`limits::WS_READ_BUFFER_LEN`] read buffer, and writes that go straight
/// to the socket (so a slow peer stalls the writer instead of growing a buffer).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(limits::WS_READ_BUFFER_LEN)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * limits::MAX_WS_MESSAGE_LEN)
        .max_message_size(Some(limits::MAX_WS_MESSAGE_LEN))
        .max_frame_size(Some(limits::MAX_WS_MESSAGE_LEN))
}

/// Encodes one WebTTY payload as a binary WebSocket message.
pub fn encode(payload: Payload) -> WsMessage {
    WsMessage::binary(Message::new(payload).encode_to_vec())
}

/// Why the next WebTTY message could not be read.
#[derive(Debug)]
pub enum WireError {
    /// The WebSocket failed (I/O, protocol violation, oversize message).
    WebSocket(WsError),
    /// A text message arrived; WebTTY is binary only.
    Text,
    /// A binary message that is not a WebTTY protobuf `Message`.
    Malformed(prost::DecodeError),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::WebSocket(e) => write!(f, "websocket: {e}"),
            WireError::Text => f.write_str("unexpected text websocket message (webtty messages are binary)"),
            WireError::Malformed(e) => write!(f, "malformed webtty message: {e}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Reads the next WebTTY payload. Pings, pongs and messages unknown to this version (newer upstream payloads)
/// are skipped; `Ok(None)` means the peer closed the WebSocket (close frame or end of stream).
pub async fn next_payload<R>(rx: &mut R) -> Result<Option<Payload>, WireError>
where
    R: Stream<Item = Result<WsMessage, WsError>> + Unpin,
{
    loop {
        let msg = match rx.next().await {
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => return Ok(None),
            Some(Err(e)) => return Err(WireError::WebSocket(e)),
            Some(Ok(msg)) => msg,
        };
        match msg {
            WsMessage::Binary(bytes) => match Message::decode(bytes.as_ref()) {
                Ok(Message { payload: Some(payload) }) => return Ok(Some(payload)),
                Ok(Message { payload: None }) => continue,
                Err(e) => return Err(WireError::Malformed(e)),
            },
            WsMessage::Text(_) => return Err(WireError::Text),
            WsMessage::Close(_) => return Ok(None),
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
        }
    }
}

/// A short name of a payload kind for error messages.
pub fn payload_name(payload: &Payload) -> &'static str {
    match payload {
        Payload::Open(_) => "Open",
        Payload::Ack(_) => "Ack",
        Payload::Error(_) => "Error",
        Payload::Close(_) => "Close",
        Payload::Data(_) => "Data",
        Payload::Parameter(_) => "Parameter",
        Payload::Heartbeat(_) => "Heartbeat",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::webtty::Close;
    use futures_lite::{future, stream};

    #[test]
    fn payloads_round_trip_and_control_frames_are_skipped() {
        future::block_on(async {
            let msgs = vec![
                Ok(WsMessage::Ping(vec![1].into())),
                Ok(encode(Payload::Close(Close { return_code: 7 }))),
                Ok(WsMessage::binary(vec![0x4a, 0x00])), // newer upstream payload: skipped
                Ok(WsMessage::Close(None)),
            ];
            let mut rx = stream::iter(msgs);
            assert_eq!(next_payload(&mut rx).await.unwrap(), Some(Payload::Close(Close { return_code: 7 })));
            assert_eq!(next_payload(&mut rx).await.unwrap(), None);
        });
    }

    #[test]
    fn text_and_garbage_are_errors() {
        future::block_on(async {
            let mut rx = stream::iter(vec![Ok(WsMessage::text("hi"))]);
            assert!(matches!(next_payload(&mut rx).await, Err(WireError::Text)));
            let mut rx = stream::iter(vec![Ok(WsMessage::binary(vec![0xff, 0xff, 0xff]))]);
            assert!(matches!(next_payload(&mut rx).await, Err(WireError::Malformed(_))));
        });
    }
}
