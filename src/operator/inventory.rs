//! Tunnel inventory as the engine reports it, and WebTTY servers discovered from it.
//!
//! A tunnel is a WebTTY server when its protocol is `webtty` (upstream's managed servers) or it carries the label
//! `application-protocol=rstream.webtty`. [`ServerInfo`] is upstream's listing shape: what `webtty list -o json`
//! prints and what the MCP tool returns, so an agent reads capabilities (`exec`, `fs`) and paths before acting.
//! A server without the `fs` capability has no `fs_path`, `fs_backend` or `fs_mode`: they are left out rather
//! than describing a filesystem that is not there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Label naming the application protocol of a tunnel.
pub const APPLICATION_PROTOCOL_LABEL: &str = "application-protocol";
/// Its value for WebTTY servers.
pub const WEBTTY_APPLICATION_PROTOCOL: &str = "rstream.webtty";
/// Prefix of WebTTY inventory labels.
pub const WEBTTY_LABEL_PREFIX: &str = "rstream.webtty.";
/// `rstream.webtty.detach` of a server that ends every process a session starts (the device's
/// `webtty::labels::DETACH_DENIED`; servers started with `--allow-detach` say `allowed`).
pub const WEBTTY_DETACH_DENIED: &str = "denied";
/// Prefix of user labels (`--label k=v` on the server).
pub const WEBTTY_USER_LABEL_PREFIX: &str = "rstream.webtty.label.";

/// One tunnel from `GET /api/tunnels` (TunnelProperties fields + status and ownership).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct TunnelInventory {
    /// Tunnel id.
    pub id: String,
    /// Tunnel name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `online` for live tunnels.
    pub status: String,
    /// `bytestream` | `datagram`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Protocol (`http`, `tls`, `tcp`, … or empty for raw private streams).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Published or private (absent = published).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<bool>,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Published host name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Published port (absent = 443).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Legacy host string.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// HTTP version of HTTP tunnels.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub http_version: String,
    /// Published HTTP requires a bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_auth: Option<bool>,
    /// Owning client.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// Creation time (RFC 3339).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub creation_date: String,
    /// Hosted workspace.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workspace_id: String,
    /// Hosted project.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project_id: String,
}

impl TunnelInventory {
    /// Whether this tunnel is a WebTTY server.
    pub fn is_webtty(&self) -> bool {
        self.protocol == "webtty"
            || self.labels.get(APPLICATION_PROTOCOL_LABEL).map(String::as_str) == Some(WEBTTY_APPLICATION_PROTOCOL)
    }

    /// Published host with `:port` when it is not 443 (upstream's display form), else the legacy host.
    pub fn display_host(&self) -> String {
        match (self.hostname.is_empty(), self.port) {
            (false, Some(p)) if p != 443 => format!("{}:{p}", self.hostname),
            (false, _) => self.hostname.clone(),
            (true, _) => self.host.clone(),
        }
    }

