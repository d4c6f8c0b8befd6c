//! Fuzz target: WebTTY protobuf decoding (`rstream::proto::webtty::Message`) and the WebSocket reader both
//! ends use on it (`rstream::webtty::wire::next_payload`).
//!
//! Properties: a decoded message encodes to exactly `encoded_len` bytes and decodes back to itself; handed the
//! same bytes as one binary WebSocket message, `next_payload` returns the decoded payload, skips a message
//! without a known payload (newer upstream kinds), and reports undecodable bytes as `Malformed`.

#![no_main]

use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use rstream::proto::webtty::Message;
use rstream::webtty::wire::{next_payload, WireError};

fuzz_target!(|bytes: &[u8]| {
    let decoded = Message::decode(bytes);
    if let Ok(msg) = &decoded {
        let encoded = msg.encode_to_vec();
        assert_eq!(encoded.len(), msg.encoded_len(), "encoded_len disagrees with the encoding");
        let back = Message::decode(encoded.as_slice()).expect("a re-encoded message decodes");
        assert_eq!(&back, msg, "decode ∘ encode is not the identity");
    }
    let mut websocket = futures_lite::stream::iter([Ok::<_, WsError>(WsMessage::binary(bytes.to_vec()))]);
    let read = futures_lite::future::block_on(next_payload(&mut websocket));
    match (decoded, read) {
        (Ok(Message { payload: Some(expected) }), Ok(Some(got))) => assert_eq!(got, expected),
        (Ok(Message { payload: None }), Ok(None)) => {}
        (Err(_), Err(WireError::Malformed(_))) => {}
        (decoded, read) => panic!("next_payload disagrees with decode: {decoded:?} vs {read:?}"),
    }
});
