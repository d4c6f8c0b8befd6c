//! rstream protocol 1.3 messages (`rstream.io_rstrm.protobuf`), field numbers as upstream.
//!
//! Every engine connection starts with one framed [`Message`]: `open_control_channel_req` (an agent's control
//! channel), `proxy_req` (an agent's leg of one incoming stream, token = that stream's one-time `secret`) or
//! `stream_req` (a client dialing a tunnel by id or name). After `proxy_req`/`stream_req` (and the response when
//! `zero_rtt` is false) the connection carries raw bytes.
//!
//! `google.protobuf` wrappers are modelled as tiny messages ([`StringValue`], [`BoolValue`]): an absent wrapper
//! means "unset", which upstream uses to tell defaults apart (e.g. `publish` unset = published).

use std::collections::BTreeMap;

/// Protocol version we speak, sent in `ClientDetails.protocol_version`.
pub const PROTOCOL_VERSION: &str = "1.3.0";
/// ALPN identifier of the rstream protocol on the engine's TLS port.
pub const ALPN_RSTRM: &str = "rstrm/1";
/// ALPN identifier of the engine's REST API and published HTTP tunnels on the same port.
pub const ALPN_HTTP1: &str = "http/1.1";

/// `google.protobuf.StringValue`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StringValue {
    /// The wrapped string.
    #[prost(string, tag = "1")]
    pub value: String,
}

/// `google.protobuf.BoolValue`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BoolValue {
    /// The wrapped bool.
    #[prost(bool, tag = "1")]
    pub value: bool,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Sub-second nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl From<&str> for StringValue {
    fn from(value: &str) -> Self {
        StringValue { value: value.to_owned() }
    }
}

impl From<String> for StringValue {
    fn from(value: String) -> Self {
        StringValue { value }
    }
}

impl From<bool> for BoolValue {
    fn from(value: bool) -> Self {
        BoolValue { value }
    }
}

/// Reads an optional string wrapper as `Option<&str>`.
pub fn opt_str(v: &Option<StringValue>) -> Option<&str> {
    v.as_ref().map(|s| s.value.as_str())
}

/// Wraps a string for an optional wrapper field.
pub fn some_str(s: impl Into<String>) -> Option<StringValue> {
    Some(StringValue { value: s.into() })
}

/// A peer address: IPv4 as a big-endian `fixed32`, or IPv6 bytes.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct IpAddress {
    /// Which family.
    #[prost(oneof = "ip_address::Addr", tags = "1, 2")]
    pub addr: Option<ip_address::Addr>,
}

/// Oneof of [`IpAddress`].
pub mod ip_address {
    /// IPv4 or IPv6.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Addr {
        /// IPv4, big-endian.
        #[prost(fixed32, tag = "1")]
        V4(u32),
        /// IPv6, 16 bytes.
        #[prost(bytes = "vec", tag = "2")]
        V6(Vec<u8>),
    }
}

impl From<std::net::IpAddr> for IpAddress {
    fn from(ip: std::net::IpAddr) -> Self {
        let addr = match ip {
            std::net::IpAddr::V4(v4) => ip_address::Addr::V4(u32::from(v4)),
            std::net::IpAddr::V6(v6) => ip_address::Addr::V6(v6.octets().to_vec()),
        };
        IpAddress { addr: Some(addr) }
    }
}

impl IpAddress {
    /// The address as a std type, if well-formed.
    pub fn to_ip(&self) -> Option<std::net::IpAddr> {
        match self.addr.as_ref()? {
            ip_address::Addr::V4(v) => Some(std::net::Ipv4Addr::from(*v).into()),
            ip_address::Addr::V6(b) => {
                <[u8; 16]>::try_from(b.as_slice()).ok().map(|o| std::net::Ipv6Addr::from(o).into())
            }
        }
    }
}

/// A protocol-level error: a numeric code and a human message.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Error {
    /// Error code (HTTP-like: 400 bad request, 401 unauthorized, 403 forbidden, 404 not found, 409 conflict,
    /// 503 unavailable, 504 timeout).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Message for humans.
    #[prost(message, optional, tag = "2")]
    pub message: Option<StringValue>,
}

