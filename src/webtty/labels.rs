//! The tunnel labels a WebTTY server registers, so operators (and `webtty list`) discover it by capability,
//! host facts and user labels.
//!
//! - `application-protocol=rstream.webtty`
//! - `rstream.webtty.capabilities=exec` or `exec,fs`, `rstream.webtty.exec.path=/`,
//!   `rstream.webtty.execution.mode=spawn|login`, and with a filesystem sidecar `rstream.webtty.fs.path=/fs` and
//!   `rstream.webtty.fs.mode=read-only|read-write`
//! - host facts: `rstream.webtty.os_family`, `arch`, `hostname`, `kernel_release` (uname) and `os_id`,
//!   `os_version_id`, `os_version_codename`, `os_pretty_name` (`/etc/os-release`)
//! - each `--label k=v` as `rstream.webtty.label.k=v`
//!
//! `os_family` and `arch` use Go's `GOOS`/`GOARCH` names (`linux`, `amd64`, `arm64`, …) as upstream's Go
//! server reports them, so filters written against upstream inventories keep matching.

use std::collections::BTreeMap;

use super::execution::ExecutionMode;
use super::sys;
use crate::proto::rstream::{some_str, TunnelProperties};

/// Label naming the application protocol of a tunnel.
pub const APPLICATION_PROTOCOL_LABEL: &str = "application-protocol";
/// Its value for WebTTY servers.
pub const WEBTTY_APPLICATION_PROTOCOL: &str = "rstream.webtty";
/// Prefix of every WebTTY inventory label.
pub const WEBTTY_LABEL_PREFIX: &str = "rstream.webtty.";
/// Prefix of user labels.
pub const WEBTTY_USER_LABEL_PREFIX: &str = "rstream.webtty.label.";
/// Where the exec/terminal WebSocket is served.
pub const EXEC_PATH: &str = "/";
/// Where the WebDAV sidecar is mounted.
pub const FS_PATH: &str = "/fs";

/// What the server offers, as far as labels are concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerFeatures {
    /// The filesystem sidecar is served: `Some(read_only)`.
    pub fs: Option<bool>,
    /// `--label k=v` pairs, validated with [`parse_user_label`].
    pub user_labels: Vec<(String, String)>,
    /// `--allow-detach`: processes that leave their command's session survive the WebTTY session.
    pub detach: bool,
    /// `--execution-mode`, advertised as [`EXECUTION_MODE_LABEL`].
    pub execution_mode: ExecutionMode,
}

/// Label naming the execution mode (`spawn` or `login`). Upstream's key (its Go server and `webtty list`); issue 15
/// spells it `rstream.webtty.execution_mode`, which no upstream client reads.
pub const EXECUTION_MODE_LABEL: &str = "rstream.webtty.execution.mode";

/// Label saying whether the server lets processes detach from a session: [`DETACH_ALLOWED`] or
/// [`DETACH_DENIED`]. Always advertised, so clients recognise our servers (upstream's have no such label).
pub const DETACH_LABEL: &str = "rstream.webtty.detach";
/// [`DETACH_LABEL`] of a server started with `--allow-detach`.
pub const DETACH_ALLOWED: &str = "allowed";
/// [`DETACH_LABEL`] of a server that ends everything a session started (the default).
pub const DETACH_DENIED: &str = "denied";

