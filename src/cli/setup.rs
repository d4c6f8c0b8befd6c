//! `rstream codex setup` and `rstream claude setup`: register `rstream mcp serve` with coding agents.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// the Codex integration
#[derive(FromArgs)]
#[argh(subcommand, name = "codex")]
pub struct CodexCommand {
    #[argh(subcommand)]
    pub command: CodexSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum CodexSub {
    Setup(CodexSetup),
}

/// register the rstream MCP server in Codex's config.toml
#[derive(FromArgs)]
#[argh(subcommand, name = "setup")]
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
    /// print the TOML block instead of editing
    #[argh(switch)]
    pub print: bool,
    /// start the configured server and check initialize + tools/list
    #[argh(switch)]
    pub verify: bool,
    /// output: none, json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// the Claude Code integration
#[derive(FromArgs)]
#[argh(subcommand, name = "claude")]
pub struct ClaudeCommand {
    #[argh(subcommand)]
    pub command: ClaudeSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum ClaudeSub {
    Setup(ClaudeSetup),
}

/// register the rstream MCP server with the claude CLI
#[derive(FromArgs)]
#[argh(subcommand, name = "setup")]
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
    /// print the .mcp.json block and the command line
    #[argh(switch)]
    pub print: bool,
    /// output: none, json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

impl CodexCommand {
    /// Runs codex setup.
    pub fn run(self) -> CliResult {
        not_yet_implemented("codex setup")
    }
}

impl ClaudeCommand {
    /// Runs claude setup.
    pub fn run(self) -> CliResult {
        not_yet_implemented("claude setup")
    }
}