impl Error {
    /// Builds an error with a code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Error { code, message: some_str(message) }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "engine error {}: {}", self.code, opt_str(&self.message).unwrap_or(""))
    }
}

impl std::error::Error for Error {}

/// Who is connecting: software identity and the credential.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ClientDetails {
    /// Agent name (e.g. `rstream-rs`).
    #[prost(message, optional, tag = "1")]
    pub agent: Option<StringValue>,
    /// Release channel.
    #[prost(message, optional, tag = "2")]
    pub channel: Option<StringValue>,
    /// Software version.
    #[prost(message, optional, tag = "3")]
    pub version: Option<StringValue>,
    /// Operating system.
    #[prost(message, optional, tag = "4")]
    pub os: Option<StringValue>,
    /// CPU architecture.
    #[prost(message, optional, tag = "5")]
    pub arch: Option<StringValue>,
    /// JWT (control channel, stream request) or the stream's one-time secret (proxy request).
    #[prost(message, optional, tag = "6")]
    pub token: Option<StringValue>,
    /// Protocol version, [`PROTOCOL_VERSION`].
    #[prost(message, optional, tag = "7")]
    pub protocol_version: Option<StringValue>,
}

impl ClientDetails {
    /// Details describing this binary, carrying `token`.
    pub fn this_binary(token: impl Into<String>) -> Self {
        ClientDetails {
            agent: some_str("rstream-rs"),
            channel: some_str("stable"),
            version: some_str(env!("CARGO_PKG_VERSION")),
            os: some_str(std::env::consts::OS),
            arch: some_str(std::env::consts::ARCH),
            token: some_str(token),
            protocol_version: some_str(PROTOCOL_VERSION),
        }
    }
}

/// What the engine says about itself.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ServerDetails {
    /// Engine software.
    #[prost(message, optional, tag = "1")]
    pub agent: Option<StringValue>,
    /// Release channel.
    #[prost(message, optional, tag = "2")]
    pub channel: Option<StringValue>,
    /// Engine version.
    #[prost(message, optional, tag = "3")]
    pub version: Option<StringValue>,
    /// Plan name (hosted engines).
    #[prost(message, optional, tag = "4")]
    pub plan: Option<StringValue>,
    /// Provider (hosted engines; `self-hosted` here).
    #[prost(message, optional, tag = "5")]
    pub provider: Option<StringValue>,
    /// Region.
    #[prost(message, optional, tag = "6")]
    pub region: Option<StringValue>,
    /// Update notice.
    #[prost(message, optional, tag = "7")]
    pub update: Option<StringValue>,
}

