//! A Streamable-HTTP MCP client for one remote endpoint, reached over a private `rstrm://` stream through the
//! engine (the dial `webtty exec --url rstrm://` uses) or directly over `http://` / `https://`.
//!
//! Two kinds of server answer it:
//! - a **standard** Streamable-HTTP server (the official SDKs): `initialize` first, the `Mcp-Session-Id` it
//!   hands out and the negotiated `MCP-Protocol-Version` on every later request, `notifications/initialized`,
//!   then `tools/*`; each answer is `application/json` or a `text/event-stream` whose event carries it; the
//!   session is closed with `DELETE` at the end;
//! - an **upstream-style** server (`rstream mcp publish`, ours or upstream's) that takes `tools/*` without a
//!   handshake: when `initialize` is refused (a JSON-RPC error or a non-2xx answer) the request goes out
//!   plainly, as upstream's client sends it.
//!
//! Bounded: each answer is read up to [`MCP_REMOTE_RESPONSE_CAP`], each request body is at most
//! [`MCP_REMOTE_REQUEST_CAP`], every connection has [`MCP_REMOTE_TIMEOUT`] to make progress. One connection per
//! request (a tunnel dial is one stream), so nothing is kept between requests but the session id.

use futures_lite::AsyncReadExt;
use serde_json::{json, Value};

use super::args::ToolError;
use super::operator_env::OperatorEnv;
use super::server::PROTOCOL_VERSION;
use super::sse::SseEvents;
use crate::http::{ClientConn, RequestHead, ResponseHead};
use crate::limits::{HTTP_HEAD_TIMEOUT, MCP_REMOTE_REQUEST_CAP, MCP_REMOTE_RESPONSE_CAP, MCP_REMOTE_TIMEOUT};
use crate::secret::Secret;
use crate::webtty::client::{dial_direct, BoxConn, DirectTls};

/// The path of an MCP endpoint whose URL names none (upstream's `rstream.mcp.path` default).
pub const DEFAULT_MCP_PATH: &str = "/mcp";

/// Where a remote MCP endpoint is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum McpUrl {
    /// A tunnel dialed through the engine by name or id.
    Tunnel {
        /// Tunnel name or id.
        target: String,
        /// Request path.
        path: String,
    },
    /// An HTTP server reached directly.
    Direct {
        /// Host (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
        /// `https`.
        tls: bool,
        /// Request path.
        path: String,
    },
}

impl McpUrl {
    /// Parses `rstrm://TARGET[/path]`, a bare tunnel name, or `http(s)://HOST[:PORT][/path]`; `path` (or
    /// [`DEFAULT_MCP_PATH`]) applies when the URL has no path.
    pub fn parse(url: &str, path: Option<&str>) -> Result<McpUrl, ToolError> {
        let bad = |why: &str| ToolError(format!("invalid MCP url {url:?}: {why}"));
        let bare = crate::webtty::client::target::is_bare_server_name(url);
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None if bare => ("rstrm".to_owned(), url),
            None => return Err(bad("expected rstrm://NAME, http://HOST:PORT or https://HOST")),
        };
        let (authority, url_path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        if authority.contains('@') {
            return Err(bad("user info in the URL is not supported (pass `token`)"));
        }
        let path = match (url_path, path) {
            ("" | "/", Some(p)) => normalize(p),
            ("", None) => DEFAULT_MCP_PATH.to_owned(),
            (p, _) => p.to_owned(),
        };
        if path.contains(char::is_whitespace) {
            return Err(bad("the path holds white space"));
        }
        match scheme.as_str() {
            "rstrm" => {
                let target = authority.strip_suffix(":443").unwrap_or(authority).to_owned();
                Ok(McpUrl::Tunnel { target, path })
            }
            "http" | "https" => {
                let tls = scheme == "https";
                let (host, port) = crate::operator::fs_session::host_and_port(authority, tls);
                Ok(McpUrl::Direct { host, port, tls, path })
            }
            other => Err(bad(&format!("unsupported scheme {other:?} (expected rstrm, http or https)"))),
        }
    }

    fn path(&self) -> &str {
        match self {
            McpUrl::Tunnel { path, .. } | McpUrl::Direct { path, .. } => path,
        }
    }

    /// The `Host` header: the tunnel name, or `host:port`.
    fn host(&self) -> String {
        match self {
            McpUrl::Tunnel { target, .. } => target.clone(),
            McpUrl::Direct { host, port, .. } if host.contains(':') => format!("[{host}]:{port}"),
            McpUrl::Direct { host, port, .. } => format!("{host}:{port}"),
        }
    }
}

