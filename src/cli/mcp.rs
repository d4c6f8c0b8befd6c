//! `rstream mcp serve`: MCP server over stdio for Codex, Claude Code and other agents; `rstream mcp publish`
//! ([`super::mcp_publish`]) serves the same tools over HTTP on a tunnel.

use argh::FromArgs;

use super::{CliError, CliResult};

/// the Model Context Protocol server
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "mcp",
    example = "rstream mcp serve",
    example = "rstream codex setup   # registers `rstream mcp serve` with Codex",
    example = "rstream mcp publish --no-publish --name lab-mcp   # the same tools for agents elsewhere"
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
    #[cfg(feature = "device")]
    Publish(super::mcp_publish::PublishCommand),
}

/// serve MCP over stdio (stdout is the protocol; logs go to stderr)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "serve",
    example = "rstream mcp serve",
    example = "RSTREAM_CONFIG=~/.rstream/lab.yaml rstream mcp serve --context lab",
    example = "rstream mcp serve --read-only --allow-servers labels.rstream.webtty.label.role=codex",
    example = "rstream mcp serve --tools 'rstream_webtty_*,rstream_runtime_status' --deny-tools rstream_webtty_fs_delete",
    note = "Register it with `rstream codex setup` or `rstream claude setup` rather than by hand (they take the same \
            policy flags and write them into the entry). The policy is enforced by the server: disabled tools are \
            not listed and calls to them are refused; --allow-servers uses the `webtty list --filter` syntax."
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
    /// offer only tools that change nothing (no exec, no file changes, no tunnel changes)
    #[argh(switch)]
    pub read_only: bool,
    /// offer only these tools (comma-separated names or name* patterns)
    #[argh(option)]
    pub tools: Option<String>,
    /// never offer these tools (comma-separated names or name* patterns)
    #[argh(option)]
    pub deny_tools: Option<String>,
    /// let tools touch only the WebTTY servers matching this filter (webtty list --filter syntax)
    #[argh(option)]
    pub allow_servers: Option<String>,
}

impl McpCommand {
    /// Runs the server until stdin closes.
    pub fn run(self) -> CliResult {
        match self.command {
            McpSub::Serve(c) => c.run(),
            #[cfg(feature = "device")]
            McpSub::Publish(c) => c.run(),
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
        let flags = super::setup::policy(self.read_only, &self.tools, &self.deny_tools, &self.allow_servers)?;
        crate::mcp::serve(flags).map_err(|e| CliError::new(e.to_string()))?;
        Ok(0)
    }
}
