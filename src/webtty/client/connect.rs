//! Reaching a WebTTY server: dial the target (TCP, TLS, or a tunnel through the engine of the current context
//! with a `StreamReq`), then run the WebSocket handshake over that stream with the bounded [`ws_config`].

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
    pub auth_token: Option<String>,
    /// Path joined onto the URL's path (`--exec-path`; default: the path the server advertises, or `/`).
    pub exec_path: Option<String>,
    /// `wss://`: PEM file of the CA to trust (default: the current context's CA file).
    pub tls_ca_file: Option<PathBuf>,
    /// `wss://`: name to verify instead of the URL's host.
    pub tls_server_name: Option<String>,
    /// `wss://`: skip certificate verification (warns).
    pub tls_insecure_skip_verify: bool,
}

/// Dials `target` and completes the WebSocket handshake, all within [`limits::DIAL_TIMEOUT`] per step.
pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<ClientWs, WebttyError> {
    let stream = dial(target, opts).await?;
    let mut request = target
        .request_url()
        .into_client_request()
        .map_err(|e| WebttyError::BadTarget(format!("{:?}: {e}", target.display_url())))?;
    if let Some(token) = &opts.auth_token {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
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
            Err(WebttyError::Connect(format!("websocket handshake with {url} failed: HTTP {status}{hint}")))
        }
        Some(Err(e)) => Err(WebttyError::Connect(format!("websocket handshake with {url} failed: {e}"))),
    }
}

/// Opens the byte stream under the WebSocket.
async fn dial(target: &Target, opts: &ConnectOptions) -> Result<BoxConn, WebttyError> {
    match target {
        Target::Direct { tls, host, port, .. } => {
            let tcp = dial_tcp(host, *port).await?;
            if !tls {
                return Ok(Box::new(tcp));
            }
            let tls_config = tls_config(host, opts)?;
            let stream = connect_tls(tcp, &tls_config, "http/1.1")
                .await
                .map_err(|e| WebttyError::Connect(format!("{}: TLS: {e}", target.display_url())))?;
            Ok(Box::new(stream))
        }
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
    let addr = format!("{}:{port}", if host.contains(':') { format!("[{host}]") } else { host.to_string() });
    match timeout(limits::DIAL_TIMEOUT, async_net::TcpStream::connect(addr.as_str())).await {
        None => Err(WebttyError::Connect(format!("connect {addr}: timed out"))),
        Some(Err(e)) => Err(WebttyError::Connect(format!("connect {addr}: {e}"))),
        Some(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
    }
}

/// TLS settings for `wss://host`: `--tls-ca-file` or the context's CA, `--tls-server-name` or the host.
fn tls_config(host: &str, opts: &ConnectOptions) -> Result<ClientTlsConfig, WebttyError> {
    let ca_file = opts.tls_ca_file.clone().or_else(|| config::resolve().ok().and_then(|ctx| ctx.ca_file));
    let ca_pem = match ca_file {
        Some(path) => Some(
            std::fs::read(&path)
                .map_err(|e| WebttyError::Connect(format!("--tls-ca-file {:?}: {e}", path.display().to_string())))?,
        ),
        None => None,
    };
    Ok(ClientTlsConfig {
        server_name: opts.tls_server_name.clone().unwrap_or_else(|| host.to_string()),
        ca_pem,
        insecure_skip_verify: opts.tls_insecure_skip_verify,
    })
}
