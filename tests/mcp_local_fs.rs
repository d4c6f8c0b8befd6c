//! The fs tools of `rstream mcp serve` against a real local `rstream webtty server --listen --fs-root DIR` (ws://,
//! no engine): a full round trip (mkdir, write, list, read with caps and encodings, download, delete) and token
//! scrubbing of file contents.

mod mcp_common;
mod webtty_support;

use std::os::unix::fs::PermissionsExt;

use mcp_common::{scratch, text, wire, Mcp};
use serde_json::json;
use webtty_support::LocalServer;

async fn session(tag: &str, server: &LocalServer) -> Mcp {
    let dir = scratch(tag);
    Mcp::start(&dir.join("config.yaml"), &[("RSTREAM_WEBTTY_AUTH_TOKEN", &server.token)], None).await
}

#[tokio::test]
async fn fs_tools_round_trip_write_read_list_mkdir_download_delete() {
    let files = scratch("fsroot");
    let server = LocalServer::start(&["--fs-root", files.to_str().unwrap()]);
    let mcp = session("fs", &server).await;
    let url = server.url();

    assert_eq!(mcp.ok("rstream_webtty_fs_mkdir", json!({"url": url, "path": "/notes"})).await["ok"], true);
    let w =
        mcp.ok("rstream_webtty_fs_write", json!({"url": url, "path": "notes/a.txt", "content": "hello agent\n"})).await;
    assert_eq!(
        (w["ok"].clone(), w["path"].clone(), w["bytes"].clone()),
        (json!(true), json!("/notes/a.txt"), json!(12))
    );
    assert_eq!(std::fs::read_to_string(files.join("notes/a.txt")).unwrap(), "hello agent\n");
    mcp.ok(
        "rstream_webtty_fs_write",
        json!({"url": url, "path": "/notes/bin", "content": "AAEC/w==", "encoding": "base64"}),
    )
    .await;
    assert_eq!(std::fs::read(files.join("notes/bin")).unwrap(), [0, 1, 2, 255]);

    let listing = mcp.ok("rstream_webtty_fs_list", json!({"url": url, "path": "/notes"})).await;
    let mut entries: Vec<(String, String)> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_owned(), e["kind"].as_str().unwrap().to_owned()))
        .collect();
    entries.sort();
    assert_eq!(entries, [("/notes/a.txt".into(), "file".into()), ("/notes/bin".into(), "file".into())]);
    let top = mcp.ok("rstream_webtty_fs_list", json!({"url": url})).await;
    assert!(
        top["entries"].as_array().unwrap().iter().any(|e| e["path"] == "/notes" && e["kind"] == "directory"),
        "{top}"
    );

    let r = mcp.call("rstream_webtty_fs_read", json!({"url": url, "path": "/notes/a.txt"})).await;
    assert_eq!((r.is_error, text(&r)), (Some(false), "hello agent\n".to_owned()));
    let facts = r.structured_content.clone().unwrap();
    assert_eq!((facts["truncated"].clone(), facts["size"].clone()), (json!(false), json!(12)));
    let r = mcp.call("rstream_webtty_fs_read", json!({"url": url, "path": "/notes/a.txt", "max_bytes": 5})).await;
    let facts = r.structured_content.clone().unwrap();
    assert_eq!((facts["content"].clone(), facts["truncated"].clone()), (json!("hello"), json!(true)));
    assert!(text(&r).starts_with("hello\n[truncated after 5 bytes"), "{}", text(&r));
    let b = mcp.ok("rstream_webtty_fs_read", json!({"url": url, "path": "/notes/bin", "encoding": "base64"})).await;
    assert_eq!((b["encoding"].clone(), b["content"].clone()), (json!("base64"), json!("AAEC/w==")));
    let msg = mcp.err("rstream_webtty_fs_read", json!({"url": url, "path": "/notes/bin"})).await;
    assert!(msg.contains("not UTF-8") && msg.contains("base64"), "{msg}");
    let msg = mcp.err("rstream_webtty_fs_read", json!({"url": url, "path": "/notes/missing"})).await;
    assert!(msg.contains("404") && msg.contains("no such file"), "{msg}");
    let msg = mcp.err("rstream_webtty_fs_read", json!({"url": url, "path": "/notes"})).await;
    assert!(msg.contains("is a directory"), "{msg}");

    let local = scratch("download").join("new/sub/a.txt");
    let d = mcp
        .ok(
            "rstream_webtty_fs_download",
            json!({"url": url, "path": "/notes/a.txt", "local_path": local.to_str().unwrap()}),
        )
        .await;
    assert_eq!((d["ok"].clone(), d["bytes"].clone(), d["path"].as_str()), (json!(true), json!(12), local.to_str()));
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "hello agent\n");
    assert_eq!(std::fs::metadata(&local).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(local.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    std::fs::write(&local, "local edits").unwrap();
    let msg = mcp
        .err(
            "rstream_webtty_fs_download",
            json!({"url": url, "path": "/notes/a.txt", "local_path": local.to_str().unwrap()}),
        )
        .await;
    assert!(msg.contains("overwrite=true"), "{msg}");
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "local edits", "refused download must not touch the file");
    mcp.ok(
        "rstream_webtty_fs_download",
        json!({"url": url, "path": "/notes/a.txt", "local_path": local.to_str().unwrap(), "overwrite": true}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "hello agent\n");
    let leftovers: Vec<_> =
        std::fs::read_dir(local.parent().unwrap()).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");

    let msg = mcp.err("rstream_webtty_fs_delete", json!({"url": url, "path": "/"})).await;
    assert!(msg.contains("root"), "{msg}");
    mcp.ok("rstream_webtty_fs_delete", json!({"url": url, "path": "/notes/a.txt"})).await;
    assert!(!files.join("notes/a.txt").exists());
    mcp.ok("rstream_webtty_fs_delete", json!({"url": url, "path": "/notes"})).await;
    assert!(!files.join("notes").exists());
    let top = mcp.ok("rstream_webtty_fs_list", json!({"url": url})).await;
    assert_eq!(top["entries"], json!([]));
}

#[tokio::test]
async fn a_token_read_back_from_a_remote_file_is_scrubbed() {
    let files = scratch("scrub-root");
    let server = LocalServer::start(&["--fs-root", files.to_str().unwrap()]);
    let mcp = session("scrub", &server).await;
    let url = server.url();
    std::fs::write(files.join("leak.txt"), format!("token={}\n", server.token)).unwrap();
    let r = mcp.call("rstream_webtty_fs_read", json!({"url": url, "path": "/leak.txt"})).await;
    assert_eq!(text(&r), "token=[redacted]\n");
    let r = mcp
        .call("rstream_webtty_exec", json!({"url": url, "command": ["cat", files.join("leak.txt").to_str().unwrap()]}))
        .await;
    assert!(!wire(&r).contains(&server.token), "{}", wire(&r));
}

#[tokio::test]
async fn a_download_never_writes_through_a_planted_symlink_and_leaves_no_temp_file() {
    let files = scratch("symlink-root");
    std::fs::write(files.join("report.txt"), "from the device\n").unwrap();
    let server = LocalServer::start(&["--fs-root", files.to_str().unwrap()]);
    let mcp = session("symlink", &server).await;
    let url = server.url();
    let local = scratch("symlink-local");
    let victim = scratch("symlink-victim").join("victim.txt");
    std::fs::write(&victim, "victim\n").unwrap();
    let download = |dest: &std::path::Path, overwrite: bool| json!({"url": url, "path": "/report.txt", "local_path": dest.to_str().unwrap(), "overwrite": overwrite});

    // Someone sharing the destination directory plants links where the file will land.
    let link = local.join("link.txt");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let dangling = local.join("dangling.txt");
    let would_create = local.join("created-through-the-link.txt");
    std::os::unix::fs::symlink(&would_create, &dangling).unwrap();
    for dest in [&link, &dangling] {
        let msg = mcp.err("rstream_webtty_fs_download", download(dest, false)).await;
        assert!(msg.contains("overwrite=true"), "{}: {msg}", dest.display());
    }
    assert!(!would_create.exists(), "the download followed a dangling symlink");
    mcp.ok("rstream_webtty_fs_download", download(&link, true)).await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim\n", "the download wrote through the symlink");
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "from the device\n");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_file(), "the link was replaced by the file");
    let mut names: Vec<String> =
        std::fs::read_dir(&local).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["dangling.txt", "link.txt"], "temp files left");
}

