//! Path confinement: every request path is decoded, checked and resolved strictly below the configured root.
//!
//! [`DavPath::parse`] splits the still-encoded path on `/` first and decodes each segment alone, so an encoded
//! slash (`%2f`) can never create a separator; a segment that decodes to `..`, `.`-tricks, a slash, a backslash,
//! a NUL or another control byte is refused with 403, as is a raw backslash. [`FsRoot::locate`] then resolves
//! the parent directory with `canonicalize` (following every symlink) and refuses it unless it lies inside the
//! canonical root; the final component is examined with `lstat`, and [`Located::follow`] resolves it when it is
//! a symlink, again refusing targets outside the root (and loops). Files are opened with `O_NOFOLLOW` on the
//! checked path and re-checked after opening through `/proc/self/fd` ([`FsRoot::verify_open`]).
//!
//! The agent's own secrets ([`ProtectedPaths`]) are refused wherever a path is resolved — [`FsRoot::locate`]
//! (the entry itself, by location and identity, and the directories above it by identity), [`Located::follow`]
//! (the target) and [`FsRoot::verify_open`] (the opened file) — so no method, listing or alias reaches them;
//! [`FsRoot::refuse_holding`] guards the methods that take a whole directory along (DELETE, COPY, MOVE).
//!
//! Writes never go through a symlink: uploads create a fresh temp file in the checked parent and rename it over
//! the final name (replacing a link, not its target); DELETE and MOVE act on the link itself. A local process
//! racing to swap a checked directory for a symlink between check and use is outside this model (WebDAV itself
//! cannot create symlinks); the post-open re-check still catches it for opened files.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use super::error::DavError;
use super::protected::{ProtectedPaths, Resolved};
use crate::http::percent::{encode_path, percent_decode_utf8};

/// Prefix of upload temp files; such names are hidden from listings and refused in requests.
pub const TEMP_PREFIX: &str = ".rstream-upload-";

/// Longest file name accepted (Linux `NAME_MAX`).
const MAX_NAME_LEN: usize = 255;

/// A checked path below the root: plain names only, no `.`/`..`, separators or control bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DavPath {
    segments: Vec<String>,
}

/// Whether `name` is a temp file of an upload or of the atomic writer (which may hold a config or key being
/// written): hidden from listings, refused in requests.
pub(crate) fn is_reserved_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) || name.starts_with(crate::atomic_file::TEMP_PREFIX)
}

