//! Atomic file replacement: readers see the old file or the new one, never a mix, and a failure leaves the old
//! file and no temp file behind. Every file we write (config, engine state, uploads' metadata, Codex config)
//! goes through [`write_atomic`].

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Prefix of the temp files [`write_atomic`] creates next to their target (the WebDAV sidecar hides and refuses
/// such names: one may hold a config or key being written).
pub const TEMP_PREFIX: &str = ".rstream-write-";

/// Creates the parent directory of `path` (mode 0700) if it is missing.
pub fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::DirBuilder::new().recursive(true).mode(0o700).create(dir),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` through a temp file (created with `mode`) in the same directory, fsync, rename: a
/// reader sees the old or the new file, never a mix; a failure leaves the old file and no temp file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    create_parent(path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{TEMP_PREFIX}{}-{}.tmp", std::process::id(), unique_suffix()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    (u64::from(nanos) << 16) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_atomically_with_the_mode_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("rstream-atomic-{}", std::process::id()));
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
}
