//! `rstream mcp publish`: this MCP tool set served over HTTP at `/mcp` on a tunnel of the engine, for agents
//! elsewhere (their `rstream_remote_mcp_*` tools, or any Streamable-HTTP client).
//!
//! An [`Agent`] registers one tunnel labelled `application-protocol=rstream.mcp`, `rstream.mcp.path=/mcp`,
//! `rstream.mcp.transport=streamable-http` — published as HTTP/1.1 with `token_auth` (the engine admits only
//! callers holding a token allowed to open streams), or private (`rstrm://NAME`). Each stream is an HTTP/1.1
//! connection answered by [`McpEndpoint`], as upstream's handler answers:
//! - `POST /mcp` (or `/mcp/`) with one JSON-RPC message of at most [`MCP_PUBLISH_BODY_CAP`] bytes (else 413):
//!   200 with the JSON answer and `MCP-Protocol-Version`, or 202 for a notification; invalid JSON is 400 with
//!   -32700;
//! - any other method on `/mcp` is 405 with `Allow: POST`; every other path is 404.
//!
//! Tool calls run on blocking threads, at most [`MCP_MAX_RUNNING_CALLS`] at once (the rest wait, bounded by
//! the agent's stream limit), under the same tool policy flags as `mcp serve`.

use std::sync::Arc;

use async_lock::Semaphore;
use serde_json::{json, Value};

use super::cancel::Cancel;
use super::catalog::Catalog;
use super::remote_mcp::{MCP_APPLICATION_PROTOCOL, MCP_PATH_LABEL, MCP_TRANSPORT, MCP_TRANSPORT_LABEL};
use super::remote_mcp_client::DEFAULT_MCP_PATH;
use super::rpc::{self, Rpc};
use super::server::PROTOCOL_VERSION;
use crate::agent::{StreamHandler, StreamInfo};
use crate::http::{HttpError, ResponseHead, ServerConn};
use crate::limits::{MCP_MAX_RUNNING_CALLS, MCP_PUBLISH_BODY_CAP};
use crate::operator::inventory::APPLICATION_PROTOCOL_LABEL;
use crate::proto::rstream::TunnelProperties;
use crate::transport::TlsStream;

/// The tunnel `mcp publish` registers: `name`, published (HTTP/1.1, token_auth) or private, our labels over
/// the user's `labels`.
pub fn tunnel(name: &str, publish: bool, labels: &[(String, String)]) -> TunnelProperties {
    let mut labels: std::collections::BTreeMap<String, String> = labels.iter().cloned().collect();
    for (k, v) in [
        (APPLICATION_PROTOCOL_LABEL, MCP_APPLICATION_PROTOCOL),
        (MCP_PATH_LABEL, DEFAULT_MCP_PATH),
        (MCP_TRANSPORT_LABEL, MCP_TRANSPORT),
    ] {
        labels.insert(k.to_owned(), v.to_owned());
    }
    // The same tunnel shape as a WebTTY server's: HTTP/1.1 with token_auth when published.
    crate::webtty::labels::server_tunnel(name, publish, labels)
}

/// Upstream's status object for an online endpoint: `{forwarding, host?, name?, path, published, token_auth,
/// tunnel_id?, url}`; `forwarding` as `forward` shows it.
pub fn status(tunnel: &TunnelProperties, forwarding: &str) -> Value {
    use crate::proto::rstream::opt_str;
    let published = tunnel.is_published();
    let base = forwarding.strip_suffix(" (unpublished)").unwrap_or(forwarding);
    let mut value = json!({
        "forwarding": forwarding,
        "path": DEFAULT_MCP_PATH,
        "published": published,
        "token_auth": published,
        "url": format!("{base}{DEFAULT_MCP_PATH}"),
    });
    for (key, field) in [("host", &tunnel.host), ("name", &tunnel.name), ("tunnel_id", &tunnel.id)] {
        if let Some(v) = opt_str(field).filter(|v| !v.is_empty()) {
            value[key] = json!(v);
        }
    }
    value
}

/// The HTTP side of a published MCP endpoint.
#[derive(Clone)]
pub struct McpEndpoint {
    catalog: Arc<Catalog>,
    running: Arc<Semaphore>,
}

impl McpEndpoint {
    /// An endpoint offering `catalog`.
    pub fn new(catalog: Catalog) -> McpEndpoint {
        McpEndpoint { catalog: Arc::new(catalog), running: Arc::new(Semaphore::new(MCP_MAX_RUNNING_CALLS)) }
    }

    /// Serves one HTTP/1.1 connection until the client closes it (keep-alive).
    pub async fn serve<S>(&self, stream: S)
    where
        S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send,
    {
        let mut conn = ServerConn::new(stream);
        while let Ok(Some(head)) = conn.next_request().await {
            let path = head.path();
            let (response, body) = if path != DEFAULT_MCP_PATH && path != "/mcp/" {
                text(404, "not found: the MCP endpoint is POST /mcp\n")
            } else if head.method != "POST" {
                let (response, body) = text(405, "method not allowed: POST a JSON-RPC message\n");
                (response.header("Allow", "POST"), body)
            } else {
                match conn.read_body_to_vec(MCP_PUBLISH_BODY_CAP).await {
                    Ok(body) => self.answer(&body).await,
                    Err(HttpError::BodyTooLarge { .. }) => {
                        conn.set_close();
                        text(413, &format!("request body larger than {MCP_PUBLISH_BODY_CAP} bytes\n"))
                    }
                    Err(_) => return,
                }
            };
            if conn.respond(response, &body).await.is_err() {
                return;
            }
        }
    }

