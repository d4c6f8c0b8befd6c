//! The rmcp server handler: identity, instructions, `tools/list`, `tools/call`.
//!
//! The protocol is `2025-11-25`, negotiated down to an older version the client asks for (rmcp echoes a known
//! version with an `initialize` handshake and answers anything else with ours). Each call waits for one of the
//! [`crate::limits::MCP_MAX_RUNNING_CALLS`] run slots of the [`CallBook`], then runs on a tokio blocking
//! thread: the tools are synchronous, and the network ones drive the smol-based libraries with `smol::block_on`
//! there. That keeps tokio out of every other module and lets those libraries keep non-`Send` futures.
//! `notifications/cancelled` (rmcp cancels the request's token) fires the call's [`Canceller`]: a queued call
//! never starts, a running exec ends its WebTTY session (the device kills the remote process group), other
//! network work is dropped; rmcp then sends no answer, as the protocol wants.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::calls::{CallBook, IdKey};
use super::cancel::Cancel;
use super::catalog::Catalog;

/// The protocol version this server speaks (upstream's).
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// What the agent is told at `initialize` (the policy, when there is one, is appended).
pub const INSTRUCTIONS: &str = "rstream reaches remote machines (WebTTY servers) through an rstream engine, \
using the operator's own context; tokens are never shown to you.\n\
1. Call rstream_runtime_status first. If it is not ready, relay its agent_guidance to the operator.\n\
2. List servers with rstream_webtty_list; narrow with `filter`, e.g. labels.rstream.webtty.label.role=codex, \
or a bare name. rstream_tunnels_list shows every tunnel of the engine.\n\
3. Read each server's `capabilities` before acting: a server advertising only `exec` accepts commands \
(rstream_webtty_exec) and nothing else; the rstream_webtty_fs_* tools need `fs` (and `fs_mode` read-write to \
change files). Pass the server's `rstream_url` (rstrm://NAME) as `url`.\n\
4. Filesystem paths are relative to the server's fs root: `/` is that root, not the remote host's `/`.\n\
5. rstream_webtty_exec runs argv directly (no shell); use [\"sh\", \"-c\", \"...\"] for pipes. A non-zero exit \
code is reported as an error result that still carries stdout and stderr; cancelling the call kills the \
remote command.\n\
6. rstream_local_tunnel_expose publishes a port of THIS machine; stop it with rstream_local_tunnel_stop when done.\n\
7. rstream_remote_mcp_discover lists MCP endpoints behind the engine; call their tools with \
rstream_remote_mcp_tools and rstream_remote_mcp_call. rstream_remote_expose starts `rstream forward` on a WebTTY \
server (stop it with rstream_remote_expose_stop); keep a remote MCP that only you call private (publish=false), \
and do not mint tokens for your own use.";

/// The MCP server: the tool catalog behind rmcp's handler trait.
#[derive(Clone)]
pub struct RstreamServer {
    catalog: Arc<Catalog>,
    book: Arc<CallBook>,
}

impl RstreamServer {
    /// A server offering `catalog`, admitting calls through `book` (shared with the stdio gate).
    pub fn new(catalog: Catalog, book: Arc<CallBook>) -> RstreamServer {
        RstreamServer { catalog: Arc::new(catalog), book }
    }

    /// The instructions, with the policy in force.
    pub fn instructions(&self) -> String {
        instructions(&self.catalog)
    }
}

/// [`INSTRUCTIONS`] with the policy of `catalog` appended (also what `rstream mcp publish` answers).
pub fn instructions(catalog: &Catalog) -> String {
    match catalog.policy_summary() {
        Some(policy) => format!("{INSTRUCTIONS}\n8. {policy}"),
        None => INSTRUCTIONS.to_owned(),
    }
}

/// Ends a call's entry in the book if it was cancelled (its answer, which would end it, is never written).
struct CancelledCallEnd<'a> {
    book: &'a CallBook,
    key: IdKey,
    context: RequestContext<RoleServer>,
}

impl Drop for CancelledCallEnd<'_> {
    fn drop(&mut self) {
        if self.context.ct.is_cancelled() {
            self.book.finish(&self.key);
        }
    }
}

impl ServerHandler for RstreamServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder().enable_tools().build();
        if let Some(tools) = capabilities.tools.as_mut() {
            tools.list_changed = Some(false);
        }
        let mut info = ServerConfig::new(capabilities).with_instructions(self.instructions());
        info.protocol_version = PROTOCOL_VERSION;
        info.server_info = Implementation::new("rstream", env!("CARGO_PKG_VERSION")).with_title("rstream");
        info
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&PROTOCOL_VERSION))
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
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ct = context.ct.clone();
        let _end = CancelledCallEnd { book: &self.book, key: IdKey::of(&context.id), context };
        let slot = tokio::select! {
            slot = self.book.run_slot() => slot,
            () = ct.cancelled() => return Err(ErrorData::internal_error("cancelled while queued", None)),
        };
        let catalog = Arc::clone(&self.catalog);
        let name = request.name.to_string();
        let arguments = request.arguments;
        log_debug!("mcp: tools/call {name}");
        let (canceller, cancel) = Cancel::pair();
        let mut call = tokio::task::spawn_blocking(move || catalog.call(&name, arguments, &cancel));
        let joined = tokio::select! {
            joined = &mut call => joined,
            () = ct.cancelled() => {
                canceller.cancel();
                call.await
            }
        };
        drop(slot);
        let result = joined.unwrap_or_else(|e| {
            CallToolResult::error(vec![ContentBlock::text(format!("tool call did not complete: {e}"))])
        });
        Ok(result.into())
    }
}