/// Checks one decoded name; `raw` is what the client sent, for the message.
fn check_name(name: &str, raw: &str) -> Result<(), DavError> {
    if name == "." || name == ".." {
        return Err(DavError::forbidden(format!("fs path escapes root: {raw:?}")));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(DavError::forbidden(format!("fs path holds an encoded separator: {raw:?}")));
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(DavError::forbidden(format!("fs path holds a NUL or control byte: {raw:?}")));
    }
    if is_reserved_name(name) {
        return Err(DavError::forbidden(format!("fs path uses a reserved name: {raw:?}")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(DavError::bad_request(format!("fs name longer than {MAX_NAME_LEN} bytes: {raw:?}")));
    }
    Ok(())
}

impl DavPath {
    /// The root itself.
    pub fn root() -> Self {
        Self { segments: Vec::new() }
    }

    /// Parses the percent-encoded path below the mount point (`""`, `/`, `/dir/file%20name`).
    pub fn parse(raw: &str) -> Result<Self, DavError> {
        if raw.contains('\\') {
            return Err(DavError::forbidden(format!("fs path holds a backslash: {raw:?}")));
        }
        if !raw.is_empty() && !raw.starts_with('/') {
            return Err(DavError::bad_request(format!("fs path is not absolute: {raw:?}")));
        }
        let mut segments = Vec::new();
        for piece in raw.split('/') {
            if piece.is_empty() || piece == "." {
                continue;
            }
            let name = percent_decode_utf8(piece).map_err(|e| DavError::bad_request(e.to_string()))?;
            check_name(&name, raw)?;
            segments.push(name);
        }
        Ok(Self { segments })
    }

    /// The decoded names from the root down.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The parent path (`None` for the root).
    pub fn parent(&self) -> Option<DavPath> {
        let (_, parent) = self.segments.split_last()?;
        Some(Self { segments: parent.to_vec() })
    }

    /// The last name (`None` for the root).
    pub fn name(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }

    /// A child of this path; `name` (from a directory listing) is checked like a request segment.
    pub fn child(&self, name: &str) -> Result<DavPath, DavError> {
        check_name(name, name)?;
        let mut segments = self.segments.clone();
        segments.push(name.to_string());
        Ok(Self { segments })
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &DavPath) -> bool {
        self.segments.starts_with(&other.segments)
    }

    /// The decoded path as `/a/b` (`/` for the root): the key of locks and dead properties.
    pub fn key(&self) -> String {
        if self.segments.is_empty() {
            return "/".to_string();
        }
        self.segments.iter().fold(String::new(), |acc, s| acc + "/" + s)
    }

    /// The encoded `href` of this path under `mount` (a collection gets a trailing slash).
    pub fn href(&self, mount: &str, collection: bool) -> String {
        let mut href = format!("{}{}", mount.trim_end_matches('/'), encode_path(&self.key()));
        if collection && !href.ends_with('/') {
            href.push('/');
        }
        href
    }

    fn relative(&self) -> PathBuf {
        self.segments.iter().collect()
    }
}

/// The confined root directory, and the paths in it that are never served.
#[derive(Debug, Clone)]
pub struct FsRoot {
    root: PathBuf,
    protected: ProtectedPaths,
    /// `protected` as resolved for the current request ([`FsRoot::refresh_protected`]).
    resolved: Arc<RwLock<Resolved>>,
}

/// Where a path lives on disk: its canonical parent and the entry itself, not followed.
#[derive(Debug)]
pub struct Located {
    /// The request path.
    pub dav: DavPath,
    /// `parent/name` with a canonical, confined parent (the root itself for the root).
    pub path: PathBuf,
    /// The canonical parent directory (the root for the root).
    pub parent: PathBuf,
    /// `lstat` of `path`, if it exists.
    pub meta: Option<Metadata>,
}

impl FsRoot {
    /// Confines access to `dir`, which must be an existing directory (resolved to its canonical form).
    pub fn new(dir: &Path) -> io::Result<Self> {
        Self::protecting(dir, ProtectedPaths::default())
    }

    /// [`FsRoot::new`], refusing every access to `protected` (and anything in a protected directory).
    pub fn protecting(dir: &Path, protected: ProtectedPaths) -> io::Result<Self> {
        let root = std::fs::canonicalize(dir)?;
        if !std::fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{}: not a directory", dir.display())));
        }
        let resolved = Arc::new(RwLock::new(protected.resolve()));
        Ok(Self { root, protected, resolved })
    }

    /// Resolves the protected paths again — they may have been created, replaced or linked since: once per
    /// request, before any path of it is located.
    pub fn refresh_protected(&self) {
        if !self.protected.paths().is_empty() {
            *self.resolved.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = self.protected.resolve();
        }
    }

    fn resolved(&self) -> RwLockReadGuard<'_, Resolved> {
        self.resolved.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// 403 when `path` (canonical parent + name, with its `lstat` or `stat` as `meta`) is one of the agent's
    /// own secrets or lies in a protected directory; with `ancestors`, also when a directory between the root
    /// and `path` is a protected one under another name.
    fn shield(&self, path: &Path, meta: Option<&Metadata>, dav: &DavPath, ancestors: bool) -> Result<(), DavError> {
        let resolved = self.resolved();
        if resolved.is_empty() {
            return Ok(());
        }
        if resolved.covers(path, meta) || (ancestors && resolved.inside_by_identity(&self.root, path)) {
            return Err(DavError::forbidden(format!("fs path {:?} is one of the agent's own secrets", dav.key())));
        }
        Ok(())
    }

    /// 403 when a protected path lies inside the directory `dir` (canonical parent + name): deleting, moving
    /// or copying `dir` — or moving or copying something to it — would take the secret along or replace it.
    pub fn refuse_holding(&self, dir: &Path, dav: &DavPath) -> Result<(), DavError> {
        if self.resolved().any_below(dir) {
            return Err(DavError::forbidden(format!("fs path {:?} holds the agent's own secrets", dav.key())));
        }
        Ok(())
    }

    /// Whether the directory entry `path` is, or leads (as a symlink) to, a protected path: such entries are
    /// left out of listings.
    pub(crate) fn hides(&self, path: &Path) -> bool {
        let resolved = self.resolved();
        !resolved.is_empty()
            && (resolved.covers(path, std::fs::symlink_metadata(path).ok().as_ref())
                || std::fs::canonicalize(path)
                    .is_ok_and(|target| resolved.covers(&target, std::fs::metadata(&target).ok().as_ref())))
    }

    /// The canonical root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn confined(&self, resolved: &Path, dav: &DavPath) -> Result<(), DavError> {
        if resolved.starts_with(&self.root) {
            Ok(())
        } else {
            Err(DavError::forbidden(format!("fs path escapes root: {:?}", dav.key())))
        }
    }

    /// Resolves the parent of `dav` (following symlinks, confined) and looks at the entry without following it.
    /// A missing or non-directory parent is 409; a parent outside the root or a symlink loop is 403.
    pub fn locate(&self, dav: &DavPath) -> Result<Located, DavError> {
        let Some(parent_dav) = dav.parent() else {
            let meta = std::fs::symlink_metadata(&self.root).ok();
            self.shield(&self.root, meta.as_ref(), dav, false)?;
            return Ok(Located { dav: dav.clone(), path: self.root.clone(), parent: self.root.clone(), meta });
        };
        let parent = match std::fs::canonicalize(self.root.join(parent_dav.relative())) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => {
                return Err(DavError::conflict(format!("parent of {:?} does not exist", dav.key())));
            }
            Err(e) => return Err(DavError::io(e, &dav.key())),
        };
        self.confined(&parent, dav)?;
        if !std::fs::metadata(&parent).map(|m| m.is_dir()).unwrap_or(false) {
            return Err(DavError::conflict(format!("parent of {:?} is not a directory", dav.key())));
        }
        let path = parent.join(dav.name().unwrap_or_default());
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(DavError::io(e, &dav.key())),
        };
        self.shield(&path, meta.as_ref(), dav, true)?;
        if meta.as_ref().is_some_and(|m| m.file_type().is_symlink()) {
            // A link to a secret is refused for every method, even those acting on the link itself.
            if let Ok(target) = std::fs::canonicalize(&path) {
                self.shield(&target, std::fs::metadata(&target).ok().as_ref(), dav, true)?;
            }
        }
        Ok(Located { dav: dav.clone(), path, parent, meta })
    }

    /// [`FsRoot::locate`] then [`Located::follow`]: the confined target of an existing path, or 404.
    pub fn resolve_existing(&self, dav: &DavPath) -> Result<(PathBuf, Metadata), DavError> {
        let located =
            self.locate(dav).map_err(|e| if e.status == 409 { DavError::not_found(&dav.key()) } else { e })?;
        located.follow(self)?.ok_or_else(|| DavError::not_found(&dav.key()))
    }

    /// Opens a confined file for reading (`O_NOFOLLOW`) and re-checks where it really is.
    pub fn open_read(&self, target: &Path, dav: &DavPath) -> Result<File, DavError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(target)
            .map_err(|e| DavError::io(e, &dav.key()))?;
        self.verify_open(&file, dav)?;
        Ok(file)
    }

    /// Confirms through `/proc/self/fd` that an opened file lies inside the root (skipped without `/proc`) and
    /// is none of the agent's secrets.
    pub fn verify_open(&self, file: &File, dav: &DavPath) -> Result<(), DavError> {
        let meta = file.metadata().ok();
        match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            Ok(real) => {
                self.confined(&real, dav)?;
                self.shield(&real, meta.as_ref(), dav, true)
            }
            Err(_) => self.shield(Path::new(""), meta.as_ref(), dav, false),
        }
    }
}

