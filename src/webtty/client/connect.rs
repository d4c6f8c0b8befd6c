//! Reaching a WebTTY server: dial the target (TCP, TLS, or a private tunnel through the engine), then run the
//! WebSocket handshake over that stream with the bounded [`ws_config`].

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::WebSocketStream;
use futures_lite::{AsyncRead, AsyncWrite};

use super::super::error::WebttyError;
use super::super::timeout;
use super::super::wire::ws_config;
use super::target::Target;
use crate::limits;

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
    /// Path joined onto the URL's path (`--exec-path`; WebTTY servers advertise `/`).
    pub exec_path: Option<String>,
}

/// Dials `target` and completes the WebSocket handshake, all within [`limits::DIAL_TIMEOUT`] per step.
pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<ClientWs, WebttyError> {
    let stream = dial(target).await?;
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
async fn dial(target: &Target) -> Result<BoxConn, WebttyError> {
    match target {
        Target::Direct { tls: false, host, port, .. } => {
            let addr = format!("{}:{port}", if host.contains(':') { format!("[{host}]") } else { host.clone() });
            match timeout(limits::DIAL_TIMEOUT, async_net::TcpStream::connect(addr.as_str())).await {
                None => Err(WebttyError::Connect(format!("connect {addr}: timed out"))),
                Some(Err(e)) => Err(WebttyError::Connect(format!("connect {addr}: {e}"))),
                Some(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    Ok(Box::new(tcp))
                }
            }
        }
        Target::Direct { tls: true, .. } => Err(WebttyError::Connect(format!(
            "{}: wss:// is not available in this build yet (use ws:// on loopback or rstrm://)",
            target.display_url()
        ))),
        Target::Tunnel { name, .. } => Err(WebttyError::Connect(format!(
            "rstrm://{name}: dialing tunnels through the engine is not available in this build yet"
        ))),
    }
}