fn normalize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// One answer to a POST: the HTTP status, the session id it handed out, the JSON-RPC message (none for 202).
struct Reply {
    status: u16,
    session: Option<String>,
    message: Option<Value>,
}

/// A client of one remote MCP endpoint.
pub struct RemoteMcp<'a> {
    env: &'a OperatorEnv,
    url: McpUrl,
    token: Option<Secret>,
    session: Option<String>,
    protocol: Option<String>,
    next_id: u64,
}

impl<'a> RemoteMcp<'a> {
    /// A client of `url` (dialed with the operator's context `env`), sending `token` as a bearer token.
    pub fn new(env: &'a OperatorEnv, url: McpUrl, token: Option<Secret>) -> RemoteMcp<'a> {
        RemoteMcp { env, url, token, session: None, protocol: None, next_id: 1 }
    }

    /// Runs `method` with `params` (after the handshake a standard server wants) and returns the remote
    /// JSON-RPC response object `{jsonrpc, id, result|error}`. The session, if one was opened, is closed.
    pub async fn request(&mut self, method: &str, params: Option<Value>) -> Result<Value, ToolError> {
        self.initialize().await?;
        let answer = self.call(method, params).await;
        self.close().await;
        answer
    }

    /// `initialize` + `notifications/initialized`; an endpoint that refuses `initialize` is taken to be
    /// upstream-style (tools/* without a handshake).
    async fn initialize(&mut self) -> Result<(), ToolError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION.to_string(),
            "capabilities": {},
            "clientInfo": {"name": "rstream", "version": env!("CARGO_PKG_VERSION")},
        });
        let request = self.message("initialize", Some(params));
        let reply = self.post(&request).await?;
        let result = match reply.message {
            Some(m) if (200..300).contains(&reply.status) && m.get("result").is_some() => m["result"].clone(),
            _ => {
                log_debug!("mcp remote: initialize refused (HTTP {}); sending tools/* directly", reply.status);
                return Ok(());
            }
        };
        self.session = reply.session;
        self.protocol = result.get("protocolVersion").and_then(Value::as_str).map(str::to_owned);
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let reply = self.post(&note).await?;
        if !(200..300).contains(&reply.status) {
            return Err(ToolError(format!(
                "remote MCP {}: notifications/initialized answered HTTP {}",
                self.shown(),
                reply.status
            )));
        }
        Ok(())
    }

    async fn call(&mut self, method: &str, params: Option<Value>) -> Result<Value, ToolError> {
        let request = self.message(method, params);
        let id = request["id"].clone();
        let reply = self.post(&request).await?;
        let shown = self.shown();
        match reply.message {
            Some(m) if (200..300).contains(&reply.status) => Ok(m),
            Some(m) if m.get("error").is_some() => Ok(m),
            _ if (200..300).contains(&reply.status) => {
                Err(ToolError(format!("remote MCP {shown}: no answer to {method} (id {id}) in HTTP {}", reply.status)))
            }
            _ => Err(ToolError(format!("remote MCP {shown}: {method} answered HTTP {}", reply.status))),
        }
    }

    /// Ends the session of a standard server (best effort: the server may not support it).
    async fn close(&mut self) {
        let Some(session) = self.session.take() else { return };
        let head = self.head("DELETE").header("Mcp-Session-Id", session);
        if let Ok(mut conn) = self.connect().await {
            let _ = conn.request(&head, b"").await;
        }
    }

    fn message(&mut self, method: &str, params: Option<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut m = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            m["params"] = params;
        }
        m
    }

    fn shown(&self) -> String {
        match &self.url {
            McpUrl::Tunnel { target, path } => format!("rstrm://{target}{path}"),
            McpUrl::Direct { tls, path, .. } => {
                format!("{}://{}{path}", if *tls { "https" } else { "http" }, self.url.host())
            }
        }
    }

    fn head(&self, method: &str) -> RequestHead {
        let mut head = RequestHead::new(method, self.url.path());
        if let Some(token) = &self.token {
            head = head.header("Authorization", format!("Bearer {}", token.expose().trim()));
        }
        if let Some(session) = &self.session {
            head = head.header("Mcp-Session-Id", session.clone());
        }
        if let Some(protocol) = &self.protocol {
            head = head.header("MCP-Protocol-Version", protocol.clone());
        }
        head
    }

    async fn connect(&self) -> Result<ClientConn<BoxConn>, ToolError> {
        let shown = self.shown();
        let stream: BoxConn = match &self.url {
            McpUrl::Tunnel { target, .. } => {
                let api = self.env.engine_api()?;
                let stream = api
                    .endpoint()
                    .dial_tunnel(target)
                    .await
                    .map_err(|e| ToolError(format!("remote MCP {shown}: {e}")))?;
                Box::new(stream)
            }
            McpUrl::Direct { host, port, tls, .. } => {
                let trust = DirectTls::default();
                dial_direct(host, *port, tls.then_some(&trust))
                    .await
                    .map_err(|e| ToolError(format!("remote MCP {shown}: {e}")))?
            }
        };
        Ok(ClientConn::with_timeouts(
            stream,
            self.url.host(),
            HTTP_HEAD_TIMEOUT.max(MCP_REMOTE_TIMEOUT),
            MCP_REMOTE_TIMEOUT,
        ))
    }

    /// One POST of `message` on a fresh connection, its answer read within the caps.
    async fn post(&self, message: &Value) -> Result<Reply, ToolError> {
        let shown = self.shown();
        let body = serde_json::to_vec(message).map_err(|e| ToolError(e.to_string()))?;
        if body.len() > MCP_REMOTE_REQUEST_CAP {
            return Err(ToolError(format!(
                "the request to {shown} is {} bytes, more than the {MCP_REMOTE_REQUEST_CAP} allowed",
                body.len()
            )));
        }
        let head = self
            .head("POST")
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        let mut conn = self.connect().await?;
        let fail = |e: &dyn std::fmt::Display| ToolError(format!("remote MCP {shown}: {e}"));
        let response = conn.request(&head, &body).await.map_err(|e| fail(&e))?;
        let session = response.headers.get("mcp-session-id").map(str::to_owned);
        let status = response.status;
        let id = message.get("id").cloned();
        let message = match id {
            None => None, // a notification: the answer is a bare 202
            Some(id) => read_answer(&mut conn, &response, &id).await.map_err(|e| fail(&e))?,
        };
        Ok(Reply { status, session, message })
    }
}

