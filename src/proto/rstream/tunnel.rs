//! Control channel and tunnel registration messages: open/close the channel, open/close tunnels, and the
//! tunnel properties an agent asks for and the engine stores.

use std::collections::BTreeMap;

use crate::limits::MAX_TUNNEL_NAME_LEN;

use super::common::{BoolValue, ClientDetails, Error, ServerDetails, StringValue, Timestamp, UInt32Value};

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
    /// Require client certificates (`mtls` before protocol 1.4, same number).
    #[prost(message, optional, tag = "15")]
    pub mtls_auth: Option<BoolValue>,
    /// CA for client certificates (deprecated upstream).
    #[prost(message, optional, tag = "16")]
    pub mtls_cacert_pem: Option<StringValue>,
    /// `http/1.1`, `h2c`, `h3`.
    #[prost(message, optional, tag = "17")]
    pub http_version: Option<StringValue>,
    /// Upstream speaks TLS (deprecated; see `upstream_tls`).
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
    /// Protocol 1.4: the tunnel's public host name (read-only; replaces `host`).
    #[prost(message, optional, tag = "22")]
    pub hostname: Option<StringValue>,
    /// Protocol 1.4: the published port (settable only for protocol `tcp`).
    #[prost(message, optional, tag = "23")]
    pub port: Option<UInt32Value>,
    /// Protocol 1.4: the agent's local service speaks TLS.
    #[prost(message, optional, tag = "24")]
    pub upstream_tls: Option<BoolValue>,
    /// Protocol 1.4: datagram tunnels ask for guaranteed delivery.
    #[prost(message, optional, tag = "25")]
    pub datagram_guaranteed_delivery: Option<BoolValue>,
    /// Protocol 1.4: the tunnel may be reached through ingress engines in other regions.
    #[prost(message, optional, tag = "26")]
    pub allow_cross_region_routing: Option<BoolValue>,
}

impl TunnelProperties {
    /// Whether the tunnel is published (unset = true, as upstream).
    pub fn is_published(&self) -> bool {
        self.publish.is_none_or(|b| b.value)
    }
}

/// Protocols the engine in this crate serves on a published tunnel — all as TLS-terminated HTTP routed by host
/// name; an unset protocol counts as `http`. Private tunnels may carry any protocol.
pub const PUBLISHED_PROTOCOLS: [&str; 2] = ["http", "webtty"];

/// Why a published tunnel of `protocol` cannot be served, ending with how to ask for a private one instead
/// (`private_hint`: `--no-publish` for `forward`, `publish=false` for MCP); `None` when it can be published.
///
/// ```
/// use rstream::proto::rstream::published_protocol_refusal;
/// assert_eq!(published_protocol_refusal(Some("http"), "--no-publish"), None);
/// assert_eq!(
///     published_protocol_refusal(Some("tcp"), "--no-publish").unwrap(),
///     "published tunnels on this engine are HTTP only; protocol \"tcp\" needs --no-publish"
/// );
/// ```
pub fn published_protocol_refusal(protocol: Option<&str>, private_hint: &str) -> Option<String> {
    match protocol.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) if PUBLISHED_PROTOCOLS.contains(&p) => None,
        Some(p) => Some(format!("published tunnels on this engine are HTTP only; protocol {p:?} needs {private_hint}")),
    }
}

/// Protocol 1.4: the control channel's liveness policy — asked by the client in [`OpenControlChannelReq`],
/// echoed with the timeout in `Ok` by an engine that negotiates it ([`super::Heartbeat`] numbering).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ControlChannelLiveness {
    /// How often the client sends a heartbeat.
    #[prost(uint32, tag = "1")]
    pub heartbeat_interval_ms: u32,
    /// How long either side waits for any message before it drops the channel (engine's answer).
    #[prost(uint32, tag = "2")]
    pub heartbeat_timeout_ms: u32,
}

/// Length of an engine-assigned client or tunnel id (hex characters).
pub const ID_LEN: usize = 16;

/// Whether `text` has the shape of an id ([`ID_LEN`] hex digits, either case). Tunnel names of that shape are
/// refused, so a name never equals (or later collides with) another tunnel's id.
pub fn is_id_shaped(text: &str) -> bool {
    text.len() == ID_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why `name` cannot be a tunnel name — it must be a DNS label of letters, digits, `-` and `_`, not shaped like
/// a tunnel id — or `None` when it can. The engine refuses such a name (`INVALID_REQUEST`); the agent checks it
/// before it connects.
///
/// ```
/// use rstream::proto::rstream::tunnel_name_refusal;
/// assert_eq!(tunnel_name_refusal("grafana"), None);
/// assert!(tunnel_name_refusal("a.b").unwrap().starts_with("invalid tunnel name \"a.b\""));
/// ```
pub fn tunnel_name_refusal(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TUNNEL_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with('-');
    if !ok {
        return Some(format!("invalid tunnel name {name:?}: use 1-{MAX_TUNNEL_NAME_LEN} letters, digits, '-' or '_'"));
    }
    if is_id_shaped(name) {
        return Some(format!("invalid tunnel name {name:?}: {ID_LEN} hex digits is the shape of a tunnel id"));
    }
    None
}

/// Opens a control channel; first message of an agent connection.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct OpenControlChannelReq {
    /// Who is connecting, with the JWT.
    #[prost(message, optional, tag = "1")]
    pub client_details: Option<ClientDetails>,
    /// Protocol 1.4: the liveness policy asked for (absent: legacy heartbeats).
    #[prost(message, optional, tag = "2")]
    pub liveness: Option<ControlChannelLiveness>,
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
        /// Protocol 1.4: the negotiated liveness policy (absent: legacy heartbeats).
        #[prost(message, optional, tag = "3")]
        pub liveness: Option<super::ControlChannelLiveness>,
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
