//! Operator tools: tunnel inventory and filters, WebTTY server discovery, doctor, codex/claude setup.
//!
//! - [`api`]: the engine REST API client (inventory, clients, auth).
//! - [`claude`]: registering the MCP server through the `claude` CLI.
//! - [`codex`]: splicing the MCP server entry into Codex's config.toml.
//! - [`doctor`]: readiness checks with hints (`rstream doctor`).
//! - [`events`]: the engine's event stream (`/api/sse`, `/api/websocket`) as `rstream events` reads it.
//! - [`filter`]: upstream's `--filter` syntax, turned into the engine's filter object.
//! - [`fs_session`]: opening a WebTTY server's WebDAV sidecar (capability check, dial, client).
//! - [`inventory`]: tunnels as the engine lists them, WebTTY servers (`ServerInfo`) discovered from labels.
//! - [`mcp_probe`]: `codex setup --verify`: start the MCP server and check initialize + tools/list.
//! - [`webhook`]: `rstream events --forward-to`: POST each event, signed like upstream's webhooks.
//! - [`tool_policy`]: the `mcp serve` tool policy flags (`--read-only`, `--tools`, …) and their argv form.

pub mod api;
pub mod claude;
pub mod codex;
pub mod doctor;
pub mod events;
pub mod filter;
pub mod fs_session;
pub mod inventory;
pub mod mcp_probe;
pub mod tool_policy;
pub mod webhook;
