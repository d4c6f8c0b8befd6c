//! Shared rstream message types: `google.protobuf` wrappers, addresses, errors, client and server details.
//!
//! Messages that carry a credential ([`ClientDetails`]) write their own `Debug`, which shows its length only.

use super::PROTOCOL_VERSION;
use crate::secret::Redacted;

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

/// `google.protobuf.UInt32Value`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct UInt32Value {
    /// The wrapped number.
    #[prost(uint32, tag = "1")]
    pub value: u32,
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

/// Upstream's `ErrorCode` (protocol 1.4): the class of a protocol [`Error`]. Classes by thousands — 1xxx auth,
/// 2xxx validation/protocol, 3xxx not found, 4xxx invalid state or stream, 5xxx feature/plan/config,
/// 6xxx dependency, 7xxx capacity, 9xxx internal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ErrorCode {
    /// No code (also what an unknown or pre-1.4 value reads as).
    Unspecified = 0,
    /// The credential is missing, invalid, revoked, or lacks the permission.
    Unauthorized = 1000,
    /// The request is malformed or asks for something invalid (also: a tunnel name held by another tunnel).
    InvalidRequest = 2000,
    /// `ClientDetails.protocol_version` is missing.
    ProtocolVersionMissing = 2010,
    /// `ClientDetails.protocol_version` does not parse.
    ProtocolVersionInvalid = 2020,
    /// The peer's protocol version cannot be served.
    ProtocolVersionIncompatible = 2030,
    /// No such tunnel.
    TunnelNotFound = 3000,
    /// The stream (or the channel it belongs to) is unknown or in the wrong state.
    InvalidStream = 4000,
    /// The feature is not offered by this engine or plan.
    FeatureNotAvailable = 5000,
    /// Something this request depends on (the agent, its local service) is unavailable.
    ServiceUnavailable = 6000,
    /// A limit was reached (streams, tunnels, queues).
    CapacityExhausted = 7000,
    /// An internal failure.
    Internal = 9000,
}

impl ErrorCode {
    /// Upstream's name of the code (`INVALID_REQUEST`, …).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Unspecified => "UNSPECIFIED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::ProtocolVersionMissing => "PROTOCOL_VERSION_MISSING",
            ErrorCode::ProtocolVersionInvalid => "PROTOCOL_VERSION_INVALID",
            ErrorCode::ProtocolVersionIncompatible => "PROTOCOL_VERSION_INCOMPATIBLE",
            ErrorCode::TunnelNotFound => "TUNNEL_NOT_FOUND",
            ErrorCode::InvalidStream => "INVALID_STREAM",
            ErrorCode::FeatureNotAvailable => "FEATURE_NOT_AVAILABLE",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::CapacityExhausted => "CAPACITY_EXHAUSTED",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// A protocol-level error: an [`ErrorCode`] and a human message.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Error {
    /// The [`ErrorCode`] as its wire value (wire-compatible with the 1.3 `int32`; pre-1.4 engines sent
    /// HTTP-like numbers such as 401 or 409, which read as [`ErrorCode::Unspecified`] through `code()`).
    #[prost(enumeration = "ErrorCode", tag = "1")]
    pub code: i32,
    /// Message for humans.
    #[prost(message, optional, tag = "2")]
    pub message: Option<StringValue>,
}

impl Error {
    /// Builds an error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code: code as i32, message: some_str(message) }
    }

    /// Whether the wire code is `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == code as i32
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = opt_str(&self.message).unwrap_or("");
        match ErrorCode::try_from(self.code) {
            Ok(code) if code != ErrorCode::Unspecified => {
                write!(f, "engine error {} {}: {text}", self.code, code.name())
            }
            _ => write!(f, "engine error {}: {text}", self.code),
        }
    }
}

impl std::error::Error for Error {}

/// Who is connecting: software identity and the credential (masked in `Debug`).
#[derive(Clone, PartialEq, Eq, prost::Message)]
#[prost(skip_debug)]
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

impl ClientDetails {
    /// Whether the peer speaks protocol 1.4 or newer, where `ProxyConnRsp` confirms a stream once its leg is up
    /// (1.3 agents sent it at once, or not at all).
    pub fn confirms_streams(&self) -> bool {
        let version = opt_str(&self.protocol_version).unwrap_or("");
        let mut parts = version.split('.').map(|p| p.parse::<u32>());
        matches!((parts.next(), parts.next()), (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (1, 4))
    }
}

impl std::fmt::Debug for ClientDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientDetails")
            .field("agent", &opt_str(&self.agent))
            .field("channel", &opt_str(&self.channel))
            .field("version", &opt_str(&self.version))
            .field("os", &opt_str(&self.os))
            .field("arch", &opt_str(&self.arch))
            .field("token", &credential_mask(&self.token))
            .field("protocol_version", &opt_str(&self.protocol_version))
            .finish()
    }
}

/// The `Debug` stand-in of an optional credential field.
pub fn credential_mask(value: &Option<StringValue>) -> Option<Redacted> {
    value.as_ref().map(|v| Redacted(v.value.len()))
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
