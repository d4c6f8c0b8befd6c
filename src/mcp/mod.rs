//! `rstream mcp serve`: the MCP server over stdio (rmcp; the only place tokio runs).
//!
//! An agent (Codex, Claude Code, any MCP client) starts `rstream mcp serve` and drives remote machines through
//! it with the operator's own context; it never sees a token. stdout carries the protocol only (newline-delimited
//! JSON-RPC); logs go to stderr.
//!
//! - [`wire`]: the stdio gate: JSON-RPC checks upstream makes before anything runs (parse errors, bad
//!   `initialize` params, duplicate ids, "server is busy"); [`calls`] is its book of requests in flight.
//! - [`server`]: the rmcp handler: identity, protocol version, instructions, tools/list, tools/call (run slots,
//!   cancellation through [`cancel`]).
//! - [`catalog`]: which tools this build offers, the [`policy`] that disables some or limits the servers they
//!   touch, and the dispatch of a call to its family.
//! - [`schema`]: tool definitions (closed input schemas, output schemas, `_meta`); [`annotations`]: the hints of
//!   every tool in one table.
//! - [`args`]: typed argument access with agent-actionable errors.
//! - [`result`]: upstream's result shapes (pretty text + `structuredContent`, `isError`), scrubbed by
//!   [`scrub`] of every secret [`operator_env`] and [`known_secrets`] know, in every encoded form.
//! - [`operator_env`]: the config path and `RSTREAM_*` variables the tools run against.
//! - [`tools_context`]: runtime status and contexts; [`tools_tunnels`]: the engine's tunnel inventory.
//! - [`tools_webtty`]: list WebTTY servers (engine inventory) and run commands on them.
//! - [`tools_fs`]: files on a server's WebDAV sidecar ([`tools_fs_transfer`]: copies to and from this machine);
//!   [`fs_session`] connects to it after checking the policy and the server's capabilities.
//! - [`tools_local_tunnel`]: expose/list/stop local ports through a supervised `rstream forward`
//!   ([`local_tunnel_process`] runs it, [`local_tunnel_registry`] remembers it next to the config).
//! - [`remote_mcp`]: discover MCP endpoints behind the engine and call their tools through
//!   [`remote_mcp_client`] (Streamable HTTP over a private stream; [`sse`] reads event-stream answers).
//! - [`remote_expose`]: start/stop `rstream forward` on a WebTTY host through one exec, with upstream's
//!   script contract ([`remote_expose_script`]).
//! - `publish` (with `device`): `rstream mcp publish`, this tool set at `/mcp` on a tunnel, answering each POST
//!   through [`rpc`] (JSON-RPC without rmcp's session machinery).

pub mod annotations;
pub mod args;
pub mod calls;
pub mod cancel;
pub mod catalog;
pub mod fs_session;
pub mod known_secrets;
pub mod local_tunnel_process;
pub mod local_tunnel_registry;
pub mod operator_env;
pub mod policy;
#[cfg(feature = "device")]
pub mod publish;
pub mod remote_expose;
pub mod remote_expose_script;
pub mod remote_mcp;
pub mod remote_mcp_client;
pub mod result;
pub mod rpc;
pub mod schema;
pub mod scrub;
pub mod server;
pub mod sse;
pub mod tools_context;
pub mod tools_fs;
pub mod tools_fs_transfer;
pub mod tools_local_tunnel;
pub mod tools_tunnels;
pub mod tools_webtty;
pub mod wire;

use std::io;

use rmcp::ServiceExt;

use crate::operator::tool_policy::ToolPolicyFlags;

/// Serves MCP on stdin/stdout under the tool policy `flags` until the client closes stdin. Returns why serving
/// stopped on failure (a policy naming no tool is refused before anything is read).
pub fn serve(flags: ToolPolicyFlags) -> io::Result<()> {
    let env = operator_env::OperatorEnv::from_process();
    log_debug!("mcp: serving with config {}", env.config_path.display());
    let catalog = catalog::Catalog::new(env, flags).map_err(io::Error::other)?;
    let book = calls::CallBook::new();
    let server = server::RstreamServer::new(catalog, std::sync::Arc::clone(&book));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(crate::limits::MCP_MAX_TOOL_THREADS)
        .thread_name("rstream-mcp")
        .build()?;
    let (gate, threads) = wire::start(io::BufReader::new(io::stdin()), io::stdout(), book);
    let served = runtime.block_on(async move {
        let running = server.serve(gate).await.map_err(|e| io::Error::other(format!("mcp initialize failed: {e}")))?;
        running.waiting().await.map_err(|e| io::Error::other(format!("mcp server stopped: {e}")))?;
        Ok(())
    });
    // A tool call still running on a blocking thread (the client went away mid-call) must not hold the exit.
    runtime.shutdown_timeout(crate::limits::MCP_SHUTDOWN_GRACE);
    threads.finish(crate::limits::MCP_SHUTDOWN_GRACE);
    served
}
