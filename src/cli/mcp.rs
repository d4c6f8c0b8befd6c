//! `rstream mcp serve`: MCP server over stdio for Codex, Claude Code and other agents.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// the Model Context Protocol server
#[derive(FromArgs)]
#[argh(subcommand, name = "mcp")]
pub struct McpCommand {
    #[argh(subcommand)]
    pub command: McpSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum McpSub {
    Serve(ServeCommand),
}

/// serve MCP over stdio (stdout is the protocol; logs go to stderr)
#[derive(FromArgs)]
#[argh(subcommand, name = "serve")]
pub struct ServeCommand {}

impl McpCommand {
    /// Runs the server until stdin closes.
    pub fn run(self) -> CliResult {
        match self.command {
            McpSub::Serve(_) => not_yet_implemented("mcp serve"),
        }
    }
}
