//! The device feature set must never pull tokio (or any second runtime) into the dependency tree.

use std::process::Command;

#[test]
fn device_dependency_tree_has_no_tokio() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-e", "normal", "--no-default-features", "--features", "device", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.lines().any(|l| l.starts_with("smol ")), "smol expected in the device tree:\n{tree}");
    for forbidden in ["tokio ", "async-std ", "rmcp "] {
        let hits: Vec<_> = tree.lines().filter(|l| l.starts_with(forbidden)).collect();
        assert!(hits.is_empty(), "{forbidden}found in the device dependency tree: {hits:?}");
    }
}
