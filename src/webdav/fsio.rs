//! Confined file operations shared by PUT, COPY and MOVE: atomic temp files, chunked copies and tree walks.
//!
//! A [`TempFile`] is created with `O_EXCL | O_NOFOLLOW` next to its final name (`.rstream-upload-<hex>.tmp`),
//! re-checked through `/proc/self/fd`, and renamed over the target only when complete; dropping it uncommitted
//! (error, oversize body, client gone, task cancelled) removes it, so no temp file is left behind and the old
//! content stays intact. Copies move `COPY_BUF_LEN` bytes at a time and yield between chunks.

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::DavError;
use super::path::{is_reserved_name, DavPath, FsRoot, TEMP_PREFIX};
use crate::limits::{COPY_BUF_LEN, MAX_WEBDAV_MULTISTATUS_ERRORS, MAX_WEBDAV_TREE_DEPTH};

/// A file being written next to its final name, removed unless committed.
pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
    committed: bool,
}

fn random_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        b = (COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) ^ u64::from(std::process::id()) << 32)
            .to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl TempFile {
    /// Creates a fresh temp file in `dir` (a confined, canonical directory) for the upload of `dav`.
    pub(crate) fn create(root: &FsRoot, dir: &Path, dav: &DavPath) -> Result<Self, DavError> {
        let path = dir.join(format!("{TEMP_PREFIX}{}.tmp", random_suffix()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| DavError::io(e, &dav.key()))?;
        let temp = Self { path, file, committed: false };
        root.verify_open(&temp.file, dav)?;
        Ok(temp)
    }

    /// The open file.
    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Flushes to disk, applies `perms` (those of the file being replaced), and renames over `target`.
    pub(crate) fn commit(mut self, target: &Path, perms: Option<Permissions>, dav: &DavPath) -> Result<(), DavError> {
        let fail = |e| DavError::io(e, &dav.key());
        self.file.sync_all().map_err(fail)?;
        if let Some(perms) = perms {
            self.file.set_permissions(perms).map_err(fail)?;
        }
        std::fs::rename(&self.path, target).map_err(fail)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes an entry as seen by `lstat`: a directory with everything below it (symlinks inside are removed,
/// never followed), anything else (including a symlink to a directory) with `unlink`.
pub(crate) fn remove_entry(path: &Path, meta: &Metadata, dav: &DavPath) -> Result<(), DavError> {
    let result = if meta.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    result.map_err(|e| DavError::io(e, &dav.key()))
}

/// Copies the confined file `src` to `dst` (in the confined directory `dst_dir`) through a temp file.
pub(crate) async fn copy_file(
    root: &FsRoot,
    src: &Path,
    src_dav: &DavPath,
    dst_dir: &Path,
    dst: &Path,
    dst_dav: &DavPath,
) -> Result<(), DavError> {
    let mut input = root.open_read(src, src_dav)?;
    let perms = input.metadata().map(|m| m.permissions()).ok();
    let mut temp = TempFile::create(root, dst_dir, dst_dav)?;
    let mut buf = vec![0u8; COPY_BUF_LEN];
    loop {
        let n = input.read(&mut buf).map_err(|e| DavError::io(e, &src_dav.key()))?;
        if n == 0 {
            break;
        }
        temp.file().write_all(&buf[..n]).map_err(|e| DavError::io(e, &dst_dav.key()))?;
        futures_lite::future::yield_now().await;
    }
    temp.commit(dst, perms, dst_dav)
}

/// Members that failed during a tree operation, bounded by `limits::MAX_WEBDAV_MULTISTATUS_ERRORS`.
#[derive(Debug, Default)]
pub(crate) struct MemberErrors {
    /// The first failures.
    pub(crate) listed: Vec<(DavPath, DavError)>,
    /// Failures beyond the listed ones.
    pub(crate) more: usize,
}

impl MemberErrors {
    fn push(&mut self, path: DavPath, e: DavError) {
        if self.listed.len() < MAX_WEBDAV_MULTISTATUS_ERRORS {
            self.listed.push((path, e));
        } else {
            self.more += 1;
        }
    }

    /// Whether nothing failed.
    pub(crate) fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }
}

/// One directory being copied.
struct Level {
    entries: std::fs::ReadDir,
    src_dir: PathBuf,
    dst_dir: PathBuf,
    src_dav: DavPath,
    dst_dav: DavPath,
}

/// Copies the confined directory `src` (followed) to the new directory `dst`; with `infinite` its whole tree.
/// Symlinks to files inside the root are copied as files; symlinks leaving the root, symlinked directories
/// (possible cycles) and special files are skipped and reported, as is anything deeper than
/// `limits::MAX_WEBDAV_TREE_DEPTH`.
pub(crate) async fn copy_dir(
    root: &FsRoot,
    src: &Path,
    src_dav: &DavPath,
    dst: &Path,
    dst_dav: &DavPath,
    infinite: bool,
) -> Result<MemberErrors, DavError> {
    std::fs::create_dir(dst).map_err(|e| DavError::io(e, &dst_dav.key()))?;
    let mut errors = MemberErrors::default();
    if !infinite {
        return Ok(errors);
    }
    let open = |dir: &Path, dav: &DavPath| std::fs::read_dir(dir).map_err(|e| DavError::io(e, &dav.key()));
    let mut stack = vec![Level {
        entries: open(src, src_dav)?,
        src_dir: src.to_path_buf(),
        dst_dir: dst.to_path_buf(),
        src_dav: src_dav.clone(),
        dst_dav: dst_dav.clone(),
    }];
    while let Some(level) = stack.last_mut() {
        let Some(entry) = level.entries.next() else {
            stack.pop();
            continue;
        };
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| !is_reserved_name(n)) else { continue };
        let (child_src, child_dst) = match (level.src_dav.child(name), level.dst_dav.child(name)) {
            (Ok(s), Ok(d)) => (s, d),
            (Err(e), _) | (_, Err(e)) => {
                errors.push(level.src_dav.clone(), e);
                continue;
            }
        };
        let src_path = level.src_dir.join(name);
        let dst_path = level.dst_dir.join(name);
        let located = super::path::Located {
            dav: child_src.clone(),
            path: src_path.clone(),
            parent: level.src_dir.clone(),
            meta: std::fs::symlink_metadata(&src_path).ok(),
        };
        let (target, meta) = match located.follow(root) {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(e) => {
                errors.push(child_src, e);
                continue;
            }
        };
        if meta.is_file() {
            let dst_dir = level.dst_dir.clone();
            if let Err(e) = copy_file(root, &target, &child_src, &dst_dir, &dst_path, &child_dst).await {
                errors.push(child_src, e);
            }
        } else if !meta.is_dir() {
            errors.push(child_src, DavError::forbidden("not a regular file or directory"));
        } else if located.is_symlink() {
            errors.push(child_src, DavError::forbidden("symlinked directory not copied"));
        } else if stack.len() >= MAX_WEBDAV_TREE_DEPTH {
            errors.push(child_src, DavError::new(507, format!("tree deeper than {MAX_WEBDAV_TREE_DEPTH} levels")));
        } else if let Err(e) = std::fs::create_dir(&dst_path).map_err(|e| DavError::io(e, &child_dst.key())) {
            errors.push(child_dst, e);
        } else {
            match open(&target, &child_src) {
                Ok(entries) => stack.push(Level {
                    entries,
                    src_dir: target,
                    dst_dir: dst_path,
                    src_dav: child_src,
                    dst_dav: child_dst,
                }),
                Err(e) => errors.push(child_src, e),
            }
        }
        futures_lite::future::yield_now().await;
    }
    Ok(errors)
}
