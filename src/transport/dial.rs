//! Reaching the engine: TCP + TLS with the context's trust settings, and dialing a tunnel by id or name.
//!
//! Every rstream connection to the engine is its own TLS session (rstream protocol 1.3 has no multiplexing):
//! a control channel, each proxy leg, each dialed stream. [`EngineEndpoint`] holds what they all need — the
//! address, the TLS settings from the context and the token — and opens them.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_net::TcpStream;

use super::tls_client::{connect_tls, invalid_input, ClientTlsConfig, TlsStream};
use crate::config::ResolvedContext;
use crate::deadline::with_deadline;
use crate::limits::{DIAL_TIMEOUT, DNS_CACHE_TTL, FIRST_MESSAGE_TIMEOUT};
use crate::proto::frame::{read_frame, write_frame, FrameError};
use crate::proto::rstream::{message::Payload, stream_rsp, ClientDetails, Message, StreamReq, ALPN_RSTRM};
use crate::secret::Secret;

/// Why a tunnel could not be dialed.
#[derive(Debug)]
pub enum DialError {
    /// The context cannot be used (no token, unreadable CA file).
    Config(String),
    /// TCP, TLS or framing failed, or a deadline passed.
    Io(io::Error),
    /// The engine answered with an error (e.g. 401 bad token, 403 not allowed to dial, 404 unknown tunnel).
    Engine(crate::proto::rstream::Error),
    /// The engine answered something that is not the expected response.
    Protocol(String),
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialError::Config(m) | DialError::Protocol(m) => f.write_str(m),
            DialError::Io(e) => write!(f, "{e}"),
            DialError::Engine(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DialError {}

impl From<io::Error> for DialError {
    fn from(e: io::Error) -> Self {
        DialError::Io(e)
    }
}

impl From<FrameError> for DialError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(e) => DialError::Io(e),
            FrameError::Closed => DialError::Protocol("the engine closed the connection without answering".into()),
            other => DialError::Protocol(format!("bad answer from the engine: {other}")),
        }
    }
}

/// One engine, as a context describes it: where, how to trust it, with which token.
///
/// Clones share a small cache of the engine's resolved addresses ([`DNS_CACHE_TTL`]), so the agent's per-stream
/// legs do not each wait for a DNS lookup.
#[derive(Clone, Debug)]
pub struct EngineEndpoint {
    /// `host:port`.
    pub addr: String,
    /// Server name, CA and verification policy.
    pub tls: ClientTlsConfig,
    /// The JWT sent in `ClientDetails.token`.
    pub token: Secret,
    resolved: Arc<Mutex<Option<Resolved>>>,
}

/// When the engine's name was resolved, and to what.
type Resolved = (Instant, Vec<SocketAddr>);

impl EngineEndpoint {
    /// An endpoint for the engine at `addr` (`host:port`).
    pub fn new(addr: impl Into<String>, tls: ClientTlsConfig, token: impl Into<Secret>) -> EngineEndpoint {
        EngineEndpoint { addr: addr.into(), tls, token: token.into(), resolved: Arc::default() }
    }