    /// The answer to one POSTed body.
    async fn answer(&self, body: &[u8]) -> (ResponseHead, Vec<u8>) {
        let message: Value = match serde_json::from_slice(body) {
            Ok(m) => m,
            Err(e) => return jsonrpc(400, &rpc::error(Value::Null, rpc::PARSE_ERROR, format!("parse error: {e}"))),
        };
        let answer = match rpc::route(&self.catalog, &message) {
            Rpc::Nothing => return (ResponseHead::new(202).header("MCP-Protocol-Version", version()), Vec::new()),
            Rpc::Answer(answer) => answer,
            Rpc::Call { id, name, arguments } => {
                let _slot = self.running.acquire().await;
                let catalog = Arc::clone(&self.catalog);
                log_debug!("mcp publish: tools/call {name}");
                let result = smol::unblock(move || catalog.call(&name, arguments, &Cancel::never())).await;
                rpc::call_answer(id, &result)
            }
        };
        jsonrpc(200, &answer)
    }
}

impl StreamHandler for McpEndpoint {
    type Local = ();

    async fn prepare(&self, _info: &StreamInfo) -> Result<(), String> {
        Ok(())
    }

    async fn handle(&self, stream: TlsStream, info: StreamInfo, (): ()) {
        log_debug!("mcp publish: stream {} from {:?}", info.stream_id, info.source_ip);
        self.serve(stream).await;
    }
}

fn version() -> String {
    PROTOCOL_VERSION.to_string()
}

fn text(status: u16, body: &str) -> (ResponseHead, Vec<u8>) {
    (ResponseHead::new(status).header("Content-Type", "text/plain; charset=utf-8"), body.as_bytes().to_vec())
}

fn jsonrpc(status: u16, message: &Value) -> (ResponseHead, Vec<u8>) {
    let head =
        ResponseHead::new(status).header("Content-Type", "application/json").header("MCP-Protocol-Version", version());
    (head, serde_json::to_vec(message).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::operator_env::OperatorEnv;
    use crate::operator::tool_policy::ToolPolicyFlags;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    fn endpoint() -> McpEndpoint {
        let env = OperatorEnv::new("/nonexistent/rstream-publish/config.yaml".into(), &[]);
        McpEndpoint::new(Catalog::new(env, ToolPolicyFlags::default()).unwrap())
    }

    /// Sends `request` (raw HTTP/1.1, closing) to an endpoint over an in-memory socket pair; returns the reply.
    fn exchange(request: &[u8]) -> String {
        let (client, server) = std::os::unix::net::UnixStream::pair().unwrap();
        let (client, server) = (async_io::Async::new(client).unwrap(), async_io::Async::new(server).unwrap());
        let ep = endpoint();
        smol::block_on(async {
            let serve = ep.serve(server);
            let talk = async {
                let mut client = client;
                client.write_all(request).await.unwrap();
                let mut out = Vec::new();
                client.read_to_end(&mut out).await.unwrap();
                out
            };
            let (_, out) = futures_lite::future::zip(serve, talk).await;
            String::from_utf8_lossy(&out).into_owned()
        })
    }

    fn post(path: &str, body: &str) -> String {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: \
             close\r\n\r\n{body}",
            body.len()
        );
        exchange(req.as_bytes())
    }

    #[test]
    fn posts_get_json_answers_notifications_202_and_bad_json_400() {
        let list = post("/mcp", r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert!(list.starts_with("HTTP/1.1 200"), "{list}");
        assert!(list.to_ascii_lowercase().contains("mcp-protocol-version: 2025-11-25"), "{list}");
        assert!(list.contains("rstream_runtime_status"), "{list}");
        let note = post("/mcp/", r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(note.starts_with("HTTP/1.1 202"), "{note}");
        let bad = post("/mcp", "{nope");
        assert!(bad.starts_with("HTTP/1.1 400") && bad.contains("-32700"), "{bad}");
    }

    #[test]
    fn other_methods_paths_and_oversize_bodies_are_refused() {
        let get = exchange(b"GET /mcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(get.starts_with("HTTP/1.1 405") && get.contains("Allow: POST"), "{get}");
        assert!(post("/other", "{}").starts_with("HTTP/1.1 404"));
        let big = format!("POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", MCP_PUBLISH_BODY_CAP + 1);
        assert!(exchange(big.as_bytes()).starts_with("HTTP/1.1 413"));
    }

    #[test]
    fn the_tunnel_carries_our_labels_and_token_auth_when_published() {
        let t = tunnel("box", true, &[("role".into(), "ops".into()), (MCP_PATH_LABEL.into(), "/x".into())]);
        assert_eq!(t.labels["application-protocol"], "rstream.mcp");
        assert_eq!((t.labels["rstream.mcp.path"].as_str(), t.labels["role"].as_str()), ("/mcp", "ops"));
        assert_eq!(t.token_auth, Some(true.into()));
        let private = tunnel("box", false, &[]);
        assert!(private.token_auth.is_none() && private.protocol.is_none());
        let s = status(&private, "rstrm://box (unpublished)");
        assert_eq!((s["url"].as_str(), s["published"].clone()), (Some("rstrm://box/mcp"), json!(false)));
    }
}
