//! `rstream codex setup` and `rstream claude setup`: register `rstream mcp serve` with coding agents.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use argh::FromArgs;
use serde::Serialize;

use super::{refuse_given, CliError, CliResult};
use crate::cli::output::Stdout;
use crate::config::write_atomic;
use crate::operator::claude::{find_on_path, is_executable, ClaudeEntry, Scope};
use crate::operator::codex::{self, DesiredEntry, Diagnostic, SetupStatus};
use crate::operator::mcp_probe::{self, Verification};
use crate::operator::tool_policy::ToolPolicyFlags;

/// the Codex integration
#[derive(FromArgs)]
#[argh(subcommand, name = "codex", example = "rstream codex setup", example = "rstream codex setup --print")]
pub struct CodexCommand {
    #[argh(subcommand)]
    pub command: CodexSub,
}

/// Codex subcommands.
#[derive(FromArgs)]
#[argh(subcommand)]
pub enum CodexSub {
    Setup(CodexSetup),
}

/// register the rstream MCP server in Codex's config.toml ([mcp_servers.rstream]); idempotent and
/// format-preserving
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "setup",
    example = "rstream codex setup",
    example = "rstream codex setup --print",
    example = "RSTREAM_CONFIG=~/lab.yaml rstream codex setup --verify -o json",
    example = "rstream codex setup --read-only --allow-servers labels.rstream.webtty.label.role=codex",
    note = "Statuses: installed, already_configured, repaired, conflict (a customised entry: re-run with --force). \
            The policy flags are those of `rstream mcp serve` and are written into the entry's args."
)]
pub struct CodexSetup {
    /// path of Codex config.toml (default $CODEX_HOME/config.toml or ~/.codex/config.toml)
    #[argh(option)]
    pub config: Option<String>,
    /// the rstream executable to run (default: this binary)
    #[argh(option)]
    pub command: Option<String>,
    /// replace a customised entry
    #[argh(switch)]
    pub force: bool,
    /// print the TOML block instead of editing (alone: not with --force, --verify, --config or -o)
    #[argh(switch)]
    pub print: bool,
    /// start the configured server and check initialize + tools/list
    #[argh(switch)]
    pub verify: bool,
    /// output: none, json or yaml
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// the entry's server offers only tools that change nothing
    #[argh(switch)]
    pub read_only: bool,
    /// the entry's server offers only these tools (names or name* patterns)
    #[argh(option)]
    pub tools: Option<String>,
    /// the entry's server never offers these tools (names or name* patterns)
    #[argh(option)]
    pub deny_tools: Option<String>,
    /// the entry's server touches only WebTTY servers matching this filter
    #[argh(option)]
    pub allow_servers: Option<String>,
}

/// the Claude Code integration
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "claude",
    example = "rstream claude setup",
    example = "rstream claude setup --scope project --print"
)]
pub struct ClaudeCommand {
    #[argh(subcommand)]
    pub command: ClaudeSub,
}

/// Claude subcommands.
#[derive(FromArgs)]
#[argh(subcommand)]
pub enum ClaudeSub {
    Setup(ClaudeSetup),
}

/// register the rstream MCP server with the claude CLI (`claude mcp add … -- rstream mcp serve`)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "setup",
    example = "rstream claude setup",
    example = "rstream claude setup --scope project --print",
    example = "rstream claude setup --read-only --tools 'rstream_webtty_*'",
    note = "The policy flags are those of `rstream mcp serve` and are written after `mcp serve` in the entry."
)]
pub struct ClaudeSetup {
    /// local, project or user (default user)
    #[argh(option)]
    pub scope: Option<String>,
    /// server name (default rstream)
    #[argh(option)]
    pub name: Option<String>,
    /// the rstream executable to run (default: this binary)
    #[argh(option)]
    pub command: Option<String>,
    /// remove an existing entry first
    #[argh(switch)]
    pub force: bool,
    /// print the .mcp.json block and the command line instead of registering (not with --force or -o)
    #[argh(switch)]
    pub print: bool,
    /// output: none, json or yaml
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// the entry's server offers only tools that change nothing
    #[argh(switch)]
    pub read_only: bool,
    /// the entry's server offers only these tools (names or name* patterns)
    #[argh(option)]
    pub tools: Option<String>,
    /// the entry's server never offers these tools (names or name* patterns)
    #[argh(option)]
    pub deny_tools: Option<String>,
    /// the entry's server touches only WebTTY servers matching this filter
    #[argh(option)]
    pub allow_servers: Option<String>,
}

