//! `rstream mcp serve`: MCP server over stdio for Codex, Claude Code and other agents.

use argh::FromArgs;

use super::{CliError, CliResult};

/// the Model Context Protocol server
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "mcp",
    example = "rstream mcp serve",
    example = "rstream codex setup   # registers `rstream mcp serve` with Codex"
)]
pub struct McpCommand {
    #[argh(subcommand)]
    pub command: McpSub,
}

/// `mcp` subcommands.
#[derive(FromArgs)]
#[argh(subcommand)]
pub enum McpSub {
    Serve(ServeCommand),
}

/// serve MCP over stdio (stdout is the protocol; logs go to stderr)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "serve",
    example = "rstream mcp serve",
    example = "RSTREAM_CONFIG=~/.rstream/lab.yaml rstream mcp serve --context lab",
    note = "Register it with `rstream codex setup` or `rstream claude setup` rather than by hand."
)]
pub struct ServeCommand {
    /// config file (exported as RSTREAM_CONFIG for the tools and the processes they start)
    #[argh(option)]
    pub config: Option<String>,
    /// context to use (exported as RSTREAM_CONTEXT)
    #[argh(option)]
    pub context: Option<String>,
    /// hosted control-plane URL (exported as RSTREAM_API_URL; unused by self-hosted engines)
    #[argh(option)]
    pub api_url: Option<String>,
}

impl McpCommand {
    /// Runs the server until stdin closes.
    pub fn run(self) -> CliResult {
        match self.command {
            McpSub::Serve(c) => c.run(),
        }
    }
}

impl ServeCommand {
    fn run(self) -> CliResult {
        // Still single-threaded here: the runtime starts inside `serve`.
        for (key, value) in
            [("RSTREAM_CONFIG", &self.config), ("RSTREAM_CONTEXT", &self.context), ("RSTREAM_API_URL", &self.api_url)]
        {
            if let Some(v) = value {
                std::env::set_var(key, v);
            }
        }
        crate::mcp::serve().map_err(|e| CliError::new(e.to_string()))?;
        Ok(0)
    }
}
