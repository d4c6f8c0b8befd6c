//! The behaviour hints of every tool, written out in one table (upstream keeps an explicit table too, no longer
//! derived from tool names). `--read-only` enables exactly the tools marked read-only here, so a row is a promise
//! the server keeps: a read-only tool changes nothing, here or remotely.
//!
//! - `read_only`: changes nothing anywhere (no remote command, no file written, no tunnel started, stopped or
//!   forgotten).
//! - `destructive`: may overwrite or remove something (a remote command can do anything).
//! - `idempotent`: calling it again with the same arguments has no further effect.
//! - `open_world`: reaches beyond this machine (the engine, remote servers, the public internet).

/// The four hints of one tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hints {
    /// `readOnlyHint`.
    pub read_only: bool,
    /// `destructiveHint`.
    pub destructive: bool,
    /// `idempotentHint`.
    pub idempotent: bool,
    /// `openWorldHint`.
    pub open_world: bool,
}

const fn h(read_only: bool, destructive: bool, idempotent: bool, open_world: bool) -> Hints {
    Hints { read_only, destructive, idempotent, open_world }
}

const T: bool = true;
const F: bool = false;

/// Every tool of the full build: name, then read-only, destructive, idempotent, open-world.
#[rustfmt::skip]
pub const TOOL_HINTS: &[(&str, Hints)] = &[
    ("rstream_runtime_status",      h(T, F, T, F)),
    ("rstream_context_list",        h(T, F, T, F)),
    ("rstream_context_get",         h(T, F, T, F)),
    ("rstream_tunnels_list",        h(T, F, T, T)),
    ("rstream_webtty_list",         h(T, F, T, T)),
    ("rstream_webtty_exec",         h(F, T, F, T)),
    ("rstream_webtty_fs_list",      h(T, F, T, T)),
    ("rstream_webtty_fs_stat",      h(T, F, T, T)),
    ("rstream_webtty_fs_read",      h(T, F, T, T)),
    ("rstream_webtty_fs_download",  h(F, T, T, T)), // writes a file on this machine
    ("rstream_webtty_fs_write",     h(F, T, T, T)),
    ("rstream_webtty_fs_upload",    h(F, T, T, T)),
    ("rstream_webtty_fs_mkdir",     h(F, F, T, T)),
    ("rstream_webtty_fs_move",      h(F, T, F, T)), // the second call finds no source
    ("rstream_webtty_fs_delete",    h(F, T, T, T)),
    ("rstream_remote_mcp_discover", h(T, F, T, T)),
    ("rstream_remote_mcp_tools",    h(T, F, T, T)), // a session opened for the listing is closed again
    ("rstream_remote_mcp_call",     h(F, T, F, T)), // the remote tool can do anything
    ("rstream_remote_expose",       h(F, F, F, T)), // starts a forward on the remote host
    ("rstream_remote_expose_stop",  h(F, T, T, T)),
    ("rstream_local_tunnel_expose", h(F, F, F, T)),
    ("rstream_local_tunnel_list",   h(T, F, T, F)), // reports exited tunnels, forgets none
    ("rstream_local_tunnel_stop",   h(F, T, T, T)),
];

/// The hints of `tool`, if it is in the table.
pub fn hints(tool: &str) -> Option<Hints> {
    TOOL_HINTS.iter().find(|(name, _)| *name == tool).map(|(_, hints)| *hints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tool_has_one_row_and_read_only_tools_destroy_nothing() {
        for (i, (name, hints)) in TOOL_HINTS.iter().enumerate() {
            assert!(TOOL_HINTS[i + 1..].iter().all(|(n, _)| n != name), "{name} listed twice");
            assert!(!(hints.read_only && hints.destructive), "{name} is read-only and destructive");
            assert!(!hints.read_only || hints.idempotent, "{name} is read-only but not idempotent");
        }
        assert_eq!(hints("rstream_webtty_exec"), Some(h(F, T, F, T)));
        assert_eq!(hints("rstream_nope"), None);
    }
}
