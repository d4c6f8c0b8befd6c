//! `rstream doctor`: is this machine ready to reach its engine, and if not, what to fix.
//!
//! Upstream's report shape (`version`, `configPath`, `contextName`, `engine`, `summary`, `checks[]`,
//! `generatedAt`) and check names, in order: `config`, `context`, `token`, `control_plane_auth`, `project`,
//! `engine_address`, `dns`, `tls`, `engine_clients`, `engine_tunnels`, `clock`. Every failing check carries a
//! one-line `hint`; every network step has its own deadline, so a black-holed engine makes the report slow to
//! fail, never hang. An unreachable engine (DNS or TLS failed) fails `engine_clients` and `engine_tunnels` too,
//! with a hint to start it or fix its address; other checks that depend on a failed one are `skip`ped with the
//! reason.

mod cert;
mod local;
mod network;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::config::{self, ConfigFile, ResolvedContext};
use crate::http::date::format_rfc3339;

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but something deserves attention.
    Warn,
    /// Broken.
    Fail,
    /// Not applicable or not reachable because of an earlier failure.
    Skip,
}

/// One check in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Upstream check name.
    pub name: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// Facts (paths, addresses, counts).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// How to fix a failure or warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn new(name: &'static str, status: Status, message: impl Into<String>) -> Self {
        Check { name, status, message: message.into(), details: BTreeMap::new(), hint: None }
    }

    /// A passing check.
    pub fn pass(name: &'static str, message: impl Into<String>) -> Self {
        Check::new(name, Status::Pass, message)
    }

    /// A warning with a hint.
    pub fn warn(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Check::new(name, Status::Warn, message).hint(hint)
    }

    /// A failure with a hint.
    pub fn fail(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Check::new(name, Status::Fail, message).hint(hint)
    }

    /// A skipped check.
    pub fn skip(name: &'static str, message: impl Into<String>) -> Self {
        Check::new(name, Status::Skip, message)
    }

    /// Adds a detail.
    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.details.insert(key.to_owned(), value.to_string());
        self
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Counts per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Passed.
    pub pass: usize,
    /// Warnings.
    pub warn: usize,
    /// Failures.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// This binary's version.
    pub version: String,
    /// Config file examined.
    pub config_path: String,
    /// Selected context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_name: Option<String>,
    /// Engine address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Counts.
    pub summary: Summary,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// When the report was made (RFC 3339 UTC).
    pub generated_at: String,
}

impl Report {
    /// Whether any check failed (the command then exits non-zero).
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

/// Runs every check against the config at [`config::config_path`] and the environment.
pub async fn run() -> Report {
    let path = config::config_path();
    let mut checks = Vec::new();
    let cfg = local::check_config(&path, &mut checks);
    let ctx = cfg.as_ref().and_then(|cfg| local::check_context(cfg, &path, &mut checks));
    local::check_token(ctx.as_ref(), &mut checks);
    local::check_control_plane(ctx.as_ref(), &mut checks);
    match &ctx {
        Some(ctx) => network::check_engine(ctx, &mut checks).await,
        None => {
            for name in ["engine_address", "dns", "tls", "engine_clients", "engine_tunnels", "clock"] {
                checks.push(Check::skip(name, "no context selected"));
            }
        }
    }
    report(&path, cfg.as_ref(), ctx.as_ref(), checks)
}

fn report(
    path: &std::path::Path,
    _cfg: Option<&ConfigFile>,
    ctx: Option<&ResolvedContext>,
    checks: Vec<Check>,
) -> Report {
    let mut summary = Summary::default();
    for c in &checks {
        match c.status {
            Status::Pass => summary.pass += 1,
            Status::Warn => summary.warn += 1,
            Status::Fail => summary.fail += 1,
            Status::Skip => summary.skip += 1,
        }
    }
    Report {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        config_path: path.display().to_string(),
        context_name: ctx.and_then(|c| c.name.clone()),
        engine: ctx.map(|c| c.engine.clone()),
        summary,
        checks,
        generated_at: format_rfc3339(SystemTime::now()),
    }
}

/// Renders the report as upstream's table: a header block, then `CHECK  STATUS  MESSAGE` rows and hints.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let s = r.summary;
    out += &format!("Version  {}\nConfig   {}\n", r.version, r.config_path);
    out += &format!("Context  {}\n", r.context_name.as_deref().unwrap_or("-"));
    out += &format!("Engine   {}\n", r.engine.as_deref().unwrap_or("-"));
    out += &format!("Summary  pass={} warn={} fail={} skip={}\n\n", s.pass, s.warn, s.fail, s.skip);
    let w = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
    out += &format!("{:<w$}  {:<6}  MESSAGE\n", "CHECK", "STATUS");
    for c in &r.checks {
        let status =
            serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        out += &format!("{:<w$}  {status:<6}  {}\n", c.name, c.message);
        if let Some(h) = &c.hint {
            out += &format!("{:<w$}  {:<6}  hint: {h}\n", "", "");
        }
    }
    out
}
