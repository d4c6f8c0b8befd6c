//! The config file: serde model of rstream's YAML, load, and atomic locked save.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::{create_parent, write_atomic};
use crate::secret::Secret;
use serde_yaml_ng::Value;

/// Keys we do not model, kept verbatim so upstream-written files round-trip.
type Extra = BTreeMap<String, Value>;

/// Why the config could not be read, resolved or written.
#[derive(Debug)]
pub enum ConfigError {
    /// The file exists but is not valid config YAML (message carries path, line and column).
    Invalid { path: PathBuf, message: String },
    /// Reading or writing failed.
    Io { path: PathBuf, error: io::Error },
    /// No usable context: nothing selected, unknown name, missing engine or token storage we cannot read.
    Context(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid { path, message } => write!(f, "invalid config YAML in {}: {message}", path.display()),
            ConfigError::Io { path, error } => write!(f, "config {}: {error}", path.display()),
            ConfigError::Context(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The whole config file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    /// Format version (1).
    #[serde(default = "one")]
    pub version: u32,
    /// Defaults, notably the default context.
    #[serde(default, skip_serializing_if = "Defaults::is_empty")]
    pub defaults: Defaults,
    /// Per control-plane API URL settings (hosted rstream); kept verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<Value>,
    /// Named contexts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contexts: Vec<ContextEntry>,
    /// Unmodelled keys.
    #[serde(flatten)]
    pub extra: Extra,
}

fn one() -> u32 {
    1
}

/// `defaults:` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    /// `defaults.context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<DefaultContext>,
    /// Unmodelled keys.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Defaults {
    fn is_empty(&self) -> bool {
        self.context.is_none() && self.extra.is_empty()
    }
}

/// `defaults.context:` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultContext {
    /// Name of the default context.
    #[serde(default)]
    pub name: String,
    /// Unmodelled keys (e.g. `apiUrl`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// One context.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextEntry {
    /// Context name.
    pub name: String,
    /// Hosted control-plane URL; absent for engine-only (self-hosted) contexts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Engine address `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Hosted project endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_endpoint: Option<String>,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Transport settings (TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Unmodelled keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `auth:` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// Token credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenAuth>,
    /// Unmodelled keys (e.g. `mtls`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `auth.token:` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenAuth {
    /// Where the token lives.
    #[serde(default)]
    pub storage: TokenStorage,
    /// Unmodelled keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `auth.token.storage:` block: `kind: inline` with `value`, or upstream's `keychain` (macOS only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenStorage {
    /// `inline` or `keychain`.
    #[serde(default)]
    pub kind: String,
    /// The token, for `inline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Secret>,
    /// Unmodelled keys (provider, service, account).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `transport:` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transport {
    /// Engine TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TransportTls>,
    /// Unmodelled keys (proxy, dns, bind, mode).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `transport.tls:` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportTls {
    /// CA certificate (PEM) that signs the engine's certificate; relative paths are relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// TLS server name when it differs from the engine host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Skip certificate verification (explicit opt-in; warned about on every use).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// Unmodelled keys.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ContextEntry {
    /// An engine-only (self-hosted) context with an inline token and optional CA file.
    pub fn engine_only(name: &str, engine: &str, token: Option<&str>, ca_file: Option<&Path>) -> Self {
        ContextEntry {
            name: name.to_owned(),
            engine: Some(engine.to_owned()),
            auth: token.map(|t| Auth {
                token: Some(TokenAuth {
                    storage: TokenStorage { kind: "inline".into(), value: Some(t.into()), ..Default::default() },
                    ..Default::default()
                }),
                ..Default::default()
            }),
            transport: ca_file.map(|ca| Transport {
                tls: Some(TransportTls { ca_file: Some(ca.display().to_string()), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The inline token, if stored inline. Other storage kinds are an error here (not supported off macOS).
    pub fn inline_token(&self) -> Result<Option<&Secret>, ConfigError> {
        let Some(storage) = self.auth.as_ref().and_then(|a| a.token.as_ref()).map(|t| &t.storage) else {
            return Ok(None);
        };
        match storage.kind.as_str() {
            "inline" | "" => Ok(storage.value.as_ref().filter(|v| !v.is_empty())),
            other => Err(ConfigError::Context(format!(
                "context {:?} stores its token in {other:?}, which this build cannot read; \
                 recreate it with `rstream context create {} --token-file FILE`",
                self.name, self.name
            ))),
        }
    }

    /// The engine TLS settings, if any.
    pub fn tls(&self) -> Option<&TransportTls> {
        self.transport.as_ref().and_then(|t| t.tls.as_ref())
    }
}

impl ConfigFile {
    /// Loads `path`. A missing or empty file is an empty config; invalid YAML is an error naming the path and
    /// position.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ConfigFile::empty()),
            Err(error) => return Err(ConfigError::Io { path: path.to_owned(), error }),
        };
        if text.trim().is_empty() {
            return Ok(ConfigFile::empty());
        }
        serde_yaml_ng::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.to_owned(), message: e.to_string() })
    }

    /// An empty version-1 config.
    pub fn empty() -> ConfigFile {
        ConfigFile { version: 1, ..Default::default() }
    }

    /// Writes the config atomically (temp file + rename) with mode 0600, creating the parent directory 0700.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io_err = |error| ConfigError::Io { path: path.to_owned(), error };
        let text = serde_yaml_ng::to_string(self).map_err(|e| io_err(io::Error::other(e)))?;
        write_atomic(path, text.as_bytes(), 0o600).map_err(io_err)
    }

    /// Name of the default context, if set.
    pub fn default_context_name(&self) -> Option<&str> {
        self.defaults.context.as_ref().map(|c| c.name.as_str()).filter(|n| !n.is_empty())
    }

    /// Makes `name` the default context.
    pub fn set_default(&mut self, name: &str) {
        let ctx = self.defaults.context.get_or_insert_with(DefaultContext::default);
        ctx.name = name.to_owned();
    }

    /// Looks up a context by name.
    pub fn context(&self, name: &str) -> Option<&ContextEntry> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// Inserts `entry`, replacing the context of the same name (keeping its position and unmodelled keys).
    pub fn upsert_context(&mut self, entry: ContextEntry) {
        match self.contexts.iter_mut().find(|c| c.name == entry.name) {
            Some(existing) => {
                let extra = std::mem::take(&mut existing.extra);
                *existing = entry;
                existing.extra.extend(extra);
            }
            None => self.contexts.push(entry),
        }
    }

    /// Removes a context; returns whether it existed. Clears the default if it pointed there.
    pub fn remove_context(&mut self, name: &str) -> bool {
        let before = self.contexts.len();
        self.contexts.retain(|c| c.name != name);
        if self.default_context_name() == Some(name) {
            self.defaults.context = None;
        }
        before != self.contexts.len()
    }
}

/// The config path: `$RSTREAM_CONFIG`, else `~/.rstream/config.yaml`.
pub fn config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RSTREAM_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).unwrap_or_else(|| "/".into());
    Path::new(&home).join(".rstream").join("config.yaml")
}