/// A tunnel's properties, as requested by an agent and as stored by the engine.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TunnelProperties {
    /// Engine-assigned id (read-only).
    #[prost(message, optional, tag = "1")]
    pub id: Option<StringValue>,
    /// Engine-assigned creation time (read-only).
    #[prost(message, optional, tag = "2")]
    pub creation_date: Option<Timestamp>,
    /// Tunnel name, unique per engine.
    #[prost(message, optional, tag = "3")]
    pub name: Option<StringValue>,
    /// `bytestream` or `datagram`.
    #[prost(message, optional, tag = "4")]
    pub r#type: Option<StringValue>,
    /// Published on the engine's public host; unset means true.
    #[prost(message, optional, tag = "5")]
    pub publish: Option<BoolValue>,
    /// `http`, `tls`, `tcp`, … (unset: raw byte stream).
    #[prost(message, optional, tag = "6")]
    pub protocol: Option<StringValue>,
    /// Free-form labels used for inventory and filters.
    #[prost(btree_map = "string, string", tag = "7")]
    pub labels: BTreeMap<String, String>,
    /// GeoIP allow list (ISO alpha-2).
    #[prost(string, repeated, tag = "8")]
    pub geoip: Vec<String>,
    /// Trusted source CIDRs.
    #[prost(string, repeated, tag = "9")]
    pub trusted_ips: Vec<String>,
    /// Public host (deprecated upstream; we fill it with the routed host name).
    #[prost(message, optional, tag = "10")]
    pub host: Option<StringValue>,
    /// `terminated` or `passthrough`.
    #[prost(message, optional, tag = "11")]
    pub tls_mode: Option<StringValue>,
    /// ALPN list for TLS tunnels.
    #[prost(string, repeated, tag = "12")]
    pub tls_alpns: Vec<String>,
    /// `tls1.2` or `tls1.3`.
    #[prost(message, optional, tag = "13")]
    pub tls_min_version: Option<StringValue>,
    /// Cipher names.
    #[prost(string, repeated, tag = "14")]
    pub tls_ciphers: Vec<String>,
    /// Require client certificates.
    #[prost(message, optional, tag = "15")]
    pub mtls: Option<BoolValue>,
    /// CA for client certificates.
    #[prost(message, optional, tag = "16")]
    pub mtls_cacert_pem: Option<StringValue>,
    /// `http/1.1`, `h2c`, `h3`.
    #[prost(message, optional, tag = "17")]
    pub http_version: Option<StringValue>,
    /// Upstream speaks TLS (deprecated name).
    #[prost(message, optional, tag = "18")]
    pub http_use_tls: Option<BoolValue>,
    /// Published HTTP requires `Authorization: Bearer <token>` or `?rstream.token=`.
    #[prost(message, optional, tag = "19")]
    pub token_auth: Option<BoolValue>,
    /// rstream account authentication (hosted only).
    #[prost(message, optional, tag = "20")]
    pub rstream_auth: Option<BoolValue>,
    /// Browser challenge (hosted only).
    #[prost(message, optional, tag = "21")]
    pub challenge_mode: Option<BoolValue>,
}

impl TunnelProperties {
    /// Whether the tunnel is published (unset = true, as upstream).
    pub fn is_published(&self) -> bool {
        self.publish.is_none_or(|b| b.value)
    }
}

/// Opens a control channel; first message of an agent connection.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct OpenControlChannelReq {
    /// Who is connecting, with the JWT.
    #[prost(message, optional, tag = "1")]
    pub client_details: Option<ClientDetails>,
}

/// Reply to [`OpenControlChannelReq`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct OpenControlChannelRsp {
    /// Ok or error.
    #[prost(oneof = "open_control_channel_rsp::Result", tags = "1, 2")]
    pub result: Option<open_control_channel_rsp::Result>,
}

/// Oneof of [`OpenControlChannelRsp`].
pub mod open_control_channel_rsp {
    /// Successful open.
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct Ok {
        /// Engine-assigned client id.
        #[prost(string, tag = "1")]
        pub client_id: String,
        /// Engine details.
        #[prost(message, optional, tag = "2")]
        pub server_details: Option<super::ServerDetails>,
    }

    /// Ok or error.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Result {
        /// Channel open.
        #[prost(message, tag = "1")]
        Ok(Ok),
        /// Refused.
        #[prost(message, tag = "2")]
        Error(super::Error),
    }
}

/// Closes the control channel (empty).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct CloseControlChannelReq {}

/// Acknowledges [`CloseControlChannelReq`] (empty).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct CloseControlChannelRsp {}

/// Registers a tunnel on an open control channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpenTunnelReq {
    /// Correlates the response (UUID v4 string).
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// Requested properties.
    #[prost(message, optional, tag = "2")]
    pub tunnel_properties: Option<TunnelProperties>,
}

/// Reply to [`OpenTunnelReq`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpenTunnelRsp {
    /// Echo of the request id.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// The stored properties (with id) or an error.
    #[prost(oneof = "open_tunnel_rsp::Result", tags = "2, 3")]
    pub result: Option<open_tunnel_rsp::Result>,
}