    /// The endpoint of a redirected proxy leg (`ProxyConnReq.proxy_endpoint`, `host:port`): that address instead
    /// of this engine, its host as SNI and as the name the certificate is verified against, the same trust
    /// anchors and chain validation. Refused when this endpoint skips verification: a redirect is followed only
    /// to an engine that proves it holds a certificate for the name.
    pub fn redirected(&self, addr: &str) -> io::Result<EngineEndpoint> {
        if self.tls.insecure_skip_verify {
            return Err(invalid_input(format!(
                "refusing the redirect to {addr:?}: this context skips certificate verification"
            )));
        }
        let host = addr
            .rsplit_once(':')
            .filter(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
            .ok_or_else(|| invalid_input(format!("redirect endpoint {addr:?} is not host:port")))?;
        let tls = ClientTlsConfig { server_name: host.to_owned(), ..self.tls.clone() };
        Ok(EngineEndpoint::new(addr, tls, self.token.clone()))
    }

    /// The endpoint of a resolved context: reads the CA file, requires a token.
    pub fn from_context(ctx: &ResolvedContext) -> Result<EngineEndpoint, DialError> {
        let context = ctx.name.as_deref().map_or_else(|| "the environment".to_owned(), |n| format!("context {n:?}"));
        let token = ctx.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            DialError::Config(format!(
                "{context} has no token: set auth.token in {} or RSTREAM_AUTHENTICATION_TOKEN",
                ctx.config_path.display()
            ))
        })?;
        let ca_pem =
            match &ctx.ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    DialError::Config(format!("{context}: cannot read CA file {}: {e}", path.display()))
                })?),
                None => None,
            };
        let server_name = ctx.tls_server_name.clone().unwrap_or_else(|| ctx.engine_host().to_owned());
        let tls = ClientTlsConfig { server_name, ca_pem, insecure_skip_verify: ctx.insecure_skip_verify };
        Ok(EngineEndpoint::new(ctx.engine.clone(), tls, token))
    }

    /// Opens TCP + TLS to the engine with ALPN `alpn`, all within [`DIAL_TIMEOUT`].
    pub async fn connect(&self, alpn: &str) -> io::Result<TlsStream> {
        let addr = &self.addr;
        with_deadline(DIAL_TIMEOUT, format!("connecting to the engine {addr}"), async {
            let tcp = self
                .tcp_connect()
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("cannot reach the engine {addr}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            connect_tls(tcp, &self.tls, alpn).await
        })
        .await
    }

    /// TCP to the first address of the engine that answers; addresses come from the cache while it is fresh.
    async fn tcp_connect(&self) -> io::Result<TcpStream> {
        let cached = self.cache().as_ref().filter(|(at, _)| at.elapsed() < DNS_CACHE_TTL).map(|(_, a)| a.clone());
        let addrs = match cached {
            Some(addrs) => addrs,
            None => {
                let addrs = async_net::resolve(self.addr.as_str()).await?;
                *self.cache() = Some((Instant::now(), addrs.clone()));
                addrs
            }
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = e,
            }
        }
        *self.cache() = None; // resolve again next time
        Err(last)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<Resolved>> {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Dials a tunnel (private or published) by id or name: a new connection whose first frame is a
    /// `StreamReq`; after the engine's `StreamRsp` it carries the tunnel's raw bytes.
    pub async fn dial_tunnel(&self, id_or_name: &str) -> Result<TlsStream, DialError> {
        let mut tls = self.connect(ALPN_RSTRM).await?;
        let req = Message::new(Payload::StreamReq(StreamReq {
            client_details: Some(ClientDetails::this_binary(self.token.expose())),
            tunnel_id_name: id_or_name.to_owned(),
            zero_rtt: Some(false.into()),
            datagram_channel: None,
        }));
        write_frame(&mut tls, &req).await?;
        let rsp: Message = with_deadline(FIRST_MESSAGE_TIMEOUT, "waiting for the engine's StreamRsp", async {
            read_frame(&mut tls).await.map_err(io::Error::from)
        })
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => DialError::from(FrameError::Closed),
            _ => DialError::Io(e),
        })?;
        match rsp.payload {
            Some(Payload::StreamRsp(rsp)) => match rsp.result {
                Some(stream_rsp::Result::StreamId(_)) => Ok(tls),
                Some(stream_rsp::Result::Error(e)) => Err(DialError::Engine(e)),
                None => {
                    Err(DialError::Protocol("the engine's StreamRsp holds neither a stream id nor an error".into()))
                }
            },
            other => {
                Err(DialError::Protocol(format!("expected StreamRsp from the engine, got {}", payload_name(&other))))
            }
        }
    }
}

