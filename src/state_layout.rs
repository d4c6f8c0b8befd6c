//! Where a self-hosted engine keeps its state: the default directory and the names of the files in it.
//!
//! Shared by the engine, which writes them ([`crate::engine::state`] describes each file), the MCP server,
//! which must never hand the private ones to an agent even when it is run by the engine's user, and the device's
//! WebDAV sidecar, which refuses to serve the directory.

use std::ffi::OsStr;
use std::path::PathBuf;

/// CA certificate (public; clients trust it).
pub const CA_CERT: &str = "ca.pem";
/// CA private key.
pub const CA_KEY: &str = "ca-key.pem";
/// Leaf certificate chain (public).
pub const CERT: &str = "cert.pem";
/// Leaf private key.
pub const KEY: &str = "key.pem";
/// Names the leaf was issued for (public).
pub const CERT_NAMES: &str = "cert-names";
/// HS256 secret that signs every token.
pub const JWT_SECRET: &str = "jwt-secret";
/// The local operator token (the `local` context's, minted once).
pub const OPERATOR_TOKEN: &str = "operator-token";
/// Revoked token ids (`engine token revoke`), one `jti` per line.
pub const REVOKED_TOKENS: &str = "revoked-tokens";
/// The PEM private keys among the files.
pub const PRIVATE_KEYS: [&str; 2] = [KEY, CA_KEY];

/// The state directory when `--state-dir` is not given: `$XDG_STATE_HOME/rstream/engine`, else
/// `$HOME/.local/state/rstream/engine` (empty variables count as unset); `None` without either.
pub fn default_dir(xdg_state_home: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    match (xdg_state_home.filter(|v| !v.is_empty()), home.filter(|v| !v.is_empty())) {
        (Some(xdg), _) => Some(PathBuf::from(xdg).join("rstream/engine")),
        (None, Some(home)) => Some(PathBuf::from(home).join(".local/state/rstream/engine")),
        (None, None) => None,
    }
}

/// [`default_dir`] from this process's `XDG_STATE_HOME` and `HOME`.
pub fn default_dir_from_env() -> Option<PathBuf> {
    default_dir(std::env::var_os("XDG_STATE_HOME").as_deref(), std::env::var_os("HOME").as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_prefers_xdg_state_home_then_home() {
        let dir = |x: &str, h: &str| default_dir(Some(OsStr::new(x)), Some(OsStr::new(h)));
        assert_eq!(dir("/x", "/h"), Some(PathBuf::from("/x/rstream/engine")));
        assert_eq!(dir("", "/h"), Some(PathBuf::from("/h/.local/state/rstream/engine")));
        assert_eq!(dir("", ""), None);
    }
}
