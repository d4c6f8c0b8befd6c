//! Reaching a WebTTY server: dial the target (TCP, TLS with [`DirectTls`], or a tunnel through the engine of the
//! current context with a `StreamReq`), then run the WebSocket handshake over that stream with the bounded
//! [`ws_config`]. [`dial_direct`] is shared with the filesystem client (`https://` sidecars).

use std::path::PathBuf;

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::WebSocketStream;
use futures_lite::{AsyncRead, AsyncWrite};

use super::super::error::WebttyError;
use super::super::timeout;
use super::super::wire::ws_config;
use super::target::Target;
use crate::config;
use crate::limits;
use crate::proto::rstream::ALPN_HTTP1;
use crate::secret::Secret;
use crate::transport::{connect_tls, ClientTlsConfig, EngineEndpoint};

/// Any byte stream a WebTTY client session can run over.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// A boxed [`Conn`].
pub type BoxConn = Box<dyn Conn>;

/// A client WebSocket to a WebTTY server.
pub type ClientWs = WebSocketStream<BoxConn>;

/// How to authenticate and where the exec endpoint lives.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Bearer token for local (`--listen`) servers (`--auth-token-file` / `RSTREAM_WEBTTY_AUTH_TOKEN`).
    pub auth_token: Option<Secret>,
    /// Path joined onto the URL's path (`--exec-path`; default: the path the server advertises, or `/`).
    pub exec_path: Option<String>,
    /// Trust for `wss://` servers.
    pub tls: DirectTls,
}

/// How to trust a server reached directly over TLS (`wss://`, `https://`: a `webtty server --listen` with
/// `--tls-cert-file`), as opposed to through the engine. The certificate is always verified unless
/// `insecure_skip_verify` says otherwise explicitly.
#[derive(Clone, Debug, Default)]
pub struct DirectTls {
    /// PEM file of the CA that signed the server's certificate (`--tls-ca-file`; default: the current context's
    /// CA file).
    pub ca_file: Option<PathBuf>,
    /// DNS name to verify instead of the URL's host (`--tls-server-name`).
    pub server_name: Option<String>,
    /// Skip certificate verification (`--tls-insecure-skip-verify`; warns).
    pub insecure_skip_verify: bool,
}

impl DirectTls {
    /// The client settings for `host`, decided before any byte is sent, and where the trusted CA came from.
    fn client_config(&self, host: &str, port: u16) -> Result<(ClientTlsConfig, String), WebttyError> {
        let server_name = self.server_name.clone().unwrap_or_else(|| host.to_string());
        if self.insecure_skip_verify {
            let config = ClientTlsConfig { server_name, ca_pem: None, insecure_skip_verify: true };
            return Ok((config, "certificate not verified".into()));
        }
        if server_name.parse::<std::net::IpAddr>().is_ok() {
            return Err(WebttyError::Connect(format!(
                "TLS to {}: certificates are verified against DNS names, not IP addresses: use a DNS name of the \
                 server's certificate in the URL (e.g. localhost:{port}) or pass --tls-server-name NAME",
                authority(host, port)
            )));
        }
        let (path, source) = match (&self.ca_file, config::resolve().ok().and_then(|ctx| ctx.ca_file)) {
            (Some(path), _) => (path.clone(), "--tls-ca-file"),
            (None, Some(path)) => (path, "the current context's CA file (the engine's; see --tls-ca-file)"),
            (None, None) => {
                return Err(WebttyError::Connect(format!(
                    "TLS to {}: no CA to verify {server_name:?}: pass --tls-ca-file FILE (the CA that signed the \
                     server's --tls-cert-file)",
                    authority(host, port)
                )))
            }
        };
        let shown = path.display().to_string();
        let ca_pem = std::fs::read(&path).map_err(|e| WebttyError::Connect(format!("{source} {shown:?}: {e}")))?;
        let config = ClientTlsConfig { server_name, ca_pem: Some(ca_pem), insecure_skip_verify: false };
        Ok((config, format!("trusting {source} {shown:?}")))
    }
}