/// Reads the JSON-RPC answer to request `id` from a response body: the body itself (`application/json`), or
/// the first event carrying it (`text/event-stream`; notifications and requests before it are skipped).
async fn read_answer(
    conn: &mut ClientConn<BoxConn>,
    response: &ResponseHead,
    id: &Value,
) -> Result<Option<Value>, String> {
    let event_stream =
        response.headers.get("content-type").is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream"));
    let too_big = || format!("the answer exceeds {MCP_REMOTE_RESPONSE_CAP} bytes");
    if !event_stream {
        let bytes = conn.read_body_to_vec(MCP_REMOTE_RESPONSE_CAP).await.map_err(|e| match e {
            crate::http::HttpError::BodyTooLarge { .. } => too_big(),
            other => other.to_string(),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        return serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("the answer is not JSON: {e}"));
    }
    let mut events = SseEvents::new();
    let mut body = conn.body();
    let mut buf = vec![0u8; crate::limits::COPY_BUF_LEN];
    let mut total = 0usize;
    loop {
        let n = body.read(&mut buf).await.map_err(|e| e.to_string())?;
        total += n;
        if total > MCP_REMOTE_RESPONSE_CAP {
            return Err(too_big());
        }
        let data = if n == 0 { events.finish().into_iter().collect() } else { events.feed(&buf[..n]) };
        for event in data {
            let Ok(message) = serde_json::from_str::<Value>(&event) else { continue };
            if message.get("id") == Some(id) && (message.get("result").is_some() || message.get("error").is_some()) {
                return Ok(Some(message));
            }
        }
        if n == 0 {
            return Err("the event stream ended without the answer".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_the_path_argument_only_when_they_have_none() {
        let tunnel = |t: &str, p: &str| McpUrl::Tunnel { target: t.into(), path: p.into() };
        assert_eq!(McpUrl::parse("rstrm://box", None).unwrap(), tunnel("box", "/mcp"));
        assert_eq!(McpUrl::parse("rstrm://box:443/x", Some("/y")).unwrap(), tunnel("box", "/x"));
        assert_eq!(McpUrl::parse("box", Some("api/mcp")).unwrap(), tunnel("box", "/api/mcp"));
        let direct = McpUrl::parse("http://127.0.0.1:8000", None).unwrap();
        assert_eq!(direct, McpUrl::Direct { host: "127.0.0.1".into(), port: 8000, tls: false, path: "/mcp".into() });
        assert_eq!(McpUrl::parse("https://[::1]/m", None).unwrap().host(), "[::1]:443");
        for bad in ["ftp://x", "http://", "127.0.0.1:80", "http://u@h"] {
            assert!(McpUrl::parse(bad, None).unwrap_err().0.contains(&format!("{bad:?}")), "{bad}");
        }
    }
}
