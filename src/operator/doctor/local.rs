//! Checks that need no network: config file, context selection, token claims, hosted-only checks.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Check;
use crate::config::{resolve::resolve_from, ConfigFile, ResolvedContext};
use crate::encoding::Base64;
use crate::secret::Secret;

/// `config`: the file loads (a missing file is an empty config).
pub fn check_config(path: &Path, checks: &mut Vec<Check>) -> Option<ConfigFile> {
    match ConfigFile::load(path) {
        Ok(cfg) => {
            let note = if path.exists() { "configuration loaded" } else { "no config file yet (empty configuration)" };
            checks.push(Check::pass("config", note).detail("path", path.display()));
            Some(cfg)
        }
        Err(e) => {
            let hint = match e {
                crate::config::ConfigError::Invalid { .. } => {
                    "fix the YAML at the reported line, or move the file away and recreate contexts"
                }
                _ => "check the path and permissions of the config file (RSTREAM_CONFIG / --config)",
            };
            checks.push(Check::fail("config", e.to_string(), hint).detail("path", path.display()));
            None
        }
    }
}

/// `context`: which context (and environment overrides) the CLI will use.
pub fn check_context(cfg: &ConfigFile, path: &Path, checks: &mut Vec<Check>) -> Option<ResolvedContext> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match resolve_from(cfg, path, &env) {
        Ok(ctx) => {
            let mut c = Check::pass("context", "context selected").detail("engine", &ctx.engine);
            if let Some(name) = &ctx.name {
                c = c.detail("name", name);
            }
            if env("RSTREAM_ENGINE").is_some() || env("RSTREAM_AUTHENTICATION_TOKEN").is_some() {
                c = c.detail("overrides", "environment (RSTREAM_ENGINE / RSTREAM_AUTHENTICATION_TOKEN)");
            }
            checks.push(c);
            Some(ctx)
        }
        Err(_) if cfg.contexts.is_empty() && cfg.default_context_name().is_none() => {
            let hint = "run `rstream engine serve` (writes a local context) or `rstream context create NAME --engine \
                        HOST:PORT --token-file F --engine-tls-ca-file CA --default`";
            checks.push(Check::warn("context", "no context selected", hint));
            None
        }
        Err(e) => {
            let hint = "pick an existing context with `rstream context use NAME` or unset RSTREAM_CONTEXT";
            checks.push(Check::fail("context", e.to_string(), hint));
            None
        }
    }
}

/// Claims we read from a JWT payload.
#[derive(Debug, Default, PartialEq)]
pub struct TokenClaims {
    /// `exp`, seconds since the epoch.
    pub expires_at: Option<u64>,
    /// `permissions` (or `scp`/`scope`).
    pub permissions: Vec<String>,
}

/// Decodes a JWT's payload without verifying it (the engine verifies; we only explain).
pub fn decode_claims(token: &str) -> Option<TokenClaims> {
    let payload = token.split('.').nth(1)?;
    let json: serde_json::Value = serde_json::from_slice(&Base64::UrlSafeNoPad.decode(payload).ok()?).ok()?;
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(a) => a.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect(),
            serde_json::Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    };
    let perms = ["permissions", "scp", "scope"].iter().map(|k| list(&json[k])).find(|l| !l.is_empty());
    Some(TokenClaims { expires_at: json["exp"].as_u64(), permissions: perms.unwrap_or_default() })
}

/// `token`: present, parseable, not expired; lists its permissions.
pub fn check_token(ctx: Option<&ResolvedContext>, checks: &mut Vec<Check>) {
    let Some(ctx) = ctx else { return checks.push(Check::skip("token", "no context selected")) };
    let Some(token) = ctx.token.as_ref().map(Secret::expose).filter(|t| !t.is_empty()) else {
        let hint = "store one with `rstream context create NAME --token-file F` (mint it with `rstream engine token`) \
                    or set RSTREAM_AUTHENTICATION_TOKEN";
        return checks.push(Check::fail("token", "token is not configured", hint));
    };
    let Some(claims) = decode_claims(token) else {
        let hint = "the engine will decide; if it refuses the token, mint a new one with `rstream engine token`";
        return checks.push(
            Check::warn("token", "token is present but claims could not be parsed", hint).detail("present", true),
        );
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut c = Check::pass("token", "token is configured").detail("present", true);
    if !claims.permissions.is_empty() {
        c = c.detail("permissions", claims.permissions.join(","));
    }
    if let Some(exp) = claims.expires_at {
        let at = crate::http::date::format_rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(exp));
        c = c.detail("expiresAt", &at);
        if exp <= now {
            let hint =
                "mint a new token with `rstream engine token --ttl 30d` and store it with `rstream context create`";
            let mut fail = Check::fail("token", format!("token has expired ({at})"), hint);
            fail.details = c.details;
            return checks.push(fail);
        }
    }
    checks.push(c);
}

/// `control_plane_auth` and `project`: hosted rstream only; engine-only contexts skip them.
pub fn check_control_plane(ctx: Option<&ResolvedContext>, checks: &mut Vec<Check>) {
    match ctx.and_then(|c| c.api_url.as_deref()) {
        Some(url) => {
            let msg = format!("hosted control plane {url} is not supported by this build");
            checks.push(Check::skip("control_plane_auth", msg));
            checks.push(Check::skip("project", "hosted projects are not supported by this build"));
        }
        None => {
            checks.push(Check::skip("control_plane_auth", "context is not linked to a hosted API URL"));
            checks.push(Check::skip("project", "context is engine-only"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("e30.{}.sig", Base64::UrlSafeNoPad.encode(payload.as_bytes()))
    }

    #[test]
    fn claims_are_decoded_from_the_payload() {
        let c = decode_claims(&jwt(r#"{"exp":2000000000,"permissions":["a","b"]}"#)).unwrap();
        assert_eq!(c, TokenClaims { expires_at: Some(2_000_000_000), permissions: vec!["a".into(), "b".into()] });
        let c = decode_claims(&jwt(r#"{"scope":"x y"}"#)).unwrap();
        assert_eq!(c.permissions, ["x", "y"]);
        assert!(decode_claims("not-a-jwt").is_none());
        assert!(decode_claims("a.!!!.c").is_none());
    }

    fn ctx(token: Option<String>) -> ResolvedContext {
        ResolvedContext {
            name: Some("t".into()),
            engine: "localhost:1".into(),
            token: token.map(Into::into),
            ca_file: None,
            tls_server_name: None,
            insecure_skip_verify: false,
            api_url: None,
            config_path: "/c.yaml".into(),
        }
    }

    #[test]
    fn token_check_fails_missing_and_expired_tokens_with_hints() {
        let mut checks = Vec::new();
        check_token(Some(&ctx(None)), &mut checks);
        check_token(Some(&ctx(Some(jwt(r#"{"exp":1000,"permissions":["p"]}"#)))), &mut checks);
        check_token(Some(&ctx(Some(jwt(r#"{"exp":99999999999}"#)))), &mut checks);
        check_token(Some(&ctx(Some("opaque".into()))), &mut checks);
        let statuses: Vec<_> = checks.iter().map(|c| c.status).collect();
        use super::super::Status::*;
        assert_eq!(statuses, [Fail, Fail, Pass, Warn]);
        assert!(checks[0].hint.is_some() && checks[1].message.contains("expired") && checks[1].hint.is_some());
        assert_eq!(checks[1].details["permissions"], "p");
    }
}
