//! Where rstream keeps per-user state by default, shared by the roles that write it (the engine) and the roles
//! that must know it (the device's WebDAV sidecar, which refuses to serve it).

use std::path::PathBuf;

/// The engine's default state directory: `$XDG_STATE_HOME/rstream/engine`, else
/// `~/.local/state/rstream/engine`; `None` when neither variable is set (empty counts as unset).
pub fn default_engine_state_dir() -> Option<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    match set("XDG_STATE_HOME") {
        Some(state) => Some(state.join("rstream/engine")),
        None => set("HOME").map(|home| home.join(".local/state/rstream/engine")),
    }
}
