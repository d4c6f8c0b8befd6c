//! Interoperability: the real `rclone` (Debian package, installed by `make deps` / `cross/install-deps.sh`)
//! lists, uploads, downloads, moves and deletes through the handler served on a loopback port.

mod webdav_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use webdav_common::{snapshot, temp_files, DavServer, TempDir, Tree};

/// Runs rclone against the server (remote `:webdav:` configured through the environment) within a deadline;
/// returns stdout, panicking with stderr on failure.
fn rclone(server: &DavServer, config: &Path, args: &[&str]) -> String {
    let mut child = Command::new("rclone")
        .args(args)
        .env("RCLONE_CONFIG", config)
        .env("RCLONE_WEBDAV_URL", format!("{}/fs", server.url()))
        .env("RCLONE_WEBDAV_VENDOR", "other")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run rclone ({e}): install it with `make deps` (cross/install-deps.sh)"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rclone {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "rclone {args:?} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn rclone_lists_copies_moves_and_deletes() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    let work = TempDir::new("rclone");
    let config = work.0.join("rclone.conf");
    std::fs::write(&config, "").unwrap();
    let local = work.0.join("local");
    std::fs::create_dir_all(local.join("nested/deeper")).unwrap();
    std::fs::write(local.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(local.join("name with space & more.txt"), b"spaced\n").unwrap();
    std::fs::write(local.join("été.txt"), "accents\n").unwrap();
    let blob: Vec<u8> = (0..700_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(local.join("nested/deeper/blob.bin"), &blob).unwrap();

    rclone(&server, &config, &["copy", local.to_str().unwrap(), ":webdav:backup"]);
    assert_eq!(snapshot(&local), snapshot(&tree.root.join("backup")), "upload is byte-identical");
    assert!(temp_files(&tree.root.join("backup")).is_empty());

    let listed = rclone(&server, &config, &["lsf", "-R", ":webdav:backup"]);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["a.txt", "name with space & more.txt", "nested/", "nested/deeper/", "nested/deeper/blob.bin", "été.txt"]
    );
    let root_listing = rclone(&server, &config, &["lsf", ":webdav:"]);
    assert!(root_listing.lines().any(|l| l == "hello.txt"), "{root_listing}");
    assert!(!root_listing.contains("to_etc") && !root_listing.contains("sentinel"), "{root_listing}");

    let back = work.0.join("back");
    rclone(&server, &config, &["copy", ":webdav:backup", back.to_str().unwrap()]);
    assert_eq!(snapshot(&back), snapshot(&local), "download is byte-identical");

    rclone(&server, &config, &["moveto", ":webdav:backup/a.txt", ":webdav:backup/nested/a-moved.txt"]);
    assert!(!tree.root.join("backup/a.txt").exists());
    assert_eq!(std::fs::read(tree.root.join("backup/nested/a-moved.txt")).unwrap(), b"alpha\n");
    rclone(&server, &config, &["delete", ":webdav:backup/été.txt"]);
    assert!(!tree.root.join("backup/été.txt").exists());
    rclone(&server, &config, &["purge", ":webdav:backup/nested"]);
    assert!(!tree.root.join("backup/nested").exists());
    rclone(&server, &config, &["mkdir", ":webdav:made/by/rclone"]);
    assert!(tree.root.join("made/by/rclone").is_dir());
    tree.assert_outside_untouched();
}