/// Opens the byte stream to a server reached directly: TCP to `host:port`, then TLS when `tls` is given
/// (trust settled before dialing), each step within [`limits::DIAL_TIMEOUT`].
pub async fn dial_direct(host: &str, port: u16, tls: Option<&DirectTls>) -> Result<BoxConn, WebttyError> {
    let tls = tls.map(|t| t.client_config(host, port)).transpose()?;
    let tcp = dial_tcp(host, port).await?;
    let Some((config, trust)) = tls else { return Ok(Box::new(tcp)) };
    let stream = connect_tls(tcp, &config, ALPN_HTTP1)
        .await
        .map_err(|e| WebttyError::Connect(format!("TLS to {}: {e} ({trust})", authority(host, port))))?;
    Ok(Box::new(stream))
}

/// `host:port`, IPv6 in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Dials `target` and completes the WebSocket handshake, all within [`limits::DIAL_TIMEOUT`] per step.
pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<ClientWs, WebttyError> {
    let stream = dial(target, opts).await?;
    let mut request = target
        .request_url()
        .into_client_request()
        .map_err(|e| WebttyError::BadTarget(format!("{:?}: {e}", target.display_url())))?;
    if let Some(token) = &opts.auth_token {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.expose().trim()))
            .map_err(|_| WebttyError::BadTarget("auth token holds characters not allowed in a header".into()))?;
        request.headers_mut().insert("authorization", value);
    }
    let url = target.display_url();
    let handshake = async_tungstenite::client_async_with_config(request, stream, Some(ws_config()));
    match timeout(limits::DIAL_TIMEOUT, handshake).await {
        None => Err(WebttyError::Connect(format!(
            "websocket handshake with {url} timed out after {} s",
            limits::DIAL_TIMEOUT.as_secs()
        ))),
        Some(Ok((ws, _response))) => Ok(ws),
        Some(Err(WsError::Http(response))) => {
            let status = response.status();
            let hint = match status.as_u16() {
                401 => " (missing or wrong bearer token: use --auth-token-file or RSTREAM_WEBTTY_AUTH_TOKEN)",
                403 => " (origin or token refused)",
                404 => " (no WebTTY endpoint at this path: check --exec-path)",
                _ => "",
            };
            // A short plain-text answer says more than the status (e.g. "this port serves TLS: use wss://").
            let said = match response.body().as_deref().map(String::from_utf8_lossy) {
                Some(text) if !text.trim().is_empty() && text.len() <= 200 => format!(": {}", text.trim()),
                _ => String::new(),
            };
            Err(WebttyError::Connect(format!("websocket handshake with {url} failed: HTTP {status}{hint}{said}")))
        }
        Some(Err(e)) => Err(WebttyError::Connect(format!("websocket handshake with {url} failed: {e}"))),
    }
}

/// Opens the byte stream under the WebSocket.
async fn dial(target: &Target, opts: &ConnectOptions) -> Result<BoxConn, WebttyError> {
    match target {
        Target::Direct { tls, host, port, .. } => dial_direct(host, *port, tls.then_some(&opts.tls)).await,
        Target::Tunnel { name, .. } => {
            let fail = |e: &dyn std::fmt::Display| WebttyError::Connect(format!("rstrm://{name}: {e}"));
            let ctx = config::resolve().map_err(|e| fail(&e))?;
            let endpoint = EngineEndpoint::from_context(&ctx).map_err(|e| fail(&e))?;
            let stream = endpoint.dial_tunnel(name).await.map_err(|e| fail(&e))?;
            Ok(Box::new(stream))
        }
    }
}

async fn dial_tcp(host: &str, port: u16) -> Result<async_net::TcpStream, WebttyError> {
    let addr = authority(host, port);
    match timeout(limits::DIAL_TIMEOUT, async_net::TcpStream::connect(addr.as_str())).await {
        None => Err(WebttyError::Connect(format!("connect {addr}: timed out"))),
        Some(Err(e)) => Err(WebttyError::Connect(format!("connect {addr}: {e}"))),
        Some(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_connect_options_masks_the_bearer_token() {
        let opts = ConnectOptions { auth_token: Some("local-bearer-token".into()), ..ConnectOptions::default() };
        let text = format!("{opts:?}");
        assert!(!text.contains("local-bearer-token") && text.contains("<redacted, 18 bytes>"), "{text}");
    }
}
