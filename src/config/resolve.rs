//! Picks the context a command runs against, applying environment overrides.
//!
//! Precedence (as upstream): `--context` (exported as `RSTREAM_CONTEXT` by the CLI) > `RSTREAM_CONTEXT` > the
//! config's default context; then `RSTREAM_ENGINE` replaces the engine address and
//! `RSTREAM_AUTHENTICATION_TOKEN` the token. With no config at all, `RSTREAM_ENGINE` alone is enough.

use std::path::{Path, PathBuf};

use super::file::{config_path, ConfigError, ConfigFile};
use crate::secret::Secret;

/// The context a command uses, fully resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedContext {
    /// Context name (None when only environment variables define the engine).
    pub name: Option<String>,
    /// Engine address `host:port`.
    pub engine: String,
    /// Token (JWT), if any.
    pub token: Option<Secret>,
    /// CA file (absolute or relative to the working directory), if any.
    pub ca_file: Option<PathBuf>,
    /// TLS server name override.
    pub tls_server_name: Option<String>,
    /// Explicit opt-out of certificate verification.
    pub insecure_skip_verify: bool,
    /// Hosted control-plane URL, if the context has one.
    pub api_url: Option<String>,
    /// The config file this came from.
    pub config_path: PathBuf,
}

impl ResolvedContext {
    /// Host part of the engine address (brackets stripped for IPv6).
    pub fn engine_host(&self) -> &str {
        split_host_port(&self.engine).0
    }

    /// Port of the engine address (443 when absent).
    pub fn engine_port(&self) -> u16 {
        split_host_port(&self.engine).1
    }
}

/// Splits `host:port` (`[v6]:port`, bare host → port 443).
pub fn split_host_port(addr: &str) -> (&str, u16) {
    if let Some(rest) = addr.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(443));
        }
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().unwrap_or(443)),
        _ => (addr, 443),
    }
}

