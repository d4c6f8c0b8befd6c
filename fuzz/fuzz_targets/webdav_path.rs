//! Fuzz target: WebDAV path confinement (`rstream::webdav::path`): `DavPath::parse`, `FsRoot::locate`,
//! `Located::follow`, `FsRoot::resolve_existing` and `FsRoot::open_read`, on a fixture tree whose symlinks point
//! inside the root, outside it (relative, absolute, to a sibling whose name extends the root's), at themselves
//! and at nothing.
//!
//! Properties, for any request path:
//! - an accepted path has only plain names (no `.`, `..`, separators, control bytes, reserved names) and its
//!   `href` parses back to the same path;
//! - a located entry's parent and path lie below the canonical root;
//! - what `follow` / `resolve_existing` resolve to lies below the root and is exactly what the kernel resolves
//!   the path to; a path the kernel resolves outside the root is refused, never served;
//! - a located parent that the kernel resolves to a directory inside the root is never refused;
//! - a resolved regular file opens and passes the post-open re-check.

#![no_main]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rstream::webdav::{DavPath, FsRoot, TEMP_PREFIX};

fuzz_target!(|bytes: &[u8]| {
    let raw = String::from_utf8_lossy(bytes);
    let Ok(dav) = DavPath::parse(&raw) else { return };
    assert_names_are_plain(&dav, &raw);
    assert_eq!(DavPath::parse(&dav.href("", false)).as_ref(), Ok(&dav), "href of {raw:?} does not parse back");

    let root = fixture_root();
    let canonical_root = root.path();
    let on_disk = canonical_root.join(dav.segments().iter().collect::<PathBuf>());
    let kernel = std::fs::canonicalize(&on_disk);
    let Ok(located) = root.locate(&dav) else {
        let parent = dav.parent().map(|p| canonical_root.join(p.segments().iter().collect::<PathBuf>()));
        let kernel_parent = parent.and_then(|p| std::fs::canonicalize(p).ok());
        let usable = kernel_parent.is_some_and(|p| p.starts_with(canonical_root) && p.is_dir());
        assert!(!usable, "locate refused {raw:?} although its parent is a directory inside the root");
        return;
    };
    assert!(located.parent.starts_with(canonical_root), "parent of {raw:?} escapes: {:?}", located.parent);
    assert!(located.path.starts_with(canonical_root), "{raw:?} located outside the root: {:?}", located.path);

    let followed = located.follow(root);
    let resolved = root.resolve_existing(&dav);
    match &followed {
        Ok(Some((target, meta))) => {
            assert!(target.starts_with(canonical_root), "{raw:?} resolves outside the root: {target:?}");
            if !kernel_gave_up(&kernel) {
                assert_eq!(kernel.as_ref().ok(), Some(target), "{raw:?} resolves elsewhere than the kernel says");
            }
            assert_eq!(resolved.as_ref().map(|(t, _)| t).ok(), Some(target), "resolve_existing disagrees");
            if meta.is_file() {
                root.open_read(target, &dav).expect("a confined regular file opens");
            }
        }
        Ok(None) => assert!(kernel.is_err(), "{raw:?} exists at {kernel:?} but was not found"),
        Err(e) => {
            let inside = kernel.as_ref().is_ok_and(|t| t.starts_with(canonical_root));
            assert!(!inside, "{raw:?} refused ({e}) although it resolves inside the root");
        }
    }
    if !matches!(followed, Ok(Some(_))) {
        assert!(resolved.is_err(), "resolve_existing served {raw:?} although follow did not");
    }
});

/// Whether resolving the whole path at once hit a limit (more than 40 symlinks, `PATH_MAX`) that resolving its
/// canonical parent and then the last name does not: the kernel then cannot serve as the oracle.
fn kernel_gave_up(kernel: &std::io::Result<PathBuf>) -> bool {
    kernel.as_ref().is_err_and(|e| matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENAMETOOLONG)))
}

/// Every name of an accepted path is one a directory entry below the root could have.
fn assert_names_are_plain(dav: &DavPath, raw: &str) {
    for name in dav.segments() {
        assert!(!name.is_empty() && name != "." && name != "..", "{raw:?} kept the name {name:?}");
        assert!(!name.contains(['/', '\\']), "{raw:?} kept a separator in {name:?}");
        assert!(!name.bytes().any(|b| b < 0x20 || b == 0x7f), "{raw:?} kept a control byte in {name:?}");
        assert!(!name.starts_with(TEMP_PREFIX), "{raw:?} names an upload temp file");
    }
}

/// The confined root of the fixture tree, built once per process under the temp directory:
///
/// ```text
/// r/            the root            r/d/r -> ..      (the root: inside)
/// r/f           file                r/d/u -> ../..   (the fixture directory: outside)
/// r/d/          directory           r/o -> ../x      (outside, relative)
/// r/d/f         file                r/a -> /         (outside, absolute)
/// r/i -> d      (inside)            r/p -> ../r2     (a sibling whose name extends the root's)
/// r/j -> d/f    (inside)            r/l -> l, r/m -> n (a loop, a dangling link)
/// x/s, r2/s     files outside the root
/// ```
fn fixture_root() -> &'static FsRoot {
    static ROOT: OnceLock<FsRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("rstream-fuzz-webdav-path-{}", std::process::id()));
        build_fixture(&base).unwrap_or_else(|e| panic!("building the fixture tree in {base:?}: {e}"));
        FsRoot::new(&base.join("r")).expect("fixture root")
    })
}

fn build_fixture(base: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(base);
    for dir in ["r/d", "x", "r2"] {
        std::fs::create_dir_all(base.join(dir))?;
    }
    for file in ["r/f", "r/d/f", "x/s", "r2/s"] {
        std::fs::write(base.join(file), file)?;
    }
    let links = [
        ("r/i", "d"),
        ("r/j", "d/f"),
        ("r/d/r", ".."),
        ("r/d/u", "../.."),
        ("r/o", "../x"),
        ("r/a", "/"),
        ("r/p", "../r2"),
        ("r/l", "l"),
        ("r/m", "n"),
    ];
    for (link, target) in links {
        symlink(target, base.join(link))?;
    }
    Ok(())
}