/// `codex setup` report.
#[derive(Serialize)]
struct CodexReport {
    changed: bool,
    status: SetupStatus,
    config: String,
    command: String,
    reload_required: bool,
    diagnostics: Vec<Diagnostic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<Verification>,
}

/// Why `--print` refuses the flags of editing and reporting: it changes nothing and prints the entry itself.
const PRINT_ONLY: &str = "does nothing with --print, which changes nothing and prints only the entry (drop --print to \
                          register it)";

/// How a setup report is printed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReportFormat {
    None,
    Json,
    Yaml,
}

fn report_format(v: &Option<String>) -> Result<ReportFormat, CliError> {
    match v.as_deref() {
        None | Some("none") => Ok(ReportFormat::None),
        Some("json") => Ok(ReportFormat::Json),
        Some("yaml") => Ok(ReportFormat::Yaml),
        Some(other) => Err(CliError::new(format!("unknown output format {other:?}: expected none, json or yaml"))),
    }
}

fn print_report<T: Serialize>(format: ReportFormat, report: &T) -> Result<(), CliError> {
    match format {
        ReportFormat::None => {}
        ReportFormat::Json => writeln!(Stdout, "{}", serde_json::to_string_pretty(report)?)?,
        ReportFormat::Yaml => write!(Stdout, "{}", serde_yaml_ng::to_string(report)?)?,
    }
    Ok(())
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// The tool policy flags of `mcp serve`, `mcp publish` or a setup, checked as `mcp serve` checks them (names
/// must match tools of this build).
pub(crate) fn policy(
    read_only: bool,
    tools: &Option<String>,
    deny_tools: &Option<String>,
    allow_servers: &Option<String>,
) -> Result<ToolPolicyFlags, CliError> {
    let flags = ToolPolicyFlags::new(read_only, tools.as_deref(), deny_tools.as_deref(), allow_servers.as_deref())
        .map_err(CliError::new)?;
    #[cfg(feature = "mcp")]
    crate::mcp::policy::ToolPolicy::new(flags.clone(), &crate::mcp::catalog::Catalog::all_specs())
        .map_err(CliError::new)?;
    Ok(flags)
}

/// The rstream executable the entry should run: `--command` (must be executable) or this binary.
fn resolve_command(flag: &Option<String>) -> Result<PathBuf, CliError> {
    let path = match flag {
        Some(c) => std::fs::canonicalize(c).map_err(|e| CliError::new(format!("--command {c}: {e}")))?,
        None => std::env::current_exe().map_err(|e| CliError::new(format!("cannot locate this binary: {e}")))?,
    };
    if !is_executable(&path) {
        return Err(CliError::new(format!("--command {} is not an executable file", path.display())));
    }
    Ok(path)
}

impl CodexCommand {
    /// Runs codex setup.
    pub fn run(self) -> CliResult {
        let CodexSub::Setup(c) = self.command;
        let format = report_format(&c.output)?;
        if c.print {
            let editing = [
                ("--force", c.force),
                ("--verify", c.verify),
                ("--config", c.config.is_some()),
                ("-o", c.output.is_some()),
            ];
            refuse_given(&editing, PRINT_ONLY)?;
        }
        let flags = policy(c.read_only, &c.tools, &c.deny_tools, &c.allow_servers)?;
        let desired = DesiredEntry::new(resolve_command(&c.command)?, &flags, &env_var);
        if c.print {
            write!(Stdout, "{}", desired.print_block())?;
            return Ok(0);
        }
        let path = match &c.config {
            Some(p) => std::path::absolute(p).map_err(|e| CliError::new(format!("--config {p}: {e}")))?,
            None => codex::default_config_path(&env_var),
        };
        let existing = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(CliError::new(format!("{}: {e}", path.display()))),
        };
        let readable = |p: &Path| std::fs::File::open(p).is_ok();
        let plan = codex::plan(&existing, &desired, c.force, &is_executable, &readable).map_err(CliError::new)?;
        let mut report = CodexReport {
            changed: plan.new_text.is_some(),
            status: plan.status,
            config: path.display().to_string(),
            command: desired.command.display().to_string(),
            reload_required: plan.new_text.is_some(),
            diagnostics: plan.diagnostics,
            verification: None,
        };
        if let Some(text) = &plan.new_text {
            let mode = std::fs::metadata(&path).map_or(0o600, |m| m.permissions().mode() & 0o777);
            write_atomic(&path, text.as_bytes(), mode)
                .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
        }
        if c.verify && report.status != SetupStatus::Conflict {
            let v =
                mcp_probe::verify(&desired.command, &desired.args, &desired.env, &mcp_probe::required_tools(&flags));
            let failed = v.status != "succeeded";
            let (code, level) =
                if failed { ("verification_failed", "error") } else { ("verification_succeeded", "info") };
            let msg = v.error.clone().unwrap_or_else(|| format!("{} tools listed", v.tool_count));
            report.diagnostics.push(Diagnostic { code, level, message: msg });
            if failed {
                report.status = SetupStatus::VerificationFailed;
            }
            report.verification = Some(v);
        }
        print_report(format, &report)?;
        match report.status {
            SetupStatus::Conflict | SetupStatus::VerificationFailed => {
                let last = report.diagnostics.last().map(|d| d.message.clone()).unwrap_or_default();
                Err(CliError::new(last))
            }
            status => {
                if format == ReportFormat::None {
                    let what = match status {
                        SetupStatus::Installed => "installed",
                        SetupStatus::Repaired => "repaired",
                        _ => "already configured",
                    };
                    let reload = if report.changed { "; restart Codex to load it" } else { "" };
                    writeln!(Stdout, "[mcp_servers.rstream] {what} in {}{reload}", report.config)?;
                }
                Ok(0)
            }
        }
    }
}

