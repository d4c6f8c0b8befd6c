//! Opening a WebTTY server's filesystem sidecar: resolve the URL, refuse exec-only servers, dial, hand back a
//! WebDAV client.
//!
//! `rstrm://NAME` is looked up in the engine's inventory first: the server must be online and advertise `fs`
//! (checked before any byte goes to the device), and its advertised `fs_path` is used unless overridden; the
//! HTTP then runs over a private stream dialed through the engine. `http://`/`ws://` reach a `--listen` server
//! directly, `https://`/`wss://` one serving TLS (trusted through [`DirectTls`]: `--tls-ca-file`); there is no
//! inventory to consult, so the sidecar's answer decides.

use std::fmt;

use super::api::EngineApi;
use super::inventory::{resolve_webtty, ServerInfo};
use crate::config;
use crate::secret::Secret;
use crate::webdav::DavClient;
use crate::webtty::client::{dial_direct, BoxConn, DirectTls};

/// Default mount path of the sidecar.
pub const DEFAULT_FS_PATH: &str = "/fs";

/// Why the sidecar could not be opened.
#[derive(Debug)]
pub struct FsOpenError(pub String);

impl fmt::Display for FsOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FsOpenError {}

/// Where a filesystem request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsTarget {
    /// Through the engine to a tunnel (`rstrm://NAME`).
    Tunnel(String),
    /// Directly to a `--listen` server.
    Direct {
        /// Host (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
        /// TLS (`https`/`wss`).
        tls: bool,
    },
}

impl FsTarget {
    /// Parses `rstrm://NAME` (or a bare NAME), `http(s)://HOST[:PORT]`, `ws(s)://HOST[:PORT]` (a path part is
    /// ignored).
    pub fn parse(url: &str) -> Result<FsTarget, FsOpenError> {
        let bad = |why: &str| FsOpenError(format!("invalid --url {url:?}: {why}"));
        let bare_name = crate::webtty::client::target::is_bare_server_name(url);
        let (scheme, rest) = url.split_once("://").unwrap_or((if bare_name { "rstrm" } else { "ws" }, url));
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "rstrm" {
            return Ok(FsTarget::Tunnel(authority.strip_suffix(":443").unwrap_or(authority).to_owned()));
        }
        let tls = match scheme.as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            other => {
                return Err(bad(&format!("unsupported scheme {other:?} (expected rstrm, http, https, ws or wss)")))
            }
        };
        let (host, port) = host_and_port(authority, tls);
        Ok(FsTarget::Direct { host, port, tls })
    }
}

/// `HOST[:PORT]` of an `http(s)://` URL (IPv6 without brackets); the port defaults to 443 with TLS, else 80.
pub fn host_and_port(authority: &str, tls: bool) -> (String, u16) {
    let (host, port) = crate::config::resolve::split_host_port(authority);
    let port = match authority.ends_with(&format!(":{port}")) {
        true => port,
        false if tls => 443,
        false => 80,
    };
    (host.to_owned(), port)
}

/// An open sidecar: the client, the resolved server (tunnels only) and the mount path used.
pub struct FsSession {
    /// WebDAV client on a fresh connection.
    pub client: DavClient<BoxConn>,
    /// The server as the inventory lists it (`rstrm://` targets).
    pub server: Option<ServerInfo>,
    /// Sidecar path in use.
    pub fs_path: String,
    url: String,
    auth_token: Option<Secret>,
    tls: DirectTls,
}

impl FsSession {
    /// A new connection to the same sidecar (for when the previous one cannot carry another request).
    pub async fn reopen(&self) -> Result<FsSession, FsOpenError> {
        open(&self.url, Some(&self.fs_path), self.auth_token.as_ref(), &self.tls).await
    }
}

/// Refuses servers that do not advertise `fs`, in words an agent can act on.
pub fn require_fs(server: &ServerInfo) -> Result<(), FsOpenError> {
    if server.has("fs") {
        return Ok(());
    }
    Err(FsOpenError(format!(
        "server {:?} is exec-only: it advertises exec only, no filesystem sidecar (use exec, or restart it with \
         `rstream webtty server … --fs-root DIR`)",
        server.target
    )))
}

/// Opens the sidecar of `url`; `fs_path` overrides the advertised path; `auth_token` is the local bearer token;
/// `tls` says how to trust an `https://` server.
pub async fn open(
    url: &str,
    fs_path: Option<&str>,
    auth_token: Option<&Secret>,
    tls: &DirectTls,
) -> Result<FsSession, FsOpenError> {
    let (stream, host, server): (BoxConn, String, Option<ServerInfo>) = match FsTarget::parse(url)? {
        FsTarget::Tunnel(name) => {
            let ctx = config::resolve().map_err(|e| FsOpenError(e.to_string()))?;
            let api = EngineApi::from_context(&ctx).map_err(|e| FsOpenError(e.to_string()))?;
            let server = resolve_webtty(&api, &name).await.map_err(FsOpenError)?;
            require_fs(&server)?;
            let stream = api.endpoint().dial_tunnel(&server.tunnel_id).await.map_err(|e| FsOpenError(e.to_string()))?;
            (Box::new(stream), server.target.clone(), Some(server))
        }
        FsTarget::Direct { host, port, tls: direct_tls } => {
            let stream = dial_direct(&host, port, direct_tls.then_some(tls))
                .await
                .map_err(|e| FsOpenError(format!("cannot reach {url}: {e}")))?;
            let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
            (stream, authority, None)
        }
    };
    let fs_path = fs_path
        .map(str::to_owned)
        .or_else(|| server.as_ref().map(|s| s.fs_path.clone()))
        .unwrap_or_else(|| DEFAULT_FS_PATH.to_owned());
    let mut client = DavClient::new(stream, host, &fs_path);
    if let Some(token) = auth_token {
        client = client.with_bearer_token(token.expose().trim());
    }
    let auth_token = auth_token.cloned();
    Ok(FsSession { client, server, fs_path, url: url.to_owned(), auth_token, tls: tls.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_upstream() {
        assert_eq!(FsTarget::parse("rstrm://pi/fs").unwrap(), FsTarget::Tunnel("pi".into()));
        assert_eq!(FsTarget::parse("rstrm://pi:443").unwrap(), FsTarget::Tunnel("pi".into()));
        let direct = |host: &str, port, tls| FsTarget::Direct { host: host.into(), port, tls };
        assert_eq!(FsTarget::parse("http://127.0.0.1:8080/fs").unwrap(), direct("127.0.0.1", 8080, false));
        assert_eq!(FsTarget::parse("ws://localhost").unwrap(), direct("localhost", 80, false));
        assert_eq!(FsTarget::parse("127.0.0.1:9").unwrap(), direct("127.0.0.1", 9, false));
        assert_eq!(FsTarget::parse("wss://[::1]:8443").unwrap(), direct("::1", 8443, true));
        assert!(FsTarget::parse("ftp://x").unwrap_err().to_string().contains("unsupported scheme"));
        assert!(FsTarget::parse("http://").is_err());
    }

    #[test]
    fn exec_only_servers_are_refused_with_a_clear_message() {
        let server = ServerInfo { target: "pi".into(), capabilities: vec!["exec".into()], ..Default::default() };
        let err = require_fs(&server).unwrap_err().to_string();
        assert!(
            err.contains("\"pi\" is exec-only") && err.contains("advertises exec only") && err.contains("--fs-root")
        );
        let fs = ServerInfo { capabilities: vec!["exec".into(), "fs".into()], ..server };
        assert!(require_fs(&fs).is_ok());
    }
}
