//! Atomic file replacement: readers see the old file or the new one, never a mix, and a failure leaves the old
//! file and no temp file behind. Every file we write (config, engine state, uploads' metadata, Codex config,
//! `webtty fs download`) goes through [`AtomicFile`] or [`write_atomic`].
//!
//! The new version is written to a temp file in the destination's directory under an unguessable name, opened
//! create-new (`O_EXCL`) and no-follow (`O_NOFOLLOW`): someone sharing the directory cannot make us write
//! through a symlink or into a file they prepared. `rename` then replaces the destination itself — a symlink
//! planted at the destination is replaced, not followed.

use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Prefix of the temp files [`AtomicFile`] (and so [`write_atomic`]) creates next to their target (the WebDAV sidecar hides and refuses
/// such names: one may hold a config or key being written).
pub const TEMP_PREFIX: &str = ".rstream-write-";

/// Creates the parent directory of `path` (mode 0700) if it is missing.
pub fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::DirBuilder::new().recursive(true).mode(0o700).create(dir),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` through an [`AtomicFile`] created with `mode` (the parent directory is created if
/// missing): a reader sees the old or the new file, never a mix; a failure leaves the old file and no temp file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    create_parent(path)?;
    let mut file = AtomicFile::create(path, mode)?;
    file.write_all(bytes)?;
    file.commit()
}

/// The next version of a file, being written next to it; [`AtomicFile::commit`] puts it in place, dropping it
/// uncommitted removes it.
///
/// ```no_run
/// use std::io::Write;
/// let mut file = rstream::atomic_file::AtomicFile::create("notes.txt".as_ref(), 0o644)?;
/// file.write_all(b"all or nothing\n")?;
/// file.commit()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    file: fs::File,
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Opens a new temp file for `dest` in `dest`'s directory (which must exist) with `mode` (less the umask).
    pub fn create(dest: &Path, mode: u32) -> io::Result<AtomicFile> {
        let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let temp = dir.join(format!("{TEMP_PREFIX}{:016x}.tmp", unguessable()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode)
            .open(&temp)?;
        Ok(AtomicFile { file, temp, dest: dest.to_path_buf(), committed: false })
    }

    /// The open temp file (for writers that need the `File` itself).
    pub fn as_file_mut(&mut self) -> &mut fs::File {
        &mut self.file
    }

    /// The temp file's path (removed on drop unless committed).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes the contents to disk and renames the temp file over the destination.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.temp, &self.dest)?;
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// 64 bits nobody else can predict: std's per-process random SipHash keys (seeded from the OS) over a counter
/// and the clock. Not for secrets — only so a temp name cannot be guessed ahead (create-new already makes a
/// guessed one harmless; unguessable makes it impossible to block).
fn unguessable() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((COUNTER.fetch_add(1, Ordering::Relaxed), nanos, std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rstream-atomic-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn replaces_atomically_with_the_mode_and_leaves_no_temp_file() {
        let dir = scratch("replace");
        let path = dir.join("sub").join("file.txt");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        let blocked = path.join("below-a-file");
        assert!(write_atomic(&blocked, b"x", 0o600).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn temp_names_differ_and_an_uncommitted_file_is_removed() {
        let dir = scratch("drop");
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("f");
        let (a, b) = (AtomicFile::create(&dest, 0o600).unwrap(), AtomicFile::create(&dest, 0o600).unwrap());
        assert_ne!(a.temp_path(), b.temp_path());
        assert!(a.temp_path().exists());
        drop((a, b));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "temp files left after drop");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symlink_at_the_destination_is_replaced_not_followed() {
        let dir = scratch("symlink");
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, "keep").unwrap();
        let dest = dir.join("dest");
        std::os::unix::fs::symlink(&victim, &dest).unwrap();
        write_atomic(&dest, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(fs::symlink_metadata(&dest).unwrap().file_type().is_file());
        let _ = fs::remove_dir_all(&dir);
    }
}
