//! What the tools run against: the operator's config file and the `RSTREAM_*` environment, captured once when
//! the server starts (so tools never read or mutate the process environment from worker threads).
//!
//! The config file itself is re-read on every call: `rstream engine serve` or `rstream context use` may change
//! it while an agent session is open.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::args::ToolError;
use crate::config::{self, resolve::resolve_from, ConfigError, ConfigFile, ResolvedContext};
use crate::operator::api::EngineApi;

/// Environment variables the tools honour (as the CLI does).
pub const RSTREAM_VARS: [&str; 5] = [
    "RSTREAM_CONTEXT",
    "RSTREAM_ENGINE",
    "RSTREAM_AUTHENTICATION_TOKEN",
    "RSTREAM_API_URL",
    "RSTREAM_WEBTTY_AUTH_TOKEN",
];

/// The operator's config path and `RSTREAM_*` variables (`Debug` names the variables, never their values).
#[derive(Clone, Default)]
pub struct OperatorEnv {
    /// The config file (`$RSTREAM_CONFIG` or `~/.rstream/config.yaml`).
    pub config_path: PathBuf,
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for OperatorEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorEnv")
            .field("config_path", &self.config_path)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl OperatorEnv {
    /// Captures the process environment.
    pub fn from_process() -> OperatorEnv {
        let vars = RSTREAM_VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()).map(|v| ((*k).to_owned(), v)))
            .collect();
        OperatorEnv { config_path: config::config_path(), vars }
    }

    /// An explicit environment (tests).
    pub fn new(config_path: PathBuf, vars: &[(&str, &str)]) -> OperatorEnv {
        OperatorEnv { config_path, vars: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() }
    }

    /// One captured variable.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Loads the config file (missing = empty).
    pub fn load_config(&self) -> Result<ConfigFile, ConfigError> {
        ConfigFile::load(&self.config_path)
    }

    /// Resolves the context `name`, or the selected one (`RSTREAM_CONTEXT`, then the default), applying the
    /// engine and token overrides.
    pub fn resolve(&self, name: Option<&str>) -> Result<ResolvedContext, ConfigError> {
        let cfg = self.load_config()?;
        self.resolve_in(&cfg, name)
    }

    /// [`Self::resolve`] against an already-loaded config.
    pub fn resolve_in(&self, cfg: &ConfigFile, name: Option<&str>) -> Result<ResolvedContext, ConfigError> {
        let lookup = |k: &str| match (k, name) {
            ("RSTREAM_CONTEXT", Some(n)) => Some(n.to_owned()),
            _ => self.var(k).map(str::to_owned),
        };
        resolve_from(cfg, &self.config_path, &lookup)
    }

    /// The engine API of the selected context (the error points the agent at `rstream_runtime_status`).
    pub fn engine_api(&self) -> Result<EngineApi, ToolError> {
        let ctx = self.resolve(None).map_err(|e| ToolError(format!("{e} (see rstream_runtime_status)")))?;
        EngineApi::from_context(&ctx).map_err(|e| ToolError(e.to_string()))
    }

    /// Every token a result must never contain: each context's inline token, the engine token override and the
    /// local WebTTY bearer token.
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = ["RSTREAM_AUTHENTICATION_TOKEN", "RSTREAM_WEBTTY_AUTH_TOKEN"]
            .iter()
            .filter_map(|k| self.var(k).map(str::to_owned))
            .collect();
        if let Ok(cfg) = self.load_config() {
            out.extend(
                cfg.contexts.iter().filter_map(|c| c.inline_token().ok().flatten().map(|t| t.expose().to_owned())),
            );
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ContextEntry;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rstream-mcp-env-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("config.yaml")
    }

    #[test]
    fn explicit_name_wins_over_the_environment_and_secrets_cover_every_context() {
        let path = scratch("resolve");
        let mut cfg = ConfigFile::empty();
        cfg.upsert_context(ContextEntry::engine_only("a", "a:1", Some("tok-a"), None));
        cfg.upsert_context(ContextEntry::engine_only("b", "b:2", Some("tok-b"), None));
        cfg.set_default("a");
        cfg.save(&path).unwrap();
        let env = OperatorEnv::new(path, &[("RSTREAM_CONTEXT", "b"), ("RSTREAM_AUTHENTICATION_TOKEN", "tok-env")]);
        assert_eq!(env.resolve(None).unwrap().engine, "b:2");
        let a = env.resolve(Some("a")).unwrap();
        assert_eq!((a.engine.as_str(), a.token.as_ref().map(|t| t.expose())), ("a:1", Some("tok-env")));
        let mut secrets = env.secrets();
        secrets.sort();
        assert_eq!(secrets, ["tok-a", "tok-b", "tok-env"]);
        assert!(!format!("{env:?}").contains("tok-env"), "{env:?}");
    }
}
