//! The rmcp server handler: identity, instructions, `tools/list`, `tools/call`.
//!
//! rmcp negotiates the protocol version (the client's, when it is one rmcp knows; otherwise the newest version
//! that still has an `initialize` handshake), so 2024-11-05 … 2025-11-25 clients all work. Each call runs on a
//! tokio blocking thread: the tools are synchronous, and the network ones drive the smol-based libraries with
//! `smol::block_on` there. That keeps tokio out of every other module, lets those libraries keep non-`Send`
//! futures, and bounds concurrency by the blocking pool size ([`crate::limits::MCP_MAX_TOOL_THREADS`]).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::catalog::Catalog;

/// What the agent is told at `initialize`.
pub const INSTRUCTIONS: &str = "rstream reaches remote machines (WebTTY servers) through an rstream engine, \
using the operator's own context; tokens are never shown to you.\n\
1. Call rstream_runtime_status first. If it is not ready, relay its agent_guidance to the operator.\n\
2. List servers with rstream_webtty_list; narrow with `filter`, e.g. labels.rstream.webtty.label.role=codex, \
or a bare name.\n\
3. Read each server's `capabilities` before acting: a server advertising only `exec` accepts commands \
(rstream_webtty_exec) and nothing else; the rstream_webtty_fs_* tools need `fs` (and `fs_mode` read-write to \
change files). Pass the server's `rstream_url` (rstrm://NAME) as `url`.\n\
4. Filesystem paths are relative to the server's fs root: `/` is that root, not the remote host's `/`.\n\
5. rstream_webtty_exec runs argv directly (no shell); use [\"sh\", \"-c\", \"...\"] for pipes. A non-zero exit \
code is reported as an error result that still carries stdout and stderr.\n\
6. rstream_local_tunnel_expose publishes a port of THIS machine; stop it with rstream_local_tunnel_stop when done.";

/// The MCP server: the tool catalog behind rmcp's handler trait.
#[derive(Clone)]
pub struct RstreamServer {
    catalog: Arc<Catalog>,
}

impl RstreamServer {
    /// A server offering `catalog`.
    pub fn new(catalog: Catalog) -> RstreamServer {
        RstreamServer { catalog: Arc::new(catalog) }
    }
}

impl ServerHandler for RstreamServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder().enable_tools().build();
        if let Some(tools) = capabilities.tools.as_mut() {
            tools.list_changed = Some(false);
        }
        let mut info = ServerConfig::new(capabilities).with_instructions(INSTRUCTIONS);
        info.server_info = Implementation::new("rstream", env!("CARGO_PKG_VERSION")).with_title("rstream");
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.catalog.tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.catalog.tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let catalog = Arc::clone(&self.catalog);
        let name = request.name.to_string();
        let arguments = request.arguments;
        log_debug!("mcp: tools/call {name}");
        let result = tokio::task::spawn_blocking(move || catalog.call(&name, arguments)).await.unwrap_or_else(|e| {
            CallToolResult::error(vec![ContentBlock::text(format!("tool call did not complete: {e}"))])
        });
        Ok(result.into())
    }
}
