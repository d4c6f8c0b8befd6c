//! The local tunnel registry: which `rstream forward` processes the MCP server started, in a JSON file next to
//! the config (`mcp-local-tunnels.json`), so a later session can list and stop them.
//!
//! Every change is load + modify + atomic write (temp file + rename, mode 0600) under an exclusive lock on
//! `<file>.lock`, so two MCP servers sharing a config do not lose each other's entries. A file larger than
//! [`MCP_REGISTRY_MAX_LEN`] or not valid JSON is an error naming the file, never silently replaced.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::write_atomic;
use crate::limits::MCP_REGISTRY_MAX_LEN;

/// File name of the registry, in the config's directory.
pub const REGISTRY_FILE: &str = "mcp-local-tunnels.json";
/// Directory (next to the config) holding one log file per started `forward`.
pub const LOG_DIR: &str = "mcp-local-tunnels";

/// One local tunnel the MCP server started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalTunnel {
    /// Local id (`lt-` + 8 hex digits), what `rstream_local_tunnel_stop` takes.
    pub id: String,
    /// Tunnel name.
    pub name: String,
    /// Engine tunnel id.
    pub tunnel_id: String,
    /// Where the service is reachable (`https://…`, `host:port` for TLS/TCP, `rstrm://name` when private).
    pub url: String,
    /// `forward`'s own forwarding string.
    pub forwarding: String,
    /// The local target as `forward` describes it.
    pub forwarded: String,
    /// Process id of the `forward` (leader of its own process group).
    pub pid: u32,
    /// `http`, `tls`, `tcp` or `bytestream`.
    pub protocol: String,
    /// Published on the engine's public host.
    pub publish: bool,
    /// Local host.
    pub host: String,
    /// Local port.
    pub port: u16,
    /// Labels given to the tunnel (`key=value`).
    pub labels: Vec<String>,
    /// `forward`'s stdout and stderr.
    pub log_path: String,
    /// Start time, seconds since the Unix epoch.
    pub started_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    version: u32,
    tunnels: Vec<LocalTunnel>,
}

/// The registry file of one config.
#[derive(Clone, Debug)]
pub struct Registry {
    path: PathBuf,
}

impl Registry {
    /// The registry next to `config_path`.
    pub fn next_to(config_path: &Path) -> Registry {
        Registry { path: config_dir(config_path).join(REGISTRY_FILE) }
    }

    /// The registry file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All entries.
    pub fn load(&self) -> io::Result<Vec<LocalTunnel>> {
        Ok(self.read()?.tunnels)
    }

    /// Loads, lets `change` modify the entries, and writes them back atomically, under the registry lock.
    pub fn update<T>(&self, change: impl FnOnce(&mut Vec<LocalTunnel>) -> T) -> io::Result<T> {
        if let Some(dir) = self.path.parent() {
            fs::DirBuilder::new().recursive(true).create(dir)?;
        }
        let lock_path = self.path.with_extension("json.lock");
        let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path)?;
        lock.lock()?;
        let mut file = self.read()?;
        let out = change(&mut file.tunnels);
        file.version = 1;
        let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        write_atomic(&self.path, &bytes, 0o600)?;
        Ok(out)
    }

    fn read(&self) -> io::Result<RegistryFile> {
        let file = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RegistryFile::default()),
            Err(e) => return Err(self.error(e)),
        };
        let mut text = String::new();
        file.take(MCP_REGISTRY_MAX_LEN + 1).read_to_string(&mut text).map_err(|e| self.error(e))?;
        if text.len() as u64 > MCP_REGISTRY_MAX_LEN {
            return Err(self.error(format!("larger than {MCP_REGISTRY_MAX_LEN} bytes")));
        }
        if text.trim().is_empty() {
            return Ok(RegistryFile::default());
        }
        serde_json::from_str(&text).map_err(|e| self.error(format!("invalid JSON: {e}")))
    }

    fn error(&self, e: impl std::fmt::Display) -> io::Error {
        io::Error::other(format!("local tunnel registry {}: {e}", self.path.display()))
    }
}

/// Directory of the config file (`.` for a bare file name).
pub fn config_dir(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Whether `entry` is the one `key` names: local id, engine tunnel id, or tunnel name.
pub fn matches(entry: &LocalTunnel, key: &str) -> bool {
    entry.id == key || (!entry.tunnel_id.is_empty() && entry.tunnel_id == key) || entry.name == key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn registry(tag: &str) -> Registry {
        let dir = std::env::temp_dir().join(format!("rstream-mcp-reg-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Registry::next_to(&dir.join("config.yaml"))
    }

    fn entry(id: &str, name: &str) -> LocalTunnel {
        LocalTunnel { id: id.into(), name: name.into(), tunnel_id: format!("t-{id}"), ..Default::default() }
    }

    #[test]
    fn entries_round_trip_through_an_0600_file_next_to_the_config() {
        let reg = registry("roundtrip");
        assert_eq!(reg.load().unwrap(), vec![]);
        reg.update(|t| t.push(entry("lt-1", "web"))).unwrap();
        reg.update(|t| t.push(entry("lt-2", "api"))).unwrap();
        let all = reg.load().unwrap();
        assert_eq!(all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["lt-1", "lt-2"]);
        let mode = fs::metadata(reg.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(reg.path().ends_with(REGISTRY_FILE));
        reg.update(|t| t.retain(|e| !matches(e, "t-lt-1"))).unwrap();
        assert_eq!(reg.load().unwrap(), vec![entry("lt-2", "api")]);
        assert!(matches(&entry("lt-2", "api"), "api") && !matches(&entry("lt-2", "api"), "web"));
    }

    #[test]
    fn a_corrupt_registry_is_reported_and_left_alone() {
        let reg = registry("corrupt");
        fs::create_dir_all(reg.path().parent().unwrap()).unwrap();
        fs::write(reg.path(), "{not json").unwrap();
        let err = reg.update(|t| t.clear()).unwrap_err().to_string();
        assert!(err.contains("invalid JSON") && err.contains(REGISTRY_FILE), "{err}");
        assert_eq!(fs::read_to_string(reg.path()).unwrap(), "{not json");
    }
}
