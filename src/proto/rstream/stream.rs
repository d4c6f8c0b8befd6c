//! Stream messages: the engine asking an agent for a leg (`ProxyConnReq`), the agent's leg (`ProxyReq`), a
//! client dialing a tunnel (`StreamReq`), their replies, heartbeats and server notices.

use super::common::{credential_mask, BoolValue, ClientDetails, Error, IpAddress, StringValue};

/// Engine → agent on the control channel: a connection arrived for one of your tunnels; dial back. `Debug`
/// masks the secret.
#[derive(Clone, PartialEq, Eq, prost::Message)]
#[prost(skip_debug)]
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
    /// Protocol 1.4: the engine address (`host:port`) to dial the leg to instead of the control engine (direct
    /// ingress routing); requires a non-empty `secret`.
    #[prost(message, optional, tag = "5")]
    pub proxy_endpoint: Option<StringValue>,
}

impl std::fmt::Debug for ProxyConnReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConnReq")
            .field("tunnel_id", &self.tunnel_id)
            .field("stream_id", &self.stream_id)
            .field("secret", &credential_mask(&self.secret))
            .field("source_ip", &self.source_ip.as_ref().and_then(IpAddress::to_ip))
            .field("proxy_endpoint", &self.proxy_endpoint.as_ref().map(|e| e.value.as_str()))
            .finish()
    }
}

/// Agent → engine on the control channel, after the leg is dialed and handed over (protocol 1.4: a completion
/// ack): the stream is ready, or `error` (`SERVICE_UNAVAILABLE` when the local dial failed).
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
    /// Protocol 1.4: the stream carries a datagram channel (datagram tunnels; refused by this engine).
    #[prost(message, optional, tag = "4")]
    pub datagram_channel: Option<BoolValue>,
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

/// Liveness ping on the control channel. Legacy (1.3) heartbeats are empty; in a negotiated session
/// ([`super::ControlChannelLiveness`]) the client numbers its heartbeats `sequence` = 1, 2, 3, … and the engine
/// answers each with `sequence` = 0, `acknowledgement` = that number.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Heartbeat {
    /// The sender's heartbeat number (0: legacy, or an ack).
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    /// The heartbeat number acknowledged (0: none).
    #[prost(uint64, tag = "2")]
    pub acknowledgement: u64,
}

impl Heartbeat {
    /// An empty (legacy, 1.3) heartbeat.
    pub const LEGACY: Heartbeat = Heartbeat { sequence: 0, acknowledgement: 0 };
}

/// Protocol 1.4: closes one datagram channel of a stream.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DatagramChannelClose {
    /// The stream whose datagram channel closes.
    #[prost(string, tag = "1")]
    pub stream_id: String,
    /// Why, when it failed.
    #[prost(message, optional, tag = "2")]
    pub error: Option<Error>,
}

/// A notice from the engine for the user.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ServerMessage {
    /// Text.
    #[prost(string, tag = "1")]
    pub message: String,
}
