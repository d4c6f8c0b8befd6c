//! Fuzz target: protobuf decoding of the rstream envelope (`rstream::proto::rstream::Message`).
//!
//! Properties: decoding any bytes returns a message or an error (no panic, no unbounded allocation); a decoded
//! message encodes to exactly `encoded_len` bytes and decodes back to itself; the helpers the engine and the
//! agent apply to decoded fields (`IpAddress::to_ip`, `TunnelProperties::is_published`, error display) accept
//! whatever a peer can send.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{opt_str, Message as Envelope};

fuzz_target!(|bytes: &[u8]| {
    let Ok(msg) = Envelope::decode(bytes) else { return };
    let encoded = msg.encode_to_vec();
    assert_eq!(encoded.len(), msg.encoded_len(), "encoded_len disagrees with the encoding");
    let back = Envelope::decode(encoded.as_slice()).expect("a re-encoded envelope decodes");
    assert_eq!(back, msg, "decode ∘ encode is not the identity");
    inspect_payload(msg.payload);
});

/// Applies the field helpers that code receiving this payload uses.
fn inspect_payload(payload: Option<Payload>) {
    match payload {
        Some(Payload::ProxyConnReq(req)) => {
            if let Some(ip) = req.source_ip.and_then(|ip| ip.to_ip()) {
                assert!(!ip.to_string().is_empty());
            }
            let _ = opt_str(&req.secret);
        }
        Some(Payload::OpenTunnelReq(req)) => {
            let _ = req.tunnel_properties.unwrap_or_default().is_published();
        }
        Some(Payload::ProxyConnRsp(rsp)) => {
            let _ = rsp.error.map(|e| e.to_string());
        }
        Some(Payload::ProxyRsp(rsp)) => {
            let _ = rsp.error.map(|e| e.to_string());
        }
        _ => {}
    }
}