    fn webtty_label(&self, key: &str) -> Option<&str> {
        self.labels.get(&format!("{WEBTTY_LABEL_PREFIX}{key}")).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// A WebTTY server as listed by `webtty list` and the MCP tool (upstream's ServerInfo).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// `online`.
    pub status: String,
    /// Tunnel id.
    pub tunnel_id: String,
    /// Tunnel protocol.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tunnel_protocol: String,
    /// Upstream managed (protocol `webtty`) server.
    pub managed: bool,
    /// Tunnel name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tunnel_name: String,
    /// What to pass as `rstrm://<target>`.
    pub target: String,
    /// `rstrm://<server id | name | id>`.
    pub rstream_url: String,
    /// Published on the engine's public host.
    pub publish: bool,
    /// Public host when published.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Public access needs a bearer token.
    pub token_auth: bool,
    /// Upstream server id label.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_id: String,
    /// Upstream server name label.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    /// `exec`, `fs` (in that order); `["exec"]` when the label is absent.
    pub capabilities: Vec<String>,
    /// WebSocket path of the terminal endpoint.
    pub exec_path: String,
    /// `spawn` (sessions run as the server's user) or `login` (as a configured OS user); empty (and left out)
    /// when the server does not say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub execution_mode: String,
    /// `allowed` when processes may outlive their session (`webtty server --allow-detach`), `denied` on our
    /// servers without it, empty (and left out) on servers that do not say (upstream's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detach: String,
    /// WebDAV mount path (servers with `fs` only; empty and left out otherwise).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fs_path: String,
    /// `webdav` (servers with `fs` only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fs_backend: String,
    /// `read-only` | `read-write` (servers with `fs` only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fs_mode: String,
    /// `linux`, …
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_family: String,
    /// CPU architecture.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// `/etc/os-release` ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_id: String,
    /// `/etc/os-release` VERSION_ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_version_id: String,
    /// `/etc/os-release` VERSION_CODENAME.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_version_codename: String,
    /// `/etc/os-release` PRETTY_NAME.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_pretty_name: String,
    /// `uname -r`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kernel_release: String,
    /// Host name of the device.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// User labels, prefix stripped.
    pub labels: BTreeMap<String, String>,
}

impl ServerInfo {
    /// Builds the listing entry of a WebTTY tunnel (None if the tunnel is not a WebTTY server).
    pub fn from_tunnel(t: &TunnelInventory) -> Option<ServerInfo> {
        if !t.is_webtty() {
            return None;
        }
        let label = |k: &str| t.webtty_label(k).unwrap_or("").to_owned();
        let server_id = label("server_id");
        let server_name = label("server_name");
        let name_or_id = if t.name.is_empty() { t.id.clone() } else { t.name.clone() };
        let target = if server_name.is_empty() { name_or_id.clone() } else { server_name.clone() };
        let url_target = if server_id.is_empty() { name_or_id } else { server_id.clone() };
        let capabilities = capabilities(t.webtty_label("capabilities"));
        let has_fs = capabilities.iter().any(|c| c == "fs");
        let fs_label = |key: &str, default: &str| match has_fs {
            true => t.webtty_label(key).unwrap_or(default).to_owned(),
            false => String::new(),
        };
        Some(ServerInfo {
            status: t.status.clone(),
            tunnel_id: t.id.clone(),
            tunnel_protocol: t.protocol.clone(),
            managed: t.protocol == "webtty",
            tunnel_name: t.name.clone(),
            target,
            rstream_url: format!("rstrm://{url_target}"),
            publish: t.publish.unwrap_or(true),
            host: if t.publish.unwrap_or(true) { t.display_host() } else { String::new() },
            token_auth: t.token_auth.unwrap_or(false),
            server_id,
            server_name,
            capabilities,
            exec_path: t.webtty_label("exec.path").unwrap_or("/").to_owned(),
            execution_mode: label("execution.mode"),
            detach: t.webtty_label("detach").unwrap_or("").to_owned(),
            fs_path: fs_label("fs.path", "/fs"),
            fs_backend: fs_label("fs.backend", "webdav"),
            fs_mode: fs_label("fs.mode", "read-write"),
            os_family: label("os_family"),
            arch: label("arch"),
            os_id: label("os_id"),
            os_version_id: label("os_version_id"),
            os_version_codename: label("os_version_codename"),
            os_pretty_name: label("os_pretty_name"),
            kernel_release: label("kernel_release"),
            hostname: label("hostname"),
            labels: t
                .labels
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(WEBTTY_USER_LABEL_PREFIX).map(|k| (k.to_owned(), v.clone())))
                .collect(),
        })
    }

    /// Whether the server advertises `capability` (`exec`, `fs`).
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }

    /// Names a user may refer to this server by (for `rstrm://NAME` resolution and name filters).
    pub fn names(&self) -> [&str; 5] {
        [&self.target, &self.tunnel_name, &self.tunnel_id, &self.server_id, &self.hostname]
    }
}

/// Parses the capabilities label: comma-separated, known values only, in the order `exec`, `fs`.
fn capabilities(label: Option<&str>) -> Vec<String> {
    let Some(label) = label else { return vec!["exec".to_owned()] };
    let listed: Vec<&str> = label.split(',').map(str::trim).collect();
    ["exec", "fs"].iter().filter(|c| listed.contains(c)).map(|c| (*c).to_owned()).collect()
}

/// Picks the one server `target` names (id, tunnel name, server id/name, or host). Ambiguity and absence are
/// errors naming the candidates.
pub fn resolve_server<'a>(servers: &'a [ServerInfo], target: &str) -> Result<&'a ServerInfo, String> {
    let target = target.trim_end_matches('/');
    let host = target.strip_suffix(":443").unwrap_or(target);
    let hits: Vec<&ServerInfo> = servers
        .iter()
        .filter(|s| {
            s.tunnel_id == target
                || s.tunnel_name == target
                || s.target == target
                || (!s.server_id.is_empty() && s.server_id == target)
                || (!s.host.is_empty() && s.host == host)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => {
            let known: Vec<&str> = servers.iter().map(|s| s.target.as_str()).collect();
            let known = if known.is_empty() { "none online".to_owned() } else { known.join(", ") };
            Err(format!("no WebTTY server named {target:?} (known: {known})"))
        }
        many => {
            let ids: Vec<String> = many.iter().map(|s| format!("{} ({})", s.target, s.tunnel_id)).collect();
            Err(format!(
                "multiple WebTTY servers match {target:?}: {}; use the tunnel id or a unique name",
                ids.join(", ")
            ))
        }
    }
}

