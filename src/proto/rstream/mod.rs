//! rstream protocol 1.3 messages (`rstream.io_rstrm.protobuf`), field numbers as upstream.
//!
//! Every engine connection starts with one framed [`Message`]: `open_control_channel_req` (an agent's control
//! channel), `proxy_req` (an agent's leg of one incoming stream, token = that stream's one-time `secret`) or
//! `stream_req` (a client dialing a tunnel by id or name). After `proxy_req`/`stream_req` (and the response when
//! `zero_rtt` is false) the connection carries raw bytes.
//!
//! `google.protobuf` wrappers are modelled as tiny messages ([`StringValue`], [`BoolValue`]): an absent wrapper
//! means "unset", which upstream uses to tell defaults apart (e.g. `publish` unset = published).

/// Protocol version we speak, sent in `ClientDetails.protocol_version`.
pub const PROTOCOL_VERSION: &str = "1.3.0";
/// ALPN identifier of the rstream protocol on the engine's TLS port.
pub const ALPN_RSTRM: &str = "rstrm/1";
/// ALPN identifier of the engine's REST API and published HTTP tunnels on the same port.
pub const ALPN_HTTP1: &str = "http/1.1";

mod common;
mod stream;
mod tunnel;

pub use common::*;
pub use stream::*;
pub use tunnel::*;

/// The envelope: every frame on the rstream protocol is one `Message`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// Which message this is.
    #[prost(oneof = "message::Payload", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16")]
    pub payload: Option<message::Payload>,
}

impl Message {
    /// Wraps a payload.
    pub fn new(payload: message::Payload) -> Self {
        Message { payload: Some(payload) }
    }
}

/// Oneof of [`Message`].
pub mod message {
    use super::*;

    /// The payload kinds, with upstream tags.
    #[allow(clippy::large_enum_variant)] // prost oneof; boxing would change the public message API
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        /// Tag 1.
        #[prost(message, tag = "1")]
        OpenControlChannelReq(OpenControlChannelReq),
        /// Tag 2.
        #[prost(message, tag = "2")]
        OpenControlChannelRsp(OpenControlChannelRsp),
        /// Tag 3.
        #[prost(message, tag = "3")]
        CloseControlChannelReq(CloseControlChannelReq),
        /// Tag 4.
        #[prost(message, tag = "4")]
        CloseControlChannelRsp(CloseControlChannelRsp),
        /// Tag 5.
        #[prost(message, tag = "5")]
        OpenTunnelReq(OpenTunnelReq),
        /// Tag 6.
        #[prost(message, tag = "6")]
        OpenTunnelRsp(OpenTunnelRsp),
        /// Tag 7.
        #[prost(message, tag = "7")]
        CloseTunnelReq(CloseTunnelReq),
        /// Tag 8.
        #[prost(message, tag = "8")]
        CloseTunnelRsp(CloseTunnelRsp),
        /// Tag 9.
        #[prost(message, tag = "9")]
        ProxyConnReq(ProxyConnReq),
        /// Tag 10.
        #[prost(message, tag = "10")]
        ProxyConnRsp(ProxyConnRsp),
        /// Tag 11.
        #[prost(message, tag = "11")]
        ProxyReq(ProxyReq),
        /// Tag 12.
        #[prost(message, tag = "12")]
        ProxyRsp(ProxyRsp),
        /// Tag 13.
        #[prost(message, tag = "13")]
        StreamReq(StreamReq),
        /// Tag 14.
        #[prost(message, tag = "14")]
        StreamRsp(StreamRsp),
        /// Tag 15.
        #[prost(message, tag = "15")]
        Heartbeat(Heartbeat),
        /// Tag 16.
        #[prost(message, tag = "16")]
        ServerMessage(ServerMessage),
    }
}

#[cfg(test)]
mod tests {
    use super::message::Payload;
    use super::*;
    use prost::Message as _;

    #[test]
    fn envelope_tags_match_upstream() {
        // Field 9 (proxy_conn_req), length-delimited → key byte 9<<3|2 = 0x4a.
        let msg = Message::new(Payload::ProxyConnReq(ProxyConnReq {
            tunnel_id: "t".into(),
            stream_id: "s".into(),
            secret: some_str("x"),
            source_ip: Some(std::net::IpAddr::from([127, 0, 0, 1]).into()),
        }));
        let bytes = msg.encode_to_vec();
        assert_eq!(bytes[0], 0x4a);
        // tunnel_id=1 "t", stream_id=2 "s", secret=3 {1:"x"}, source_ip=4 {v4 fixed32=1}
        assert_eq!(&bytes[2..], &[0x0a, 1, b't', 0x12, 1, b's', 0x1a, 3, 0x0a, 1, b'x', 0x22, 5, 0x0d, 1, 0, 0, 127]);
        assert_eq!(Message::decode(bytes.as_slice()).unwrap(), msg);
    }

    #[test]
    fn tunnel_properties_round_trip_with_labels_and_wrappers() {
        let mut props = TunnelProperties { name: some_str("shell"), publish: Some(false.into()), ..Default::default() };
        props.labels.insert("role".into(), "codex".into());
        let req = Message::new(Payload::OpenTunnelReq(OpenTunnelReq {
            request_id: "r1".into(),
            tunnel_properties: Some(props.clone()),
        }));
        let back = Message::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, req);
        assert!(!props.is_published());
        assert!(TunnelProperties::default().is_published());
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // A StreamReq with an extra field 99 (varint) from a newer peer.
        let mut bytes = StreamReq { tunnel_id_name: "x".into(), ..Default::default() }.encode_to_vec();
        bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
        assert_eq!(StreamReq::decode(bytes.as_slice()).unwrap().tunnel_id_name, "x");
    }

    #[test]
    fn debug_of_messages_carrying_credentials_masks_them() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let details = || Some(ClientDetails::this_binary(jwt));
        let messages = [
            Payload::OpenControlChannelReq(OpenControlChannelReq { client_details: details() }),
            Payload::StreamReq(StreamReq { client_details: details(), tunnel_id_name: "web".into(), zero_rtt: None }),
            Payload::ProxyReq(ProxyReq { client_details: details(), stream_id: "s1".into(), zero_rtt: None }),
            Payload::ProxyConnReq(ProxyConnReq {
                tunnel_id: "t1".into(),
                stream_id: "s1".into(),
                secret: some_str(jwt),
                source_ip: Some(std::net::IpAddr::from([10, 0, 0, 1]).into()),
            }),
        ];
        for payload in messages {
            let text = format!("{:?}", Message::new(payload));
            assert!(!text.contains("eyJ") && !text.contains("c2lnbmF0dXJl"), "{text}");
            assert!(text.contains(&format!("<redacted, {} bytes>", jwt.len())), "{text}");
        }
        let text = format!("{:?}", ClientDetails::this_binary(jwt));
        assert!(text.contains("agent: Some(\"rstream-rs\")") && text.contains("protocol_version: Some(\"1.3.0\")"));
        let text = format!("{:?}", ProxyConnReq::default());
        assert!(text.contains("secret: None"), "{text}");
    }

    #[test]
    fn ip_address_round_trips() {
        for ip in ["10.1.2.3", "::1"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(IpAddress::from(ip).to_ip(), Some(ip));
        }
        assert_eq!(IpAddress { addr: Some(ip_address::Addr::V6(vec![1, 2])) }.to_ip(), None);
    }
}
