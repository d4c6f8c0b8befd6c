//! Command-line conventions a user of kubectl, gh or ssh expects, from the real binary: the global flags
//! (`--config`, `--context`, `-v`) work anywhere on the line — except after `--`, where they belong to the remote
//! command — and a bare server name in `--url` (what the TARGET column of `webtty list` shows) is `rstrm://NAME`.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::process::{Command, Output, Stdio};

use common::tunnel::WebttyAgent;
use common::{Engine, TempDir, BIN};

/// `rstream args…` with the engine's config in `RSTREAM_CONFIG` unless `config_env` is false.
fn rstream(engine: &Engine, args: &[&str], config_env: bool) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    for k in ["RSTREAM_CONFIG", "RSTREAM_CONTEXT", "RSTREAM_ENGINE", "RSTREAM_AUTHENTICATION_TOKEN"] {
        cmd.env_remove(k);
    }
    if config_env {
        cmd.env("RSTREAM_CONFIG", engine.config_path());
    }
    // Without RSTREAM_CONFIG the default path is under HOME: point it at an empty directory.
    let home = engine.dir().join("home");
    std::fs::create_dir_all(&home).unwrap();
    cmd.env("HOME", &home).env_remove("XDG_CONFIG_HOME");
    cmd.output().expect("run rstream")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn global_flags_work_after_the_command_but_not_after_double_dash() {
    let engine = Engine::start();
    let _pi = WebttyAgent::start(&engine, &["--name", "pi", "--no-publish"]);
    let config = engine.config_path();
    let config = config.to_str().unwrap();

    let out = rstream(&engine, &["webtty", "list", "--context", "local", "-o", "json"], true);
    assert!(out.status.success(), "--context after the command: {}", stderr(&out));
    assert!(stdout(&out).contains("\"target\": \"pi\""), "{}", stdout(&out));

    let out = rstream(&engine, &["webtty", "list", "-o", "json", "--context", "nope"], true);
    assert!(!out.status.success(), "an unknown --context after the command must be applied, not ignored");
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));

    let out = rstream(&engine, &["tunnels", "list", "-o", "json", "--config", config], false);
    assert!(out.status.success(), "--config after the command: {}", stderr(&out));
    assert!(stdout(&out).contains("\"name\": \"pi\""), "{}", stdout(&out));

    let out = rstream(&engine, &["webtty", "list", "-v"], true);
    assert!(out.status.success(), "-v after the command: {}", stderr(&out));
    let out = rstream(&engine, &["context", "show", "--config", config, "-v", "--context", "local"], false);
    assert!(out.status.success(), "several global flags after the command: {}", stderr(&out));

    let out = rstream(
        &engine,
        &["webtty", "exec", "--url", "rstrm://pi", "-o", "text", "--", "echo", "-v", "--context", "x", "--config", "y"],
        true,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "-v --context x --config y\n", "flags after -- belong to the remote command");
}

#[test]
fn a_bare_server_name_in_url_is_an_rstrm_target() {
    let engine = Engine::start();
    let root = TempDir::new("fsroot");
    std::fs::write(root.path().join("hello.txt"), "hello").unwrap();
    let _pi = WebttyAgent::start(
        &engine,
        &["--name", "homelab-macmini", "--no-publish", "--fs-root", root.path().to_str().unwrap()],
    );

    let out = rstream(&engine, &["webtty", "exec", "--url", "homelab-macmini", "--", "echo", "hi"], true);
    assert!(out.status.success(), "exec --url NAME: {}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["url"].as_str(), json["stdout"].as_str()), (Some("rstrm://homelab-macmini/"), Some("hi\n")));

    let out = rstream(&engine, &["webtty", "fs", "ls", "/", "--url", "homelab-macmini", "-o", "json", "-v"], true);
    assert!(out.status.success(), "fs --url NAME: {}", stderr(&out));
    assert!(stdout(&out).contains("/hello.txt"), "{}", stdout(&out));

    // Host names and addresses keep meaning a direct ws:// server.
    let out = rstream(&engine, &["webtty", "exec", "--url", "127.0.0.1:1", "--", "true"], true);
    assert!(stderr(&out).contains("127.0.0.1:1"), "{}", stderr(&out));
}