/// WebTTY servers known to the engine, narrowed by `filter` (engine-side filters, then name words).
pub async fn list_webtty_servers(
    api: &super::api::EngineApi,
    filter: &super::filter::Filter,
) -> Result<Vec<ServerInfo>, super::api::ApiError> {
    let tunnels = api.list_tunnels(&filter.tunnels).await?;
    Ok(tunnels.iter().filter_map(ServerInfo::from_tunnel).filter(|s| filter.matches_names(s.names())).collect())
}

/// The online WebTTY server `target` names (`rstrm://` prefix and trailing path allowed).
pub async fn resolve_webtty(api: &super::api::EngineApi, target: &str) -> Result<ServerInfo, String> {
    let name = target.strip_prefix("rstrm://").unwrap_or(target);
    let name = name.split('/').next().unwrap_or(name);
    let servers = list_webtty_servers(api, &super::filter::Filter::default()).await.map_err(|e| e.to_string())?;
    let server = resolve_server(&servers, name)?;
    if server.status != "online" {
        return Err(format!("WebTTY server {:?} is not online", server.target));
    }
    Ok(server.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(json: &str) -> TunnelInventory {
        serde_json::from_str(json).unwrap()
    }

    const WEBTTY: &str = r#"{"id":"t1","name":"homelab-macmini","status":"online","type":"bytestream","publish":false,
        "client_id":"c1","labels":{"application-protocol":"rstream.webtty","rstream.webtty.capabilities":"fs,exec,bogus",
        "rstream.webtty.exec.path":"/","rstream.webtty.fs.mode":"read-only","rstream.webtty.arch":"aarch64",
        "rstream.webtty.hostname":"mini","rstream.webtty.label.role":"codex","other":"x"}}"#;

    #[test]
    fn webtty_tunnel_becomes_server_info_with_upstream_defaults() {
        let s = ServerInfo::from_tunnel(&tunnel(WEBTTY)).unwrap();
        assert_eq!((s.target.as_str(), s.rstream_url.as_str()), ("homelab-macmini", "rstrm://homelab-macmini"));
        assert_eq!(s.capabilities, ["exec", "fs"]);
        assert_eq!((s.exec_path.as_str(), s.fs_path.as_str(), s.fs_mode.as_str()), ("/", "/fs", "read-only"));
        assert_eq!(s.labels, BTreeMap::from([("role".to_owned(), "codex".to_owned())]));
        assert_eq!((s.arch.as_str(), s.hostname.as_str(), s.publish, s.managed), ("aarch64", "mini", false, false));
        let json = serde_json::to_value(&s).unwrap();
        for key in
            ["tunnel_id", "tunnel_name", "target", "rstream_url", "status", "capabilities", "exec_path", "fs_path"]
        {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
    }

    #[test]
    fn exec_only_when_capabilities_label_is_absent_and_plain_tunnels_are_not_servers() {
        let t =
            tunnel(r#"{"id":"t2","name":"x","status":"online","labels":{"application-protocol":"rstream.webtty"}}"#);
        let s = ServerInfo::from_tunnel(&t).unwrap();
        assert_eq!(s.capabilities, ["exec"]);
        assert!(!s.has("fs"));
        let json = serde_json::to_value(&s).unwrap();
        for key in ["fs_path", "fs_backend", "fs_mode"] {
            assert!(json.get(key).is_none(), "an exec-only server has no {key}: {json}");
        }
        assert!(ServerInfo::from_tunnel(&tunnel(r#"{"id":"t3","name":"web","protocol":"http"}"#)).is_none());
    }

    #[test]
    fn published_host_shows_non_default_port() {
        let t = tunnel(
            r#"{"id":"t","name":"s","hostname":"s.t.localhost","port":8443,"protocol":"http",
            "labels":{"application-protocol":"rstream.webtty"}}"#,
        );
        assert_eq!(ServerInfo::from_tunnel(&t).unwrap().host, "s.t.localhost:8443");
    }

    #[test]
    fn resolution_by_name_id_and_ambiguity() {
        let a = ServerInfo::from_tunnel(&tunnel(WEBTTY)).unwrap();
        let mut b = a.clone();
        b.tunnel_id = "t9".into();
        let servers = vec![a.clone()];
        assert_eq!(resolve_server(&servers, "homelab-macmini").unwrap().tunnel_id, "t1");
        assert_eq!(resolve_server(&servers, "t1").unwrap().tunnel_id, "t1");
        let err = resolve_server(&servers, "nope").unwrap_err();
        assert!(err.contains("known: homelab-macmini"), "{err}");
        let both = vec![a, b];
        let err = resolve_server(&both, "homelab-macmini").unwrap_err();
        assert!(err.contains("multiple WebTTY servers") && err.contains("t1") && err.contains("t9"), "{err}");
        assert_eq!(resolve_server(&both, "t9").unwrap().tunnel_id, "t9");
    }
}
