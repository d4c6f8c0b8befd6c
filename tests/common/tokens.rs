//! Engine credentials in tests: `rstream engine token` with any flags (subjects, `-o json`, `revoke`), the
//! token of the `local` context the engine wrote, and what `/api/auth` says a token is.

use super::{run, Engine};

/// The permission that may evict any subject's tunnel through the REST API.
pub const ADMIN: &str = "tunnels.tunnels.admin";
/// The environment variable that overrides the context's token.
pub const TOKEN_ENV: &str = "RSTREAM_AUTHENTICATION_TOKEN";

/// A token minted with `-o json`: the token and its id.
#[derive(Clone, Debug)]
pub struct Minted {
    /// The JWT.
    pub token: String,
    /// Its `jti`, for `engine token revoke`.
    pub jti: String,
    /// The whole JSON object printed.
    pub json: serde_json::Value,
}

impl Engine {
    /// Runs `rstream engine token <args…> --state-dir <state>`; returns (exit code, stdout, stderr).
    pub fn token_cmd(&self, args: &[&str]) -> (i32, String, String) {
        let state = self.state_dir();
        let mut all = vec!["engine", "token"];
        all.extend_from_slice(args);
        all.extend(["--state-dir", state.to_str().unwrap()]);
        run(&all, &[])
    }

    /// Mints a token for subject `sub` with `permissions`.
    pub fn token_for(&self, sub: &str, permissions: &[&str]) -> String {
        let perms = permissions.join(",");
        let (code, out, err) = self.token_cmd(&["--permissions", &perms, "--sub", sub, "--ttl", "1d"]);
        assert_eq!(code, 0, "engine token --sub {sub} failed: {err}");
        out.trim().to_owned()
    }

    /// Mints a token with `permissions` (and `--ttl 1d`) as `-o json`.
    pub fn token_json(&self, permissions: &[&str]) -> Minted {
        let perms = permissions.join(",");
        let (code, out, err) = self.token_cmd(&["--permissions", &perms, "--ttl", "1d", "-o", "json"]);
        assert_eq!(code, 0, "engine token -o json failed: {err}");
        let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        let field = |k: &str| json[k].as_str().unwrap_or_else(|| panic!("no {k:?} in {json}")).to_owned();
        Minted { token: field("token"), jti: field("jti"), json: json.clone() }
    }

    /// The inline token of the `local` context the engine wrote into its config file.
    pub fn context_token(&self) -> String {
        let cfg = rstream::config::ConfigFile::load(&self.config_path()).expect("config written");
        let ctx = cfg.context("local").expect("context local");
        ctx.inline_token().expect("inline token").expect("a token").expose().to_owned()
    }

    /// `GET /api/auth` with `token`: the JSON claims (panics unless 200).
    pub fn claims(&self, token: &str) -> serde_json::Value {
        let reply = self.api("/api/auth", Some(token));
        assert_eq!(reply.status, 200, "GET /api/auth: {reply:?}");
        reply.json()
    }
}