#[tokio::test]
async fn stat_move_and_upload_keep_existing_files_unless_told_to_overwrite() {
    let files = scratch("fsroot-move");
    let server = LocalServer::start(&["--fs-root", files.to_str().unwrap()]);
    let mcp = session("fs-move", &server).await;
    let url = server.url();
    std::fs::write(files.join("a.txt"), "aaa").unwrap();
    std::fs::write(files.join("b.txt"), "bbbb").unwrap();

    let s = mcp.ok("rstream_webtty_fs_stat", json!({"url": url, "path": "a.txt"})).await;
    assert_eq!((s["path"].as_str(), s["kind"].as_str(), s["size"].clone()), (Some("/a.txt"), Some("file"), json!(3)));
    let msg = mcp.err("rstream_webtty_fs_stat", json!({"url": url, "path": "/nope"})).await;
    assert!(msg.contains("no such file or directory"), "{msg}");

    let msg = mcp.err("rstream_webtty_fs_move", json!({"url": url, "path": "/a.txt", "destination": "/b.txt"})).await;
    assert!(msg.contains("overwrite=true"), "{msg}");
    assert_eq!(std::fs::read_to_string(files.join("b.txt")).unwrap(), "bbbb");
    let moved = mcp
        .ok("rstream_webtty_fs_move", json!({"url": url, "path": "/a.txt", "destination": "/b.txt", "overwrite": true}))
        .await;
    assert_eq!((moved["path"].as_str(), moved["destination"].as_str()), (Some("/a.txt"), Some("/b.txt")));
    assert!(!files.join("a.txt").exists());
    assert_eq!(std::fs::read_to_string(files.join("b.txt")).unwrap(), "aaa");

    let local = scratch("fs-upload").join("up.txt");
    std::fs::write(&local, "from this machine\n").unwrap();
    let up = json!({"url": url, "local_path": local.to_str().unwrap(), "path": "/b.txt"});
    let msg = mcp.err("rstream_webtty_fs_upload", up.clone()).await;
    assert!(msg.contains("exists") && msg.contains("overwrite=true"), "{msg}");
    assert_eq!(std::fs::read_to_string(files.join("b.txt")).unwrap(), "aaa");
    let mut forced = up.clone();
    forced["overwrite"] = json!(true);
    assert_eq!(mcp.ok("rstream_webtty_fs_upload", forced).await["bytes"], 18);
    assert_eq!(std::fs::read_to_string(files.join("b.txt")).unwrap(), "from this machine\n");
    let fresh = json!({"url": url, "local_path": local.to_str().unwrap(), "path": "/new/up.txt"});
    let msg = mcp.err("rstream_webtty_fs_upload", fresh).await;
    assert!(msg.contains("rstream_webtty_fs_mkdir"), "a missing parent is explained: {msg}");
}
