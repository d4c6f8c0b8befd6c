//! Operator tools: tunnel inventory and filters, WebTTY server discovery, doctor, codex/claude setup.
//!
//! - [`filter`]: upstream's `--filter` syntax, turned into the engine's filter object.
//! - [`inventory`]: tunnels as the engine lists them, WebTTY servers (`ServerInfo`) discovered from labels.

pub mod filter;
pub mod inventory;
