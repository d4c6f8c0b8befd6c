//! Revoked tokens: `<state>/revoked-tokens`, one token id (`jti`) per line, written by
//! `rstream engine token revoke JTI`.
//!
//! A running engine picks a revocation up with the next token it checks: each check compares the file's identity
//! (device, inode, size, modification time) with the one it read last — one `stat` — and reads the file again only
//! when it changed. At most [`MAX_REVOCATION_LIST_LEN`] bytes are read; a missing file revokes nothing. A revoke
//! takes an exclusive lock (`revoked-tokens.lock`), so two at once cannot lose one, and replaces the file
//! atomically (temp file + rename, mode 0600).

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::state::{write_atomic, StateError};
use crate::limits::MAX_REVOCATION_LIST_LEN;

/// Longest token id accepted by `engine token revoke` (ours are 32 hex characters).
const MAX_JTI_LEN: usize = 128;
/// First line of the file, for a reader who finds it.
const HEADER: &str = "# revoked engine tokens (jti), one per line: rstream engine token revoke JTI\n";

/// What identifies one version of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    Some(Stamp { dev: m.dev(), ino: m.ino(), len: m.len(), mtime: (m.mtime(), m.mtime_nsec()) })
}

#[derive(Default)]
struct Loaded {
    stamp: Option<Stamp>,
    jtis: HashSet<String>,
    last_error: Option<String>,
}

/// The engine's view of the revocation list, re-read when the file changes.
pub struct RevocationList {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

impl RevocationList {
    /// The list kept at `path` (it need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        RevocationList { path, loaded: Mutex::default() }
    }

    /// Whether token id `jti` is revoked now.
    pub fn is_revoked(&self, jti: &str) -> bool {
        let stamp = stamp_of(&self.path);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.stamp != stamp {
            match read_list(&self.path) {
                Ok(jtis) => {
                    log_info!("revocation list {}: {} revoked token(s)", self.path.display(), jtis.len());
                    *loaded = Loaded { stamp, jtis, last_error: None };
                }
                Err(e) if stamp.is_none() => *loaded = Loaded { last_error: Some(e.0), ..Loaded::default() },
                Err(e) => {
                    // Keep the last list and try again on the next check; say so once.
                    if loaded.last_error.as_deref() != Some(e.0.as_str()) {
                        log_warn!("{e}");
                        loaded.last_error = Some(e.0);
                    }
                }
            }
        }
        loaded.jtis.contains(jti)
    }
}

/// Reads the ids in the file at `path` (none when it is missing).
fn read_list(path: &Path) -> Result<HashSet<String>, StateError> {
    let text = match fs::File::open(path) {
        Ok(f) => {
            let mut text = String::new();
            f.take(MAX_REVOCATION_LIST_LEN)
                .read_to_string(&mut text)
                .map_err(|e| StateError(format!("cannot read revocation list {}: {e}", path.display())))?;
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(StateError(format!("cannot read revocation list {}: {e}", path.display()))),
    };
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect())
}

/// Checks a token id given on the command line: 1-128 letters, digits, `-` or `_`.
pub fn validate_jti(jti: &str) -> Result<(), String> {
    let ok = !jti.is_empty()
        && jti.len() <= MAX_JTI_LEN
        && jti.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid token id {jti:?}: expected the jti `engine token` printed \
             (1-{MAX_JTI_LEN} letters, digits, '-' or '_')"
        ))
    }
}

/// Adds `jti` to the list at `path`. `Ok(false)` when it was revoked already (the file is left as it is).
pub fn revoke(path: &Path, jti: &str) -> Result<bool, StateError> {
    validate_jti(jti).map_err(StateError)?;
    let _lock = ListLock::take(path)?;
    let mut text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_owned(),
        Err(e) => return Err(StateError(format!("cannot read revocation list {}: {e}", path.display()))),
    };
    if text.lines().any(|l| l.trim() == jti) {
        return Ok(false);
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(jti);
    text.push('\n');
    if text.len() as u64 > MAX_REVOCATION_LIST_LEN {
        return Err(StateError(format!(
            "revocation list {} would exceed {MAX_REVOCATION_LIST_LEN} bytes: change the engine's secret instead",
            path.display()
        )));
    }
    write_atomic(path, text.as_bytes(), 0o600)?;
    Ok(true)
}

/// An exclusive lock on `<list>.lock` (`File::lock`, an advisory `flock`), held while the list is rewritten.
struct ListLock {
    _file: fs::File,
}

impl ListLock {
    fn take(list: &Path) -> Result<ListLock, StateError> {
        let path = list.with_extension("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StateError(format!("cannot open {}: {e}", path.display())))?;
        file.lock().map_err(|e| StateError(format!("cannot lock {}: {e}", path.display())))?;
        Ok(ListLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_list(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rstream-revoke-{tag}-{}", super::super::ids::random_hex::<6>()));
        fs::create_dir_all(&dir).unwrap();
        dir.join("revoked-tokens")
    }

    #[test]
    fn a_running_list_sees_each_revocation_as_it_is_written() {
        let path = temp_list("live");
        let list = RevocationList::new(path.clone());
        assert!(!list.is_revoked("aaaa"), "no file: nothing revoked");
        assert!(revoke(&path, "aaaa").unwrap());
        assert!(list.is_revoked("aaaa"));
        assert!(!list.is_revoked("bbbb"));
        assert!(!revoke(&path, "aaaa").unwrap(), "revoking twice changes nothing");
        assert!(revoke(&path, "bbbb").unwrap());
        assert!(list.is_revoked("bbbb") && list.is_revoked("aaaa"));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with('#') && text.ends_with("aaaa\nbbbb\n"), "{text:?}");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let _ = fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn malformed_ids_are_refused_and_change_nothing() {
        let path = temp_list("bad");
        for bad in ["", "a b", "a/b", "x\ny", &"a".repeat(MAX_JTI_LEN + 1)] {
            let err = revoke(&path, bad).unwrap_err();
            assert!(err.0.contains("invalid token id"), "{err}");
        }
        assert!(!path.exists());
        let _ = fs::remove_dir_all(path.parent().unwrap());
    }
}
