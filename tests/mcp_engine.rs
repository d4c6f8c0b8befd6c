//! `rstream mcp serve` against a live engine and `rstream webtty server --rstream` devices, driven by rmcp's
//! client as an agent would: runtime status → list (with label filters) → exec → fs, refusals by capability,
//! and a token that never reaches the agent.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
mod mcp_common;

use std::os::unix::fs::PermissionsExt;

use common::Engine;
use mcp_common::{context_token, scratch, text, wire, Mcp, WebttyTunnel};
use serde_json::{json, Value};

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        list["servers"].as_array().unwrap().iter().map(|s| s["target"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_agent_lists_servers_runs_commands_and_moves_files_through_the_engine() {
    let engine = Engine::start();
    let cfg = engine.config_path();
    let root = scratch("engine-fsroot");
    let _fs = WebttyTunnel::start(
        &cfg,
        &["--name", "mcp-files", "--no-publish", "--label", "role=codex", "--fs-root", root.to_str().unwrap()],
    );
    let _exec = WebttyTunnel::start(&cfg, &["--name", "mcp-shell", "--no-publish", "--label", "role=ops"]);
    let mcp = Mcp::start(&cfg, &[], None).await;
    let mut transcript = String::new();

    let status = mcp.call("rstream_runtime_status", json!({})).await;
    transcript += &wire(&status);
    let s = status.structured_content.clone().unwrap();
    assert_eq!((s["ready"].clone(), s["selected_context"].as_str()), (json!(true), Some("local")));
    assert_eq!(s["engine"], format!("localhost:{}", engine.port()));

    let all = mcp.call("rstream_webtty_list", json!({})).await;
    transcript += &wire(&all);
    assert_eq!(names(all.structured_content.as_ref().unwrap()), ["mcp-files", "mcp-shell"]);
    let codex = mcp.ok("rstream_webtty_list", json!({"filter": "labels.rstream.webtty.label.role=codex"})).await;
    assert_eq!(names(&codex), ["mcp-files"]);
    let server = &codex["servers"][0];
    assert_eq!(server["capabilities"], json!(["exec", "fs"]));
    assert_eq!(
        (server["rstream_url"].as_str(), server["fs_mode"].as_str()),
        (Some("rstrm://mcp-files"), Some("read-write"))
    );
    assert_eq!(server["labels"]["role"], "codex");
    assert_eq!(names(&mcp.ok("rstream_webtty_list", json!({"filter": "shell"})).await), ["mcp-shell"]);
    assert_eq!(names(&mcp.ok("rstream_webtty_list", json!({"name": "FILES"})).await), ["mcp-files"]);
    let shell = mcp.ok("rstream_webtty_list", json!({"filter": "labels.rstream.webtty.label.role=ops"})).await;
    assert_eq!(shell["servers"][0]["capabilities"], json!(["exec"]));
    for key in ["fs_path", "fs_mode", "fs_backend"] {
        assert!(shell["servers"][0].get(key).is_none(), "exec-only server listed with {key}: {shell}");
    }

    // exec through the engine, by rstream_url and by bare name.
    let v = mcp
        .ok("rstream_webtty_exec", json!({"url": "rstrm://mcp-shell", "command": ["echo", "through", "the relay"]}))
        .await;
    assert_eq!((v["stdout"].as_str(), v["exit_code"].clone()), (Some("through the relay\n"), json!(0)));
    let r = mcp
        .call("rstream_webtty_exec", json!({"url": "mcp-files", "command": ["sh", "-c", "echo nope >&2; exit 7"]}))
        .await;
    transcript += &wire(&r);
    let v = r.structured_content.clone().unwrap();
    assert_eq!((r.is_error, v["exit_code"].clone(), v["stderr"].as_str()), (Some(true), json!(7), Some("nope\n")));
    let msg = mcp.err("rstream_webtty_exec", json!({"url": "rstrm://no-such-server", "command": ["true"]})).await;
    assert!(msg.contains("no-such-server"), "{msg}");

    // fs on the exec-only server is refused by its capabilities, for reads and writes alike.
    for (tool, args) in [
        ("rstream_webtty_fs_list", json!({"url": "rstrm://mcp-shell"})),
        ("rstream_webtty_fs_write", json!({"url": "rstrm://mcp-shell", "path": "/x", "content": "x"})),
    ] {
        let msg = mcp.err(tool, args).await;
        assert!(msg.contains("mcp-shell") && msg.contains("advertises exec only"), "{tool}: {msg}");
        assert!(msg.contains("rstream_webtty_exec"), "{msg}");
    }

    // fs round trip on the fs server.
    mcp.ok("rstream_webtty_fs_mkdir", json!({"url": "rstrm://mcp-files", "path": "/reports"})).await;
    mcp.ok(
        "rstream_webtty_fs_write",
        json!({"url": "rstrm://mcp-files", "path": "/reports/today.md", "content": "# all good\n"}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(root.join("reports/today.md")).unwrap(), "# all good\n");
    let listing = mcp.ok("rstream_webtty_fs_list", json!({"url": "rstrm://mcp-files", "path": "/reports"})).await;
    assert_eq!(listing["entries"][0]["path"], "/reports/today.md");
    assert_eq!(listing["entries"][0]["size"], 11);
    let r = mcp.call("rstream_webtty_fs_read", json!({"url": "rstrm://mcp-files", "path": "/reports/today.md"})).await;
    assert_eq!((r.is_error, text(&r)), (Some(false), "# all good\n".to_owned()));
    let local = scratch("engine-download").join("got/today.md");
    let d = mcp
        .ok(
            "rstream_webtty_fs_download",
            json!({"url": "rstrm://mcp-files", "path": "/reports/today.md", "local_path": local.to_str().unwrap()}),
        )
        .await;
    assert_eq!(d["bytes"], 11);
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "# all good\n");
    assert_eq!(std::fs::metadata(&local).unwrap().permissions().mode() & 0o777, 0o600);
    mcp.ok("rstream_webtty_fs_delete", json!({"url": "rstrm://mcp-files", "path": "/reports"})).await;
    assert!(!root.join("reports").exists());

    transcript += &wire(&mcp.call("rstream_context_list", json!({})).await);
    transcript += &wire(&mcp.call("rstream_context_get", json!({"name": "local"})).await);
    let token = context_token(&cfg);
    assert!(token.len() > 20, "config token {token:?}");
    assert!(!transcript.contains(&token), "the context token reached the agent");
    assert!(!mcp.stderr().contains(&token), "the context token reached the server log");
}

#[tokio::test]
async fn a_read_only_filesystem_allows_reads_and_refuses_changes_up_front() {
    let engine = Engine::start();
    let cfg = engine.config_path();
    let root = scratch("engine-ro");
    std::fs::write(root.join("motd"), "read me\n").unwrap();
    let _ro = WebttyTunnel::start(
        &cfg,
        &["--name", "mcp-ro", "--no-publish", "--fs-root", root.to_str().unwrap(), "--fs-read-only"],
    );
    let mcp = Mcp::start(&cfg, &[], None).await;
    let r = mcp.call("rstream_webtty_fs_read", json!({"url": "rstrm://mcp-ro", "path": "motd"})).await;
    assert_eq!(text(&r), "read me\n");
    for (tool, args) in [
        ("rstream_webtty_fs_write", json!({"url": "rstrm://mcp-ro", "path": "/motd", "content": "changed"})),
        ("rstream_webtty_fs_mkdir", json!({"url": "rstrm://mcp-ro", "path": "/d"})),
        ("rstream_webtty_fs_delete", json!({"url": "rstrm://mcp-ro", "path": "/motd"})),
    ] {
        let msg = mcp.err(tool, args).await;
        assert!(msg.contains("read-only"), "{tool}: {msg}");
    }
    assert_eq!(std::fs::read_to_string(root.join("motd")).unwrap(), "read me\n");
}

#[tokio::test]
async fn webtty_list_with_wait_seconds_answers_as_soon_as_a_matching_server_comes_online() {
    let engine = Engine::start();
    let cfg = engine.config_path();
    let mcp = Mcp::start(&cfg, &[], None).await;
    let too_long = mcp.call("rstream_webtty_list", json!({"wait_seconds": 121})).await;
    assert_eq!(too_long.is_error, Some(true));
    assert!(text(&too_long).contains("at most 120"), "{}", text(&too_long));

    let started = std::time::Instant::now();
    let none = mcp.ok("rstream_webtty_list", json!({"name": "nobody", "wait_seconds": 1})).await;
    assert_eq!(none["servers"], json!([]));
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "it waited");

    // The call starts waiting before the server exists; the server comes up meanwhile.
    let started = std::time::Instant::now();
    let device = cfg.clone();
    let (listed, server) = tokio::join!(
        mcp.ok("rstream_webtty_list", json!({"filter": "labels.rstream.webtty.label.role=late", "wait_seconds": 60})),
        async {
            // The call is waiting once its subscription is open; only then does the server start.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while engine.metric("rstream_engine_event_subscribers") != Some(1) {
                assert!(std::time::Instant::now() < deadline, "the waiting call never subscribed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            tokio::task::spawn_blocking(move || {
                WebttyTunnel::start(&device, &["--name", "late-shell", "--no-publish", "--label", "role=late"])
            })
            .await
        }
    );
    let _server = server.unwrap();
    assert_eq!(names(&listed), ["late-shell"], "{listed}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "answered when it came up: {:?}",
        started.elapsed()
    );
}