/// Loads the config at `path`, lets `change` modify it, and saves it atomically — all under an exclusive lock
/// on `<path>.lock` so concurrent writers (engine, CLI) do not lose each other's edits. An invalid file is
/// reported and left untouched.
pub fn update<T>(path: &Path, change: impl FnOnce(&mut ConfigFile) -> T) -> Result<T, ConfigError> {
    let io_err = |error| ConfigError::Io { path: path.to_owned(), error };
    create_parent(path).map_err(io_err)?;
    let lock_path = path.with_extension("yaml.lock");
    let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path);
    let lock = lock.map_err(io_err)?;
    lock.lock().map_err(io_err)?;
    let mut cfg = ConfigFile::load(path)?;
    let out = change(&mut cfg);
    cfg.save(path)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rstream-config-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const UPSTREAM: &str = "\
version: 1
defaults:
  context:
    name: lab
environments:
- apiUrl: https://rstream.io
contexts:
- name: lab
  engine: relay.example.com:443
  auth:
    token:
      storage:
        kind: inline
        value: tok123
    mtls:
      certificateFile: /etc/c.pem
  transport:
    tls:
      caFile: ca.pem
    proxy:
      http: http://proxy:3128
  turnDomain: turn.example.com
";

    #[test]
    fn upstream_file_round_trips_including_unmodelled_keys() {
        let cfg: ConfigFile = serde_yaml_ng::from_str(UPSTREAM).unwrap();
        assert_eq!(cfg.default_context_name(), Some("lab"));
        let lab = cfg.context("lab").unwrap();
        assert_eq!(lab.engine.as_deref(), Some("relay.example.com:443"));
        assert_eq!(lab.inline_token().unwrap().map(Secret::expose), Some("tok123"));
        assert_eq!(lab.tls().unwrap().ca_file.as_deref(), Some("ca.pem"));
        let again: ConfigFile = serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(again, cfg);
        let text = serde_yaml_ng::to_string(&cfg).unwrap();
        for kept in ["certificateFile", "proxy", "turnDomain", "apiUrl: https://rstream.io"] {
            assert!(text.contains(kept), "{kept} lost:\n{text}");
        }
    }

    #[test]
    fn missing_and_empty_files_are_empty_configs() {
        let dir = temp_dir("empty");
        assert_eq!(ConfigFile::load(&dir.join("nope.yaml")).unwrap(), ConfigFile::empty());
        fs::write(dir.join("blank.yaml"), "\n  \n").unwrap();
        assert_eq!(ConfigFile::load(&dir.join("blank.yaml")).unwrap(), ConfigFile::empty());
    }

    #[test]
    fn invalid_yaml_names_path_and_line_and_is_never_overwritten() {
        let dir = temp_dir("invalid");
        let path = dir.join("config.yaml");
        let broken = "version: 1\ncontexts:\n- name: a\n  engine: [unclosed\n";
        fs::write(&path, broken).unwrap();
        let err = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("line"), "{err}");
        let upd = update(&path, |c| c.set_default("x"));
        assert!(matches!(upd, Err(ConfigError::Invalid { .. })));
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    }

    #[test]
    fn update_writes_atomically_with_private_modes() {
        let dir = temp_dir("update");
        let path = dir.join("sub").join("config.yaml");
        update(&path, |c| {
            c.upsert_context(ContextEntry::engine_only(
                "local",
                "localhost:8443",
                Some("t"),
                Some(Path::new("/ca.pem")),
            ));
            c.set_default("local");
        })
        .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let cfg = ConfigFile::load(&path).unwrap();
        assert_eq!(cfg.default_context_name(), Some("local"));
        assert_eq!(cfg.context("local").unwrap().inline_token().unwrap().map(Secret::expose), Some("t"));
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn upsert_replaces_by_name_and_remove_clears_default() {
        let mut cfg = ConfigFile::empty();
        cfg.upsert_context(ContextEntry::engine_only("a", "h:1", None, None));
        cfg.upsert_context(ContextEntry::engine_only("b", "h:2", None, None));
        cfg.upsert_context(ContextEntry::engine_only("a", "h:3", None, None));
        assert_eq!(cfg.contexts.len(), 2);
        assert_eq!(cfg.contexts[0].engine.as_deref(), Some("h:3"));
        cfg.set_default("a");
        assert!(cfg.remove_context("a"));
        assert_eq!(cfg.default_context_name(), None);
        assert!(!cfg.remove_context("a"));
    }

    #[test]
    fn debug_of_the_config_masks_inline_tokens() {
        let mut cfg: ConfigFile = serde_yaml_ng::from_str(UPSTREAM).unwrap();
        cfg.upsert_context(ContextEntry::engine_only("b", "h:1", Some("eyJ-second-token"), None));
        let text = format!("{cfg:?}");
        assert!(!text.contains("tok123") && !text.contains("eyJ-second-token"), "{text}");
        assert!(text.contains("<redacted, 6 bytes>"), "{text}");
    }

    #[test]
    fn keychain_storage_is_a_clear_error() {
        let mut entry = ContextEntry::engine_only("mac", "h:1", Some("x"), None);
        entry.auth.as_mut().unwrap().token.as_mut().unwrap().storage.kind = "keychain".into();
        let err = entry.inline_token().unwrap_err().to_string();
        assert!(err.contains("keychain") && err.contains("context create mac"), "{err}");
    }
}
