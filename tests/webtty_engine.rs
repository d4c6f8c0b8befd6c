//! WebTTY through a real engine: `rstream webtty server --rstream` registers a labelled tunnel, operators run
//! `webtty exec --url rstrm://NAME` through a private stream, and the server re-registers after the engine
//! restarts.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tunnel::WebttyAgent;
use common::{wait_until, Engine};

fn exec(engine: &Engine, url: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(common::BIN)
        .args(["webtty", "exec", "--url", url])
        .args(args)
        .env("RSTREAM_CONFIG", engine.config_path())
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad json ({e}); stderr: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn exec_through_the_engine_reaches_a_private_webtty_tunnel() {
    let engine = Engine::start();
    let _server = WebttyAgent::start(&engine, &["--name", "shell", "--no-publish", "--label", "role=codex"]);
    let out = exec(&engine, "rstrm://shell", &["--", "sh", "-c", "echo out; echo err >&2; exit 3"], b"");
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let result = json(&out);
    assert_eq!((result["stdout"].as_str(), result["stderr"].as_str()), (Some("out\n"), Some("err\n")));
    assert_eq!(result["url"], "rstrm://shell/");

    let piped = exec(&engine, "rstrm://shell", &["-o", "text", "--", "tr", "a-z", "A-Z"], b"through the relay\n");
    assert!(piped.status.success(), "stderr: {}", String::from_utf8_lossy(&piped.stderr));
    assert_eq!(String::from_utf8_lossy(&piped.stdout), "THROUGH THE RELAY\n");

    let missing = exec(&engine, "rstrm://nope", &["--", "true"], b"");
    assert_eq!(missing.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
}

#[test]
fn webtty_tunnel_labels_reach_the_inventory_and_list_filters_by_them() {
    let engine = Engine::start();
    let _server = WebttyAgent::start(&engine, &["--name", "labelled", "--no-publish", "--label", "role=codex"]);
    let tunnel = engine.tunnels().into_iter().find(|t| t["name"] == "labelled").expect("tunnel listed");
    let labels = &tunnel["labels"];
    assert_eq!(labels["application-protocol"], "rstream.webtty");
    assert_eq!(labels["rstream.webtty.capabilities"], "exec");
    assert_eq!(labels["rstream.webtty.exec.path"], "/");
    assert_eq!(labels["rstream.webtty.execution.mode"], "spawn");
    assert_eq!(labels["rstream.webtty.label.role"], "codex");
    assert_eq!(labels["rstream.webtty.os_family"], std::env::consts::OS);
    assert!(labels["rstream.webtty.hostname"].as_str().is_some_and(|h| !h.is_empty()), "{labels}");
    assert!(labels.get("rstream.webtty.fs.path").is_none(), "exec-only server advertises no fs: {labels}");

    let list = Command::new(common::BIN)
        .args(["webtty", "list", "--filter", "labels.rstream.webtty.label.role=codex", "-o", "json"])
        .env("RSTREAM_CONFIG", engine.config_path())
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let servers: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let servers = servers.as_array().unwrap();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0]["rstream_url"], "rstrm://labelled");
    assert_eq!(servers[0]["capabilities"], serde_json::json!(["exec"]));
    assert_eq!(servers[0]["execution_mode"], "spawn");
}

#[test]
fn a_login_mode_server_advertises_it_and_webtty_list_shows_it() {
    let engine = Engine::start();
    // The server's own user: login mode needs no switch (and no root) for it.
    let me = Command::new("id").arg("-un").output().unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_owned();
    let flags = ["--name", "login-box", "--no-publish", "--execution-mode", "login", "--login-user", &me];
    let _server = WebttyAgent::start(&engine, &flags);
    let tunnel = engine.tunnels().into_iter().find(|t| t["name"] == "login-box").expect("tunnel listed");
    assert_eq!(tunnel["labels"]["rstream.webtty.execution.mode"], "login");
    let list = |format: &str| {
        let out = Command::new(common::BIN)
            .args(["webtty", "list", "--filter", "login-box", "-o", format])
            .env("RSTREAM_CONFIG", engine.config_path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let servers: serde_json::Value = serde_json::from_str(&list("json")).unwrap();
    assert_eq!(servers[0]["execution_mode"], "login", "{servers}");
    let table = list("table");
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let mode = header.iter().position(|c| *c == "MODE").expect("a MODE column");
    assert_eq!(row[mode], "login", "{table}");
    let out = exec(&engine, "rstrm://login-box", &["-o", "text", "--", "id", "-un"], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), me);
}

#[test]
fn fs_sidecar_server_advertises_exec_and_fs() {
    let engine = Engine::start();
    let root = common::TempDir::new("webtty-fs");
    let root_arg = root.path().to_str().unwrap().to_string();
    let _server =
        WebttyAgent::start(&engine, &["--name", "files", "--no-publish", "--fs-root", &root_arg, "--fs-read-only"]);
    let tunnel = engine.tunnels().into_iter().find(|t| t["name"] == "files").expect("tunnel listed");
    assert_eq!(tunnel["labels"]["rstream.webtty.capabilities"], "exec,fs");
    assert_eq!(tunnel["labels"]["rstream.webtty.fs.path"], "/fs");
    assert_eq!(tunnel["labels"]["rstream.webtty.fs.mode"], "read-only");
}

#[test]
fn published_webtty_server_is_exec_reachable_by_name() {
    let engine = Engine::start();
    let _server = WebttyAgent::start(&engine, &["--name", "pub-shell"]);
    let out = exec(&engine, "rstrm://pub-shell", &["--", "echo", "published"], b"");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["stdout"], "published\n");
}

#[test]
fn published_webtty_server_answers_wss_on_its_public_host_only_with_a_token() {
    let engine = Engine::start();
    let _server = WebttyAgent::start(&engine, &["--name", "public-shell"]);
    let token_file = engine.dir().join("operator-token");
    std::fs::write(&token_file, engine.operator_token()).unwrap();
    let url = format!("wss://127.0.0.1:{}", engine.port());
    let sni = ["--tls-server-name", "public-shell.t.localhost"];
    let mut args = sni.to_vec();
    args.extend(["--auth-token-file", token_file.to_str().unwrap(), "--", "echo", "via the public host"]);
    let out = exec(&engine, &url, &args, b"");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["stdout"], "via the public host\n");

    let mut args = sni.to_vec();
    args.extend(["--", "true"]);
    let refused = exec(&engine, &url, &args, b"");
    assert_eq!(refused.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("HTTP 401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn webtty_server_comes_back_after_an_engine_restart() {
    let mut engine = Engine::start();
    let server = WebttyAgent::start(&engine, &["--name", "phoenix", "--no-publish"]);
    engine.restart();
    server.wait_online();
    let out = wait_until(Duration::from_secs(30), "exec after the engine restart", || {
        let out = exec(&engine, "rstrm://phoenix", &["--", "echo", "back"], b"");
        out.status.success().then_some(out)
    });
    assert_eq!(json(&out)["stdout"], "back\n");
}
