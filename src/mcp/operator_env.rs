//! What the tools run against: the operator's config file and the `RSTREAM_*` environment, captured once when
//! the server starts (so tools never read or mutate the process environment from worker threads).
//!
//! The config file itself is re-read on every call: `rstream engine serve` or `rstream context use` may change
//! it while an agent session is open. So are the secrets results are scrubbed of ([`OperatorEnv::secrets`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::args::ToolError;
use super::known_secrets::engine_state_secrets;
use super::scrub::Scrubber;
use crate::config::resolve::{relative_to_config, resolve_from};
use crate::config::{self, ConfigError, ConfigFile, ResolvedContext};
use crate::operator::api::EngineApi;
use crate::secret::Secret;
use crate::state_layout;

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
    /// The default engine state directory (`$XDG_STATE_HOME` or `$HOME` based), whose secrets are scrubbed too.
    engine_state_dir: Option<PathBuf>,
}

impl std::fmt::Debug for OperatorEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorEnv")
            .field("config_path", &self.config_path)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("engine_state_dir", &self.engine_state_dir)
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
        let engine_state_dir = state_layout::default_dir_from_env();
        OperatorEnv { config_path: config::config_path(), vars, engine_state_dir }
    }

    /// An explicit environment (tests).
    pub fn new(config_path: PathBuf, vars: &[(&str, &str)]) -> OperatorEnv {
        let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        OperatorEnv { config_path, vars, engine_state_dir: None }
    }

    /// The same environment with `dir` as the default engine state directory (tests).
    pub fn with_engine_state_dir(mut self, dir: PathBuf) -> OperatorEnv {
        self.engine_state_dir = Some(dir);
        self
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

    /// The local WebTTY bearer token (`RSTREAM_WEBTTY_AUTH_TOKEN`), if set.
    pub fn webtty_token(&self) -> Option<Secret> {
        self.var("RSTREAM_WEBTTY_AUTH_TOKEN").map(Secret::from)
    }

    /// Every secret a result must never contain: each context's inline token, the engine token override, the
    /// local WebTTY bearer token, and the HS256 secret and private keys of the engine state directories this
    /// user can read (the default one, and the directory of each context's CA file: `engine serve` points its
    /// context at `<state>/ca.pem`).
    pub fn secrets(&self) -> Scrubber {
        let mut out: Vec<Vec<u8>> = ["RSTREAM_AUTHENTICATION_TOKEN", "RSTREAM_WEBTTY_AUTH_TOKEN"]
            .iter()
            .filter_map(|k| self.var(k).map(|v| v.as_bytes().to_vec()))
            .collect();
        let mut state_dirs: Vec<PathBuf> = self.engine_state_dir.iter().cloned().collect();
        if let Ok(cfg) = self.load_config() {
            for context in &cfg.contexts {
                if let Ok(Some(token)) = context.inline_token() {
                    out.push(token.expose().as_bytes().to_vec());
                }
                let ca = context
                    .tls()
                    .and_then(|t| t.ca_file.as_deref())
                    .map(|ca| relative_to_config(&self.config_path, ca));
                state_dirs.extend(ca.and_then(|ca| ca.parent().map(PathBuf::from)));
            }
        }
        state_dirs.sort();
        state_dirs.dedup();
        out.extend(state_dirs.iter().flat_map(|dir| engine_state_secrets(dir)));
        Scrubber::new(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ContextEntry;
    use std::path::Path;

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
        cfg.upsert_context(ContextEntry::engine_only("a", "a:1", Some("tok-a-long"), None));
        cfg.upsert_context(ContextEntry::engine_only("b", "b:2", Some("tok-b-long"), None));
        cfg.set_default("a");
        cfg.save(&path).unwrap();
        let env = OperatorEnv::new(path, &[("RSTREAM_CONTEXT", "b"), ("RSTREAM_AUTHENTICATION_TOKEN", "tok-env-long")]);
        assert_eq!(env.resolve(None).unwrap().engine, "b:2");
        let a = env.resolve(Some("a")).unwrap();
        assert_eq!((a.engine.as_str(), a.token.as_ref().map(Secret::expose)), ("a:1", Some("tok-env-long")));
        let secrets = env.secrets();
        assert_eq!(secrets.scrub("tok-a-long tok-b-long tok-env-long"), "[redacted] [redacted] [redacted]");
        assert!(!format!("{env:?}").contains("tok-env"), "{env:?}");
    }

    #[test]
    fn engine_state_secrets_are_known_from_the_default_dir_and_next_to_context_ca_files() {
        let path = scratch("engine-state");
        let dir = path.parent().unwrap().to_owned();
        for (state, secret) in [("default-state", "default-hs256-secret"), ("ctx-state", "context-hs256-secret")] {
            std::fs::create_dir_all(dir.join(state)).unwrap();
            std::fs::write(dir.join(state).join(state_layout::JWT_SECRET), format!("{secret}\n")).unwrap();
        }
        let mut cfg = ConfigFile::empty();
        cfg.upsert_context(ContextEntry::engine_only("local", "l:1", None, Some(Path::new("ctx-state/ca.pem"))));
        cfg.save(&path).unwrap();
        let env = OperatorEnv::new(path, &[]).with_engine_state_dir(dir.join("default-state"));
        let text = "default-hs256-secret context-hs256-secret";
        assert_eq!(env.secrets().scrub(text), "[redacted] [redacted]");
    }
}