/// Oneof of [`OpenTunnelRsp`].
pub mod open_tunnel_rsp {
    /// Properties or error.
    #[allow(clippy::large_enum_variant)] // prost oneof; boxing would change the public message API
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Result {
        /// Tunnel created.
        #[prost(message, tag = "2")]
        TunnelProperties(super::TunnelProperties),
        /// Refused.
        #[prost(message, tag = "3")]
        Error(super::Error),
    }
}

/// Client asks to close one of its tunnels.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CloseTunnelReq {
    /// Tunnel id.
    #[prost(string, tag = "1")]
    pub tunnel_id: String,
}

/// A tunnel was closed (reply, or engine-initiated).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CloseTunnelRsp {
    /// Tunnel id.
    #[prost(string, tag = "1")]
    pub tunnel_id: String,
}

/// Engine → agent on the control channel: a connection arrived for one of your tunnels; dial back.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ProxyConnReq {
    /// Target tunnel.
    #[prost(string, tag = "1")]
    pub tunnel_id: String,
    /// Stream id to echo in [`ProxyReq`].
    #[prost(string, tag = "2")]
    pub stream_id: String,
    /// One-time credential to put in `ProxyReq.client_details.token`.
    #[prost(message, optional, tag = "3")]
    pub secret: Option<StringValue>,
    /// Where the connection came from.
    #[prost(message, optional, tag = "4")]
    pub source_ip: Option<IpAddress>,
}

/// Agent → engine on the control channel: acknowledges (or refuses) a [`ProxyConnReq`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ProxyConnRsp {
    /// Stream id.
    #[prost(string, tag = "1")]
    pub stream_id: String,
    /// Set when the agent refuses.
    #[prost(message, optional, tag = "2")]
    pub error: Option<Error>,
}

/// First message of an agent's data leg for one stream.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ProxyReq {
    /// Token = the stream's one-time secret.
    #[prost(message, optional, tag = "1")]
    pub client_details: Option<ClientDetails>,
    /// Stream id from the [`ProxyConnReq`].
    #[prost(string, tag = "2")]
    pub stream_id: String,
    /// When true (upstream default) no [`ProxyRsp`] is sent; raw bytes start at once.
    #[prost(message, optional, tag = "3")]
    pub zero_rtt: Option<BoolValue>,
}

/// Reply to a non-zero-RTT [`ProxyReq`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ProxyRsp {
    /// Set when refused.
    #[prost(message, optional, tag = "1")]
    pub error: Option<Error>,
}

/// First message of a client connection dialing a tunnel (private tunnels).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StreamReq {
    /// Who is dialing, with the JWT.
    #[prost(message, optional, tag = "1")]
    pub client_details: Option<ClientDetails>,
    /// Tunnel id or name.
    #[prost(string, tag = "2")]
    pub tunnel_id_name: String,
    /// When true no [`StreamRsp`] is sent.
    #[prost(message, optional, tag = "3")]
    pub zero_rtt: Option<BoolValue>,
}

/// Reply to a non-zero-RTT [`StreamReq`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StreamRsp {
    /// Stream id or error.
    #[prost(oneof = "stream_rsp::Result", tags = "1, 2")]
    pub result: Option<stream_rsp::Result>,
}

/// Oneof of [`StreamRsp`].
pub mod stream_rsp {
    /// Stream id or error.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Result {
        /// Accepted; bytes follow.
        #[prost(string, tag = "1")]
        StreamId(String),
        /// Refused.
        #[prost(message, tag = "2")]
        Error(super::Error),
    }
}

/// Liveness ping, both directions, every [`crate::limits::HEARTBEAT_INTERVAL`].
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Heartbeat {}

/// A notice from the engine for the user.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ServerMessage {
    /// Text.
    #[prost(string, tag = "1")]
    pub message: String,
}

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
    fn ip_address_round_trips() {
        for ip in ["10.1.2.3", "::1"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(IpAddress::from(ip).to_ip(), Some(ip));
        }
        assert_eq!(IpAddress { addr: Some(ip_address::Addr::V6(vec![1, 2])) }.to_ip(), None);
    }
}
