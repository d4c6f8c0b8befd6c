//! rstream protocol 1.4.5 messages (`rstream.io_rstrm.protobuf`), field numbers as upstream.
//!
//! Every engine connection starts with one framed [`Message`]: `open_control_channel_req` (an agent's control
//! channel), `proxy_req` (an agent's leg of one incoming stream, token = that stream's one-time `secret`) or
//! `stream_req` (a client dialing a tunnel by id or name). After `proxy_req`/`stream_req` (and the response when
//! `zero_rtt` is false) the connection carries raw bytes.
//!
//! Protocol 1.4 added [`ErrorCode`] (the class of every [`Error`]), negotiated control-channel liveness with
//! numbered heartbeats (the rules: [`engine_answer`], [`client_accepts`],
//! [`HeartbeatCounter`]), `ProxyConnRsp` as the completion ack of a leg, `ProxyConnReq.proxy_endpoint` for
//! redirected legs, and datagram channels (`StreamReq.datagram_channel`, [`DatagramChannelClose`]).
//!
//! `google.protobuf` wrappers are modelled as tiny messages ([`StringValue`], [`BoolValue`]): an absent wrapper
//! means "unset", which upstream uses to tell defaults apart (e.g. `publish` unset = published).

/// Protocol version we speak, sent in `ClientDetails.protocol_version`.
pub const PROTOCOL_VERSION: &str = "1.4.5";
/// ALPN identifier of the rstream protocol on the engine's TLS port.
pub const ALPN_RSTRM: &str = "rstrm/1";
/// ALPN identifier of the engine's REST API and published HTTP tunnels on the same port.
pub const ALPN_HTTP1: &str = "http/1.1";

mod common;
mod liveness;
mod stream;
mod tunnel;

pub use common::*;
pub use liveness::*;
pub use stream::*;
pub use tunnel::*;

