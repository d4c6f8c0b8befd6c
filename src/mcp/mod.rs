//! `rstream mcp serve`: the MCP server over stdio (rmcp; the only place tokio runs).
//!
//! An agent (Codex, Claude Code, any MCP client) starts `rstream mcp serve` and drives remote machines through
//! it with the operator's own context; it never sees a token. stdout carries the protocol only (newline-delimited
//! JSON-RPC); logs go to stderr.
//!
//! - [`server`]: the rmcp handler: identity, instructions, tools/list, tools/call on blocking threads.
//! - [`catalog`]: which tools this build offers and the dispatch of a call to its family.
//! - [`schema`]: tool definitions (closed JSON Schemas, titles, upstream's annotation rules).
//! - [`args`]: typed argument access with agent-actionable errors.
//! - [`result`]: upstream's result shapes (pretty text + `structuredContent`, `isError`), scrubbed by
//!   [`scrub`] of every secret [`operator_env`] and [`known_secrets`] know, in every encoded form.
//! - [`operator_env`]: the config path and `RSTREAM_*` variables the tools run against.
//! - [`tools_context`]: runtime status and contexts.
//! - [`tools_webtty`]: list WebTTY servers (engine inventory) and run commands on them.
//! - [`tools_fs`]: files on a server's WebDAV sidecar; [`fs_session`] connects to it after checking the
//!   server's capabilities.
//! - [`tools_local_tunnel`]: expose/list/stop local ports through a supervised `rstream forward`
//!   ([`local_tunnel_process`] runs it, [`local_tunnel_registry`] remembers it next to the config).

pub mod args;
pub mod catalog;
pub mod fs_session;
pub mod known_secrets;
pub mod local_tunnel_process;
pub mod local_tunnel_registry;
pub mod operator_env;
pub mod result;
pub mod schema;
pub mod scrub;
pub mod server;
pub mod tools_context;
pub mod tools_fs;
pub mod tools_local_tunnel;
pub mod tools_webtty;

use std::io;

use rmcp::ServiceExt;

/// Serves MCP on stdin/stdout until the client closes stdin. Returns why serving stopped on failure.
pub fn serve() -> io::Result<()> {
    let env = operator_env::OperatorEnv::from_process();
    log_debug!("mcp: serving with config {}", env.config_path.display());
    let server = server::RstreamServer::new(catalog::Catalog::new(env));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(crate::limits::MCP_MAX_TOOL_THREADS)
        .thread_name("rstream-mcp")
        .build()?;
    let served = runtime.block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| io::Error::other(format!("mcp initialize failed: {e}")))?;
        running.waiting().await.map_err(|e| io::Error::other(format!("mcp server stopped: {e}")))?;
        Ok(())
    });
    // A tool call still running on a blocking thread (the client went away mid-call) must not hold the exit.
    runtime.shutdown_timeout(crate::limits::MCP_SHUTDOWN_GRACE);
    served
}