/// Parses one `--label k=v`. Keys are `[A-Za-z0-9._-]+`; values may be empty but hold no control characters.
pub fn parse_user_label(arg: &str) -> Result<(String, String), String> {
    let (key, value) = arg.split_once('=').ok_or_else(|| format!("label {arg:?}: expected key=value"))?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(format!("label key {key:?}: use letters, digits, '.', '_' or '-'"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("label {key:?}: value holds control characters"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// All labels of a WebTTY server tunnel on this host.
pub fn server_labels(features: &ServerFeatures) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut put = |key: &str, value: &str| {
        if !value.is_empty() {
            labels.insert(key.to_string(), value.to_string());
        }
    };
    put(APPLICATION_PROTOCOL_LABEL, WEBTTY_APPLICATION_PROTOCOL);
    let w = |suffix: &str| format!("{WEBTTY_LABEL_PREFIX}{suffix}");
    put(&w("capabilities"), if features.fs.is_some() { "exec,fs" } else { "exec" });
    put(&w("exec.path"), EXEC_PATH);
    put(EXECUTION_MODE_LABEL, features.execution_mode.as_str());
    put(DETACH_LABEL, if features.detach { DETACH_ALLOWED } else { DETACH_DENIED });
    if let Some(read_only) = features.fs {
        put(&w("fs.path"), FS_PATH);
        put(&w("fs.mode"), if read_only { "read-only" } else { "read-write" });
    }
    let host = HostInfo::current();
    for (key, value) in host.labels() {
        put(&w(key), &value);
    }
    for (key, value) in &features.user_labels {
        labels.insert(format!("{WEBTTY_USER_LABEL_PREFIX}{key}"), value.clone());
    }
    labels
}

/// The tunnel a `webtty server --rstream` registers: a byte-stream tunnel named `name` carrying `labels`.
/// Published (upstream's default) it is an HTTP/1.1 tunnel with `token_auth`, so the engine demands a token
/// from public clients; private it has no protocol and is reached only as `rstrm://name`.
pub fn server_tunnel(name: &str, publish: bool, labels: BTreeMap<String, String>) -> TunnelProperties {
    TunnelProperties {
        name: some_str(name),
        r#type: some_str("bytestream"),
        publish: Some(publish.into()),
        protocol: publish.then(|| "http".into()),
        http_version: publish.then(|| "http/1.1".into()),
        token_auth: publish.then(|| true.into()),
        labels,
        ..Default::default()
    }
}

/// Facts about the host a WebTTY server runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// Go `GOOS` name (`linux`, `darwin`).
    pub os_family: String,
    /// Go `GOARCH` name (`amd64`, `arm64`, `arm`, `mipsle`, …).
    pub arch: String,
    /// Host name.
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel_release: String,
    /// `/etc/os-release` `ID`.
    pub os_id: String,
    /// `/etc/os-release` `VERSION_ID`.
    pub os_version_id: String,
    /// `/etc/os-release` `VERSION_CODENAME`.
    pub os_version_codename: String,
    /// `/etc/os-release` `PRETTY_NAME`.
    pub os_pretty_name: String,
}

impl HostInfo {
    /// Reads uname and `/etc/os-release` (or `/usr/lib/os-release`); missing facts stay empty.
    pub fn current() -> HostInfo {
        let uname = sys::uname().unwrap_or_default();
        let release = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        let os = parse_os_release(&release);
        let get = |k: &str| os.get(k).cloned().unwrap_or_default();
        HostInfo {
            os_family: std::env::consts::OS.to_string(),
            arch: go_arch().to_string(),
            hostname: uname.nodename,
            kernel_release: uname.release,
            os_id: get("ID"),
            os_version_id: get("VERSION_ID"),
            os_version_codename: get("VERSION_CODENAME"),
            os_pretty_name: get("PRETTY_NAME"),
        }
    }

    /// (label suffix, value) pairs.
    pub fn labels(&self) -> [(&'static str, String); 8] {
        [
            ("os_family", self.os_family.clone()),
            ("arch", self.arch.clone()),
            ("hostname", self.hostname.clone()),
            ("kernel_release", self.kernel_release.clone()),
            ("os_id", self.os_id.clone()),
            ("os_version_id", self.os_version_id.clone()),
            ("os_version_codename", self.os_version_codename.clone()),
            ("os_pretty_name", self.os_pretty_name.clone()),
        ]
    }
}

/// This build's CPU architecture under Go's `GOARCH` name.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Parses `/etc/os-release` (`KEY=value`, values optionally quoted with `"` or `'`, `#` comments).
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|&q| v.strip_prefix(q).and_then(|v| v.strip_suffix(q)))
                .map(|v| v.replace("\\\"", "\"").replace("\\\\", "\\"))
                .unwrap_or_else(|| v.to_string());
            (k.trim().to_string(), unquoted)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_only_server_advertises_exec_and_user_labels() {
        let features =
            ServerFeatures { user_labels: vec![("role".into(), "codex".into())], ..ServerFeatures::default() };
        let labels = server_labels(&features);
        assert_eq!(labels["application-protocol"], "rstream.webtty");
        assert_eq!(labels["rstream.webtty.capabilities"], "exec");
        assert_eq!(labels["rstream.webtty.exec.path"], "/");
        assert_eq!(labels["rstream.webtty.execution.mode"], "spawn");
        assert_eq!(labels["rstream.webtty.label.role"], "codex");
        assert_eq!(labels["rstream.webtty.os_family"], std::env::consts::OS);
        assert!(!labels["rstream.webtty.hostname"].is_empty());
        assert!(!labels.contains_key("rstream.webtty.fs.path"));
    }

    #[test]
    fn fs_sidecar_adds_capability_path_and_mode() {
        let features = ServerFeatures {
            fs: Some(true),
            detach: true,
            execution_mode: ExecutionMode::Login,
            ..ServerFeatures::default()
        };
        let labels = server_labels(&features);
        assert_eq!(labels["rstream.webtty.execution.mode"], "login");
        assert_eq!(labels["rstream.webtty.capabilities"], "exec,fs");
        assert_eq!(labels["rstream.webtty.fs.path"], "/fs");
        assert_eq!(labels["rstream.webtty.fs.mode"], "read-only");
    }

    #[test]
    fn published_tunnels_are_token_protected_http_and_private_ones_raw() {
        let t = server_tunnel("pi", true, BTreeMap::new());
        assert!(t.is_published());
        assert_eq!(t.protocol, some_str("http"));
        assert_eq!(t.token_auth, Some(true.into()));
        let t = server_tunnel("pi", false, BTreeMap::from([("a".to_string(), "b".to_string())]));
        assert!(!t.is_published());
        assert_eq!((t.protocol, t.token_auth), (None, None));
        assert_eq!(t.labels["a"], "b");
    }

    #[test]
    fn os_release_values_are_unquoted() {
        let os = parse_os_release("# c\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID='12'\n");
        assert_eq!(os["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os["ID"], "debian");
        assert_eq!(os["VERSION_ID"], "12");
    }

    #[test]
    fn user_labels_are_validated() {
        assert_eq!(parse_user_label("role=codex").unwrap(), ("role".into(), "codex".into()));
        assert_eq!(parse_user_label("empty=").unwrap(), ("empty".into(), String::new()));
        assert!(parse_user_label("novalue").unwrap_err().contains("\"novalue\""));
        assert!(parse_user_label("bad key=x").is_err());
    }
}