/// The envelope: every frame on the rstream protocol is one `Message`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// Which message this is.
    #[prost(oneof = "message::Payload", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17")]
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
        /// Tag 17 (protocol 1.4).
        #[prost(message, tag = "17")]
        DatagramChannelClose(DatagramChannelClose),
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
            proxy_endpoint: None,
        }));
        let bytes = msg.encode_to_vec();
        assert_eq!(bytes[0], 0x4a);
        // tunnel_id=1 "t", stream_id=2 "s", secret=3 {1:"x"}, source_ip=4 {v4 fixed32=1}
        assert_eq!(&bytes[2..], &[0x0a, 1, b't', 0x12, 1, b's', 0x1a, 3, 0x0a, 1, b'x', 0x22, 5, 0x0d, 1, 0, 0, 127]);
        assert_eq!(Message::decode(bytes.as_slice()).unwrap(), msg);
    }

    /// Encodes `payload` as an envelope, checks the exact bytes, and decodes them back.
    fn assert_wire(payload: Payload, expected: &[u8]) {
        let msg = Message::new(payload);
        assert_eq!(msg.encode_to_vec(), expected, "{msg:?}");
        assert_eq!(Message::decode(expected).unwrap(), msg);
    }

    #[test]
    fn heartbeats_are_numbered_acked_or_legacy_empty() {
        // Field 15 (heartbeat) → key 0x7a; sequence=1 → 0x08, acknowledgement=2 → 0x10.
        assert_wire(Payload::Heartbeat(Heartbeat::LEGACY), &[0x7a, 0]);
        assert_wire(Payload::Heartbeat(Heartbeat { sequence: 1, acknowledgement: 0 }), &[0x7a, 2, 0x08, 1]);
        assert_wire(Payload::Heartbeat(Heartbeat { sequence: 0, acknowledgement: 300 }), &[0x7a, 3, 0x10, 0xac, 0x02]);
    }

    #[test]
    fn liveness_is_field_2_of_the_request_and_3_of_ok() {
        let asked = ControlChannelLiveness { heartbeat_interval_ms: 5000, heartbeat_timeout_ms: 0 };
        // 5000 = varint 88 27.
        let req = OpenControlChannelReq { client_details: None, liveness: Some(asked) };
        assert_wire(Payload::OpenControlChannelReq(req), &[0x0a, 5, 0x12, 3, 0x08, 0x88, 0x27]);
        let answer = ControlChannelLiveness { heartbeat_interval_ms: 5000, heartbeat_timeout_ms: 15_000 };
        let ok =
            open_control_channel_rsp::Ok { client_id: String::new(), server_details: None, liveness: Some(answer) };
        let rsp = OpenControlChannelRsp { result: Some(open_control_channel_rsp::Result::Ok(ok)) };
        // 15000 = varint 98 75; Ok is field 1 of the response, liveness field 3 of Ok.
        let bytes = [0x12, 10, 0x0a, 8, 0x1a, 6, 0x08, 0x88, 0x27, 0x10, 0x98, 0x75];
        assert_wire(Payload::OpenControlChannelRsp(rsp), &bytes);
    }

    #[test]
    fn error_codes_are_upstream_enum_values() {
        // ProxyConnRsp (field 10 → 0x52) with error SERVICE_UNAVAILABLE = 6000 = varint f0 2e.
        let rsp = ProxyConnRsp { stream_id: "s".into(), error: Some(Error { code: 6000, message: None }) };
        assert_wire(Payload::ProxyConnRsp(rsp.clone()), &[0x52, 8, 0x0a, 1, b's', 0x12, 3, 0x08, 0xf0, 0x2e]);
        assert_eq!(rsp.error.unwrap().code(), ErrorCode::ServiceUnavailable);
        let codes = [
            (ErrorCode::Unspecified, 0),
            (ErrorCode::Unauthorized, 1000),
            (ErrorCode::InvalidRequest, 2000),
            (ErrorCode::ProtocolVersionMissing, 2010),
            (ErrorCode::ProtocolVersionInvalid, 2020),
            (ErrorCode::ProtocolVersionIncompatible, 2030),
            (ErrorCode::TunnelNotFound, 3000),
            (ErrorCode::InvalidStream, 4000),
            (ErrorCode::FeatureNotAvailable, 5000),
            (ErrorCode::ServiceUnavailable, 6000),
            (ErrorCode::CapacityExhausted, 7000),
            (ErrorCode::Internal, 9000),
        ];
        for (code, value) in codes {
            assert_eq!((i32::from(code), ErrorCode::try_from(value)), (value, Ok(code)));
        }
        let legacy = Error { code: 409, message: some_str("taken") };
        assert_eq!((legacy.code(), legacy.to_string()), (ErrorCode::Unspecified, "engine error 409: taken".into()));
        let coded = Error::new(ErrorCode::TunnelNotFound, "no \"web\"");
        assert_eq!(coded.to_string(), "engine error 3000 TUNNEL_NOT_FOUND: no \"web\"");
    }

    #[test]
    fn redirects_datagram_channels_and_their_close_have_upstream_tags() {
        // ProxyConnReq.proxy_endpoint = field 5 → 0x2a.
        let req = ProxyConnReq { proxy_endpoint: some_str("e"), ..Default::default() };
        assert_wire(Payload::ProxyConnReq(req), &[0x4a, 5, 0x2a, 3, 0x0a, 1, b'e']);
        // StreamReq.datagram_channel = field 4 → 0x22.
        let req = StreamReq { datagram_channel: Some(true.into()), ..Default::default() };
        assert_wire(Payload::StreamReq(req), &[0x6a, 4, 0x22, 2, 0x08, 1]);
        // Message field 17 → key 0x8a 0x01.
        let close = DatagramChannelClose { stream_id: "s".into(), error: None };
        assert_wire(Payload::DatagramChannelClose(close), &[0x8a, 0x01, 3, 0x0a, 1, b's']);
    }

    #[test]
    fn tunnel_properties_1_4_fields_have_upstream_numbers() {
        let t = Some(BoolValue::from(true));
        let props = |p: TunnelProperties| p.encode_to_vec();
        assert_eq!(props(TunnelProperties { mtls_auth: t, ..Default::default() }), [0x7a, 2, 0x08, 1]);
        let host = TunnelProperties { hostname: some_str("h"), ..Default::default() };
        assert_eq!(props(host), [0xb2, 0x01, 3, 0x0a, 1, b'h']);
        // 443 = varint bb 03.
        let port = TunnelProperties { port: Some(UInt32Value { value: 443 }), ..Default::default() };
        assert_eq!(props(port), [0xba, 0x01, 3, 0x08, 0xbb, 0x03]);
        assert_eq!(props(TunnelProperties { upstream_tls: t, ..Default::default() }), [0xc2, 0x01, 2, 0x08, 1]);
        let guaranteed = TunnelProperties { datagram_guaranteed_delivery: t, ..Default::default() };
        assert_eq!(props(guaranteed), [0xca, 0x01, 2, 0x08, 1]);
        let cross = TunnelProperties { allow_cross_region_routing: t, ..Default::default() };
        assert_eq!(props(cross.clone()), [0xd2, 0x01, 2, 0x08, 1]);
        assert_eq!(TunnelProperties::decode(props(cross.clone()).as_slice()).unwrap(), cross);
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
            Payload::OpenControlChannelReq(OpenControlChannelReq { client_details: details(), liveness: None }),
            Payload::StreamReq(StreamReq {
                client_details: details(),
                tunnel_id_name: "web".into(),
                ..Default::default()
            }),
            Payload::ProxyReq(ProxyReq { client_details: details(), stream_id: "s1".into(), zero_rtt: None }),
            Payload::ProxyConnReq(ProxyConnReq {
                tunnel_id: "t1".into(),
                stream_id: "s1".into(),
                secret: some_str(jwt),
                source_ip: Some(std::net::IpAddr::from([10, 0, 0, 1]).into()),
                proxy_endpoint: some_str("ingress.example:8443"),
            }),
        ];
        for payload in messages {
            let text = format!("{:?}", Message::new(payload));
            assert!(!text.contains("eyJ") && !text.contains("c2lnbmF0dXJl"), "{text}");
            assert!(text.contains(&format!("<redacted, {} bytes>", jwt.len())), "{text}");
        }
        let text = format!("{:?}", ClientDetails::this_binary(jwt));
        assert!(text.contains("agent: Some(\"rstream-rs\")") && text.contains("protocol_version: Some(\"1.4.5\")"));
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