/// Short name of an envelope payload, for protocol errors.
pub fn payload_name(payload: &Option<Payload>) -> &'static str {
    match payload {
        None => "an empty message",
        Some(Payload::OpenControlChannelReq(_)) => "OpenControlChannelReq",
        Some(Payload::OpenControlChannelRsp(_)) => "OpenControlChannelRsp",
        Some(Payload::CloseControlChannelReq(_)) => "CloseControlChannelReq",
        Some(Payload::CloseControlChannelRsp(_)) => "CloseControlChannelRsp",
        Some(Payload::OpenTunnelReq(_)) => "OpenTunnelReq",
        Some(Payload::OpenTunnelRsp(_)) => "OpenTunnelRsp",
        Some(Payload::CloseTunnelReq(_)) => "CloseTunnelReq",
        Some(Payload::CloseTunnelRsp(_)) => "CloseTunnelRsp",
        Some(Payload::ProxyConnReq(_)) => "ProxyConnReq",
        Some(Payload::ProxyConnRsp(_)) => "ProxyConnRsp",
        Some(Payload::ProxyReq(_)) => "ProxyReq",
        Some(Payload::ProxyRsp(_)) => "ProxyRsp",
        Some(Payload::StreamReq(_)) => "StreamReq",
        Some(Payload::StreamRsp(_)) => "StreamRsp",
        Some(Payload::Heartbeat(_)) => "Heartbeat",
        Some(Payload::ServerMessage(_)) => "ServerMessage",
        Some(Payload::DatagramChannelClose(_)) => "DatagramChannelClose",
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::proto::rstream::ErrorCode;

    fn ctx(token: Option<&str>, ca: Option<PathBuf>) -> ResolvedContext {
        ResolvedContext {
            name: Some("lab".into()),
            engine: "relay.example:8443".into(),
            token: token.map(Secret::from),
            ca_file: ca,
            tls_server_name: None,
            insecure_skip_verify: false,
            api_url: None,
            config_path: PathBuf::from("/cfg/config.yaml"),
        }
    }

    #[test]
    fn endpoint_takes_address_server_name_token_and_ca_from_the_context() {
        let dir = std::env::temp_dir().join(format!("rstream-dial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, b"-----BEGIN CERTIFICATE-----\nTWFu\n-----END CERTIFICATE-----\n").unwrap();
        let ep = EngineEndpoint::from_context(&ctx(Some("jwt"), Some(ca.clone()))).unwrap();
        assert_eq!(
            (ep.addr.as_str(), ep.tls.server_name.as_str(), ep.token.expose()),
            ("relay.example:8443", "relay.example", "jwt")
        );
        assert!(ep.tls.ca_pem.is_some() && !ep.tls.insecure_skip_verify);
        let mut named = ctx(Some("jwt"), None);
        named.tls_server_name = Some("engine.internal".into());
        assert_eq!(EngineEndpoint::from_context(&named).unwrap().tls.server_name, "engine.internal");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn debug_of_an_endpoint_masks_the_token() {
        let ep = EngineEndpoint::from_context(&ctx(Some("eyJhbGciOiJIUzI1NiJ9.e30.sig"), None)).unwrap();
        let text = format!("{ep:?}");
        assert!(!text.contains("eyJ") && text.contains("token: Secret(<redacted, 28 bytes>)"), "{text}");
    }

    #[test]
    fn missing_token_or_unreadable_ca_are_config_errors_naming_the_context() {
        let err = EngineEndpoint::from_context(&ctx(None, None)).unwrap_err();
        assert!(err.to_string().contains("context \"lab\" has no token"), "{err}");
        let err = EngineEndpoint::from_context(&ctx(Some("t"), Some("/nonexistent/ca.pem".into()))).unwrap_err();
        assert!(err.to_string().contains("cannot read CA file /nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn unreachable_engine_is_a_clear_io_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut ep = EngineEndpoint::from_context(&ctx(Some("t"), None)).unwrap();
        ep.addr = format!("127.0.0.1:{port}");
        let err = smol::block_on(ep.dial_tunnel("web")).unwrap_err();
        assert!(err.to_string().contains(&format!("cannot reach the engine 127.0.0.1:{port}")), "{err}");
    }

    #[test]
    fn engine_errors_read_as_engine_error_code_message() {
        let e =
            DialError::Engine(crate::proto::rstream::Error::new(ErrorCode::TunnelNotFound, "tunnel \"web\" not found"));
        assert_eq!(e.to_string(), "engine error 3000 TUNNEL_NOT_FOUND: tunnel \"web\" not found");
    }

    #[cfg(feature = "engine")]
    fn fake_engine(answer: stream_rsp::Result) -> (EngineEndpoint, smol::Task<io::Result<StreamReq>>) {
        use crate::transport::tls_client::tests::{pki, serve_one};
        use futures_lite::AsyncWriteExt;
        let pki = pki(&["localhost"], false, &[ALPN_RSTRM]);
        let (addr, task) = serve_one(pki.server, move |mut tls| async move {
            let req: Message = read_frame(&mut tls).await?;
            let Some(Payload::StreamReq(req)) = req.payload else { return Err(io::Error::other("not a StreamReq")) };
            let ok = matches!(answer, stream_rsp::Result::StreamId(_));
            let rsp = Message::new(Payload::StreamRsp(crate::proto::rstream::StreamRsp { result: Some(answer) }));
            write_frame(&mut tls, &rsp).await?;
            if ok {
                tls.write_all(b"raw tunnel bytes").await?;
            }
            tls.close().await?;
            Ok(req)
        });
        // By name: resolution may yield ::1 first, where nothing listens; the next address must be tried.
        let tls = ClientTlsConfig {
            server_name: "localhost".into(),
            ca_pem: Some(pki.ca_pem.into_bytes()),
            ..Default::default()
        };
        (EngineEndpoint::new(format!("localhost:{}", addr.port()), tls, "jwt"), task)
    }

    #[cfg(feature = "engine")]
    #[test]
    fn dial_tunnel_sends_stream_req_and_then_carries_raw_bytes() {
        use futures_lite::AsyncReadExt;
        let (ep, engine) = fake_engine(stream_rsp::Result::StreamId("s1".into()));
        smol::block_on(async {
            let mut tls = ep.dial_tunnel("web").await.unwrap();
            let mut got = Vec::new();
            tls.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"raw tunnel bytes");
            let req = engine.await.unwrap();
            assert_eq!(req.tunnel_id_name, "web");
            assert_eq!(req.zero_rtt, Some(false.into()));
            let details = req.client_details.unwrap();
            assert_eq!(crate::proto::rstream::opt_str(&details.token), Some("jwt"));
            assert_eq!(crate::proto::rstream::opt_str(&details.protocol_version), Some("1.4.5"));
        });
    }

    #[cfg(feature = "engine")]
    #[test]
    fn dial_tunnel_surfaces_the_engine_refusal() {
        let refusal = crate::proto::rstream::Error::new(ErrorCode::Unauthorized, "token may not dial tunnels");
        let (ep, engine) = fake_engine(stream_rsp::Result::Error(refusal));
        smol::block_on(async {
            let err = ep.dial_tunnel("web").await.unwrap_err();
            assert!(matches!(err, DialError::Engine(_)));
            assert_eq!(err.to_string(), "engine error 1000 UNAUTHORIZED: token may not dial tunnels");
            engine.await.unwrap();
        });
    }
}