/// `claude setup` report.
#[derive(Serialize)]
struct ClaudeReport {
    name: String,
    scope: &'static str,
    changed: bool,
}

impl ClaudeCommand {
    /// Runs claude setup.
    pub fn run(self) -> CliResult {
        let ClaudeSub::Setup(c) = self.command;
        let format = report_format(&c.output)?;
        let scope: Scope = c.scope.as_deref().unwrap_or("user").parse().map_err(CliError::new)?;
        let entry = ClaudeEntry {
            name: c.name.clone().unwrap_or_else(|| "rstream".into()),
            scope,
            command: resolve_command(&c.command)?,
            rstream_config: env_var("RSTREAM_CONFIG").filter(|v| !v.is_empty()),
            policy_args: policy(c.read_only, &c.tools, &c.deny_tools, &c.allow_servers)?.args(),
        };
        if c.print {
            refuse_given(&[("--force", c.force), ("-o", c.output.is_some())], PRINT_ONLY)?;
            write!(Stdout, "{}", entry.print_text())?;
            return Ok(0);
        }
        let claude = find_on_path("claude", env_var("PATH").as_deref()).ok_or_else(|| {
            CliError::new(
                "claude executable not found on PATH: install Claude Code, then rerun, or use --print to copy \
                 the configuration manually",
            )
        })?;
        if c.force {
            let _ = Command::new(&claude).args(entry.remove_args()).output();
        }
        let out = Command::new(&claude)
            .args(entry.add_args())
            .output()
            .map_err(|e| CliError::new(format!("running {}: {e}", claude.display())))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            let hint = if c.force { "" } else { " (if it already exists, re-run with --force)" };
            return Err(CliError::new(format!("claude mcp add failed: {msg}{hint}")));
        }
        let report = ClaudeReport { name: entry.name.clone(), scope: scope.as_str(), changed: true };
        print_report(format, &report)?;
        if format == ReportFormat::None {
            writeln!(Stdout, "registered MCP server {:?} with Claude Code (scope {})", entry.name, scope.as_str())?;
        }
        Ok(0)
    }
}