impl Located {
    /// Whether the entry exists (a dangling symlink counts: it can be deleted or replaced).
    pub fn exists(&self) -> bool {
        self.meta.is_some()
    }

    /// Whether the entry is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| m.file_type().is_symlink())
    }

    /// Whether the entry, followed, is a directory.
    pub fn is_dir(&self, root: &FsRoot) -> bool {
        matches!(self.follow(root), Ok(Some((_, m))) if m.is_dir())
    }

    /// The entry with a final symlink followed: `None` if missing or dangling; 403 if the target leaves the
    /// root or loops.
    pub fn follow(&self, root: &FsRoot) -> Result<Option<(PathBuf, Metadata)>, DavError> {
        let Some(meta) = &self.meta else { return Ok(None) };
        if !meta.file_type().is_symlink() {
            root.shield(&self.path, Some(meta), &self.dav, false)?;
            return Ok(Some((self.path.clone(), meta.clone())));
        }
        let target = match std::fs::canonicalize(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DavError::io(e, &self.dav.key())),
        };
        root.confined(&target, &self.dav)?;
        let meta = std::fs::metadata(&target).map_err(|e| DavError::io(e, &self.dav.key()))?;
        root.shield(&target, Some(&meta), &self.dav, true)?;
        Ok(Some((target, meta)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_plain_paths() {
        let p = DavPath::parse("/a//b/./c%20d/").unwrap();
        assert_eq!(p.segments(), ["a", "b", "c d"]);
        assert_eq!(p.key(), "/a/b/c d");
        assert_eq!(p.href("/fs", true), "/fs/a/b/c%20d/");
        assert_eq!(DavPath::parse("").unwrap(), DavPath::root());
        assert_eq!(DavPath::root().href("/fs", true), "/fs/");
        assert_eq!(p.parent().unwrap().key(), "/a/b");
    }

    #[test]
    fn hostile_segments_are_refused() {
        for raw in [
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/%2E%2E",
            "/a%2fb",
            "/a%2F..%2Fb",
            "/a%00b",
            "/a\\b",
            "/a%5cb",
            "/x%0ay",
            "/.rstream-upload-1.tmp",
        ] {
            let err = DavPath::parse(raw).unwrap_err();
            assert_eq!(err.status, 403, "{raw}: {err}");
        }
        assert_eq!(DavPath::parse("/%zz").unwrap_err().status, 400);
        assert_eq!(DavPath::parse("relative").unwrap_err().status, 400);
    }

    #[test]
    fn ancestry_is_by_whole_segments() {
        let a = DavPath::parse("/a").unwrap();
        assert!(DavPath::parse("/a/b").unwrap().starts_with(&a));
        assert!(!DavPath::parse("/ab").unwrap().starts_with(&a));
        assert!(a.starts_with(&DavPath::root()));
    }
}
