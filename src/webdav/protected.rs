//! The agent's own secrets are never served, even when they lie under the served root: its config (with the
//! context tokens), `~/.rstream`, token files, the TLS key of its listener, the engine's state directory (HS256
//! secret, CA and leaf keys).
//!
//! [`ProtectedPaths`] is the list, passed into the handler with [`super::FsConfig`]. Before each request the
//! handler resolves it to [`Resolved`]: for every path where it lies now (canonical parent + name, the
//! canonical target when it exists) and its identity (device, inode) — so a secret rewritten atomically since
//! the start (a new inode) is still recognised. A path is protected when it is, or lies below, one of those
//! locations, or when it (or, for request paths, one of its ancestors) has the identity of one: symlinks,
//! `..`-free aliases, hard links and bind mounts all lead back to the same location or inode. Strings are never
//! compared as given.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files and directories the sidecar refuses to serve, list or change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedPaths(Vec<PathBuf>);

impl ProtectedPaths {
    /// Protects `paths` (relative ones are taken relative to the current directory now).
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        ProtectedPaths::default().with(paths)
    }

    /// What every device agent protects: its config file (`RSTREAM_CONFIG` or `~/.rstream/config.yaml`) and
    /// the config's lock file, the whole `~/.rstream` directory, and the engine's default state directory
    /// (`$XDG_STATE_HOME/rstream/engine` or `~/.local/state/rstream/engine`).
    pub fn agent_defaults() -> Self {
        let config = crate::config::config_path();
        let lock = config.with_extension("yaml.lock");
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".rstream"));
        let state = crate::state_layout::default_dir_from_env();
        ProtectedPaths::new([config, lock].into_iter().chain(home).chain(state))
    }

    /// Adds `paths` (token files, key files).
    pub fn with(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        for path in paths {
            let path = cwd.join(path); // an absolute path replaces cwd
            if !self.0.contains(&path) {
                self.0.push(path);
            }
        }
        self
    }

    /// The protected paths, absolute, as given.
    pub fn paths(&self) -> &[PathBuf] {
        &self.0
    }

    /// Where each protected path lies now.
    pub(crate) fn resolve(&self) -> Resolved {
        Resolved { entries: self.0.iter().map(|p| resolve_one(p)).collect() }
    }
}

/// (device, inode) of a file or directory.
type FileId = (u64, u64);

fn file_id(meta: &Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// One protected path as it lies now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    /// The canonical parent joined with the name (a final symlink not followed); the path as given when the
    /// parent does not exist yet.
    at: PathBuf,
    /// The canonical path with every symlink followed, when it exists.
    target: Option<PathBuf>,
    /// Identity of the target, when it exists.
    id: Option<FileId>,
}

fn resolve_one(path: &Path) -> Location {
    let at = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => canonical_prefix(parent).join(name),
        _ => path.to_path_buf(),
    };
    let target = std::fs::canonicalize(path).ok();
    let id = std::fs::metadata(path).ok().map(|m| file_id(&m));
    Location { at, target, id }
}

/// `path` with its longest existing ancestor canonicalized and the missing rest appended: where `path` would be
/// created (a symlinked home directory resolves even before `~/.local/state` exists).
fn canonical_prefix(path: &Path) -> PathBuf {
    for existing in path.ancestors() {
        if let Ok(canonical) = std::fs::canonicalize(existing) {
            let rest = path.strip_prefix(existing).unwrap_or(Path::new(""));
            return canonical.join(rest);
        }
    }
    path.to_path_buf()
}

/// The protected paths resolved at one moment (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolved {
    entries: Vec<Location>,
}

impl Resolved {
    /// Whether nothing is protected.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `path` (canonical parent + name) is a protected location or lies below one, or `meta` (its
    /// `lstat` or `stat`) has the identity of a protected file or directory.
    pub(crate) fn covers(&self, path: &Path, meta: Option<&Metadata>) -> bool {
        let id = meta.map(file_id);
        self.entries.iter().any(|e| {
            path.starts_with(&e.at)
                || e.target.as_ref().is_some_and(|t| path.starts_with(t))
                || (id.is_some() && id == e.id)
        })
    }

