//! `rstream mcp publish`: this MCP tool set over HTTP at `/mcp` on a tunnel (see [`crate::mcp::publish`]).
//!
//! Prints upstream's status object when the tunnel is online (again after every reconnect): one JSON line with
//! `-o json`, a block otherwise; connection trouble goes to stderr. Runs until interrupted, or exits like
//! `forward` when the engine refuses for good.

use std::sync::Arc;

use argh::FromArgs;
use serde_json::Value;

use super::forward::{parse_labels, stopped};
use super::output::Stdout;
use super::{output_or, CliError, CliResult, OutputFormat};
use crate::agent::status::forwarding_address;
use crate::agent::{Agent, AgentEvent, EventSink};
use crate::config;
use crate::mcp::catalog::Catalog;
use crate::mcp::operator_env::OperatorEnv;
use crate::mcp::publish::{self, McpEndpoint};
use crate::transport::EngineEndpoint;

/// Default tunnel name (upstream's).
pub const DEFAULT_NAME: &str = "rstream-mcp";

/// serve this MCP tool set over HTTP at /mcp on a tunnel: published with token auth by default, private
/// (rstrm://NAME) with --no-publish
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "publish",
    example = "rstream mcp publish --no-publish --name lab-mcp --label role=lab",
    example = "rstream mcp publish --read-only -o json   # https://rstream-mcp.t.<engine>/mcp, callers need a token",
    note = "Other agents find it with rstream_remote_mcp_discover (label application-protocol=rstream.mcp) and call \
            it with rstream_remote_mcp_tools / rstream_remote_mcp_call. The tool policy flags of `mcp serve` apply."
)]
pub struct PublishCommand {
    /// tunnel name (default rstream-mcp)
    #[argh(option)]
    pub name: Option<String>,
    /// label key=value (repeatable)
    #[argh(option)]
    pub label: Vec<String>,
    /// publish on the engine's public host with token auth (default)
    #[argh(switch)]
    pub publish: bool,
    /// keep the endpoint private (reachable as rstrm://NAME by authenticated clients)
    #[argh(switch)]
    pub no_publish: bool,
    /// output: text or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
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

impl PublishCommand {
    /// Serves until interrupted or refused for good.
    pub fn run(self) -> CliResult {
        let output = output_or(&self.output, OutputFormat::Text)?;
        if self.publish && self.no_publish {
            return Err(CliError::new("--publish and --no-publish are mutually exclusive"));
        }
        let flags = super::setup::policy(self.read_only, &self.tools, &self.deny_tools, &self.allow_servers)?;
        let catalog = Catalog::new(OperatorEnv::from_process(), flags).map_err(CliError::new)?;
        let name = self.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_owned());
        let tunnel = publish::tunnel(&name, !self.no_publish, &parse_labels(&self.label)?);
        let ctx = config::resolve()?;
        let endpoint = EngineEndpoint::from_context(&ctx)?;
        let agent = Agent::new(endpoint, vec![tunnel], McpEndpoint::new(catalog))
            .with_events(printer(output, ctx.engine_port()));
        Err(stopped(smol::block_on(agent.run())))
    }
}

/// Prints the status when the tunnel comes online; reports trouble on stderr.
fn printer(output: OutputFormat, engine_port: u16) -> EventSink {
    Arc::new(move |event: &AgentEvent| match event {
        AgentEvent::Online { tunnel } => {
            let status = publish::status(tunnel, &forwarding_address(tunnel, engine_port));
            let text = match output {
                OutputFormat::Json => format!("{status}\n"),
                _ => text_block(&status),
            };
            let _ = write!(Stdout, "{text}");
            let _ = crate::cli::output::flush();
        }
        AgentEvent::ConnectionFailed { error } => log_warn!("mcp publish: cannot reach the engine: {error}"),
        AgentEvent::TunnelFailed { name, error } => log_warn!("mcp publish: tunnel {name:?} refused: {error}"),
        AgentEvent::Disconnected { error } => log_warn!("mcp publish: disconnected ({error}); reconnecting"),
        _ => {}
    })
}

/// The status as `key : value` lines.
fn text_block(status: &Value) -> String {
    let mut out = String::from("mcp endpoint online\n");
    for key in ["url", "forwarding", "name", "tunnel_id", "published", "token_auth"] {
        if let Some(v) = status.get(key) {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            out.push_str(&format!("  {key:<10} : {v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_text_block_lists_the_url_first() {
        let status = json!({"url": "rstrm://m/mcp", "forwarding": "rstrm://m (unpublished)", "published": false});
        assert_eq!(
            text_block(&status),
            "mcp endpoint online\n  url        : rstrm://m/mcp\n  forwarding : rstrm://m (unpublished)\n  published  : \
             false\n"
        );
    }
}