/// Resolves the context from the config at [`config_path`] and the process environment.
pub fn resolve() -> Result<ResolvedContext, ConfigError> {
    let path = config_path();
    let cfg = ConfigFile::load(&path)?;
    resolve_from(&cfg, &path, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Resolves against an already-loaded config and an environment lookup (pure; used by tests and doctor).
pub fn resolve_from(
    cfg: &ConfigFile,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvedContext, ConfigError> {
    let wanted = env("RSTREAM_CONTEXT").or_else(|| cfg.default_context_name().map(str::to_owned));
    let entry = match &wanted {
        Some(name) => Some(cfg.context(name).ok_or_else(|| {
            let known: Vec<_> = cfg.contexts.iter().map(|c| c.name.as_str()).collect();
            ConfigError::Context(format!(
                "context {name:?} not found in {} (known: {})",
                path.display(),
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ))
        })?),
        None => None,
    };
    let engine = env("RSTREAM_ENGINE").or_else(|| entry.and_then(|e| e.engine.clone())).ok_or_else(|| {
        ConfigError::Context(match &wanted {
            Some(name) => format!("context {name:?} has no engine address; set one with `rstream context create`"),
            None => format!(
                "no context selected in {}: run `rstream engine serve` (writes a local context), \
                 `rstream context create NAME --engine HOST:PORT --token-file F --default`, or set RSTREAM_ENGINE",
                path.display()
            ),
        })
    })?;
    let token = match env("RSTREAM_AUTHENTICATION_TOKEN") {
        Some(t) => Some(Secret::from(t)),
        None => entry.map(|e| e.inline_token()).transpose()?.flatten().cloned(),
    };
    let tls = entry.and_then(|e| e.tls());
    let ca_file = tls.and_then(|t| t.ca_file.as_deref()).map(|ca| relative_to_config(path, ca));
    Ok(ResolvedContext {
        name: entry.map(|e| e.name.clone()),
        engine,
        token,
        ca_file,
        tls_server_name: tls.and_then(|t| t.server_name.clone()),
        insecure_skip_verify: tls.is_some_and(|t| t.insecure_skip_verify),
        api_url: entry.and_then(|e| e.api_url.clone()),
        config_path: path.to_owned(),
    })
}

/// `file` as the config at `config` names it: relative paths are relative to the config file's directory.
pub fn relative_to_config(config: &Path, file: &str) -> PathBuf {
    let file = Path::new(file);
    match config.parent() {
        Some(dir) if file.is_relative() => dir.join(file),
        _ => file.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ContextEntry;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn two_contexts() -> ConfigFile {
        let mut cfg = ConfigFile::empty();
        cfg.upsert_context(ContextEntry::engine_only("a", "a.example:443", Some("ta"), Some(Path::new("ca.pem"))));
        cfg.upsert_context(ContextEntry::engine_only("b", "b.example:8443", Some("tb"), None));
        cfg.set_default("a");
        cfg
    }

    #[test]
    fn default_context_is_used_and_relative_ca_follows_the_config() {
        let r = resolve_from(&two_contexts(), Path::new("/home/u/.rstream/config.yaml"), &env_of(&[])).unwrap();
        assert_eq!(r.name.as_deref(), Some("a"));
        assert_eq!((r.engine.as_str(), r.token.as_ref().map(Secret::expose)), ("a.example:443", Some("ta")));
        assert_eq!(r.ca_file, Some(PathBuf::from("/home/u/.rstream/ca.pem")));
    }

    #[test]
    fn environment_overrides_context_engine_and_token() {
        let env = env_of(&[("RSTREAM_CONTEXT", "b"), ("RSTREAM_AUTHENTICATION_TOKEN", "envtok")]);
        let r = resolve_from(&two_contexts(), Path::new("/c.yaml"), &env).unwrap();
        assert_eq!(
            (r.name.as_deref(), r.engine.as_str(), r.token.as_ref().map(Secret::expose)),
            (Some("b"), "b.example:8443", Some("envtok"))
        );
        let env = env_of(&[("RSTREAM_ENGINE", "10.0.0.1:9000")]);
        let r = resolve_from(&two_contexts(), Path::new("/c.yaml"), &env).unwrap();
        assert_eq!((r.engine.as_str(), r.engine_host(), r.engine_port()), ("10.0.0.1:9000", "10.0.0.1", 9000));
    }

    #[test]
    fn engine_from_environment_alone_is_enough() {
        let env = env_of(&[("RSTREAM_ENGINE", "relay:443"), ("RSTREAM_AUTHENTICATION_TOKEN", "t")]);
        let r = resolve_from(&ConfigFile::empty(), Path::new("/c.yaml"), &env).unwrap();
        assert_eq!((r.name, r.engine.as_str()), (None, "relay:443"));
    }

    #[test]
    fn unknown_or_missing_context_is_a_helpful_error() {
        let err = resolve_from(&two_contexts(), Path::new("/c.yaml"), &env_of(&[("RSTREAM_CONTEXT", "zz")]));
        let msg = err.unwrap_err().to_string();
        assert!(msg.contains("\"zz\" not found") && msg.contains("known: a, b"), "{msg}");
        let msg = resolve_from(&ConfigFile::empty(), Path::new("/c.yaml"), &env_of(&[])).unwrap_err().to_string();
        assert!(msg.contains("no context selected") && msg.contains("engine serve"), "{msg}");
    }

    #[test]
    fn debug_of_a_resolved_context_masks_the_token() {
        let env = env_of(&[("RSTREAM_AUTHENTICATION_TOKEN", "eyJ-env-token")]);
        for env in [&env_of(&[]) as &dyn Fn(&str) -> Option<String>, &env] {
            let r = resolve_from(&two_contexts(), Path::new("/c.yaml"), env).unwrap();
            let text = format!("{r:?}");
            assert!(text.contains("token: Some(Secret(<redacted"), "{text}");
            assert!(!text.contains("\"ta\"") && !text.contains("eyJ-env-token"), "{text}");
        }
    }

    #[test]
    fn host_port_splitting() {
        assert_eq!(split_host_port("localhost:8443"), ("localhost", 8443));
        assert_eq!(split_host_port("relay.example.com"), ("relay.example.com", 443));
        assert_eq!(split_host_port("[::1]:9000"), ("::1", 9000));
        assert_eq!(split_host_port("::1"), ("::1", 443));
    }
}