    /// Whether one of the directories between `root` (included) and `path` (excluded) has the identity of a
    /// protected directory: `path` lies in it under another name (a bind mount).
    pub(crate) fn inside_by_identity(&self, root: &Path, path: &Path) -> bool {
        let ids: Vec<FileId> = self.entries.iter().filter_map(|e| e.id).collect();
        !ids.is_empty()
            && path
                .ancestors()
                .skip(1)
                .take_while(|dir| dir.starts_with(root))
                .filter_map(|dir| std::fs::metadata(dir).ok())
                .any(|m| ids.contains(&file_id(&m)))
    }

    /// Whether a protected location lies inside the directory `dir` (canonical): deleting, moving or copying
    /// `dir` would take it along.
    pub(crate) fn any_below(&self, dir: &Path) -> bool {
        self.entries.iter().any(|e| e.at.starts_with(dir) || e.target.as_ref().is_some_and(|t| t.starts_with(dir)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rstream-protected-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    #[test]
    fn symlinks_hard_links_and_subdirectories_are_recognised() {
        let dir = temp_dir("links");
        std::fs::create_dir_all(dir.join("state/keys")).unwrap();
        std::fs::write(dir.join("state/keys/ca-key.pem"), "key").unwrap();
        std::fs::write(dir.join("token"), "tok").unwrap();
        std::fs::write(dir.join("public"), "pub").unwrap();
        std::fs::hard_link(dir.join("token"), dir.join("alias")).unwrap();
        std::os::unix::fs::symlink(dir.join("state"), dir.join("statelink")).unwrap();
        let resolved = ProtectedPaths::new([dir.join("token"), dir.join("state")]).resolve();

        let meta = |p: &str| std::fs::metadata(dir.join(p)).ok();
        assert!(resolved.covers(&dir.join("token"), meta("token").as_ref()));
        assert!(resolved.covers(&dir.join("alias"), meta("alias").as_ref()), "a hard link is the same file");
        assert!(resolved.covers(&dir.join("state/keys/ca-key.pem"), None), "below a protected directory");
        let through_link = std::fs::canonicalize(dir.join("statelink/keys/ca-key.pem")).unwrap();
        assert!(resolved.covers(&through_link, None), "a symlink resolves to the protected location");
        assert!(!resolved.covers(&dir.join("public"), meta("public").as_ref()));
        assert!(!resolved.covers(&dir.join("tokens"), None), "whole components, not string prefixes");
        assert!(resolved.any_below(&dir) && !resolved.any_below(&dir.join("state2")));
        assert!(resolved.inside_by_identity(&dir, &dir.join("state/keys/x")));
        assert!(!resolved.inside_by_identity(&dir, &dir.join("public")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_that_does_not_exist_yet_is_protected_where_it_would_be_created() {
        let dir = temp_dir("later");
        let resolved = ProtectedPaths::new([dir.join("config.yaml"), dir.join("missing/dir/secret")]).resolve();
        assert!(resolved.covers(&dir.join("config.yaml"), None));
        assert!(resolved.covers(&dir.join("missing/dir/secret"), None));
        assert!(!resolved.covers(&dir.join("missing/dir/other"), None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_path_below_a_symlinked_directory_resolves_to_where_it_would_be_created() {
        let dir = temp_dir("symhome");
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("home")).unwrap();
        let resolved = ProtectedPaths::new([dir.join("home/.local/state/rstream/engine")]).resolve();
        assert!(resolved.covers(&dir.join("real/.local/state/rstream/engine"), None));
        assert!(resolved.covers(&dir.join("real/.local/state/rstream/engine/jwt-secret"), None));
        assert!(resolved.any_below(&dir.join("real/.local")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn relative_paths_are_made_absolute_and_duplicates_dropped() {
        let p = ProtectedPaths::new([PathBuf::from("token"), PathBuf::from("token")]);
        assert_eq!(p.paths(), [std::env::current_dir().unwrap().join("token")]);
        assert!(ProtectedPaths::default().resolve().is_empty());
    }
}
