//! `rstream_remote_expose` / `rstream_remote_expose_stop` end to end: `rstream mcp serve` starts `rstream
//! forward` on a "device" (a `webtty server --rstream --allow-detach` on this machine) through one WebTTY exec;
//! the returned URL answers through the engine (host-routed, loopback); stop takes the tunnel down and the
//! forward's pid is dead. Against a server without `--allow-detach` the call fails naming the flag and starts
//! nothing.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
mod mcp_common;

use std::path::Path;
use std::time::Duration;

use common::tunnel::{http_origin, https_get, HELLO};
use common::{Engine, TempDir};
use mcp_common::{wait_for, Mcp, WebttyTunnel};
use serde_json::{json, Value};

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"))
}

fn tunnel_names(cfg: &Path) -> Vec<String> {
    let (code, out, err) = common::run(&["tunnels", "list", "-o", "json"], &[("RSTREAM_CONFIG", cfg)]);
    assert_eq!(code, 0, "tunnels list: {err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    all.as_array().unwrap().iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
}

/// The arguments that point the device's script at this test's engine and a scratch expose directory.
fn expose_args(cfg: &Path, dir: &Path, port: u16, name: &str) -> Value {
    json!({
        "webtty_url": "rstrm://exp-device",
        "port": port,
        "name": name,
        "id": format!("{name}/1"),
        "env": [format!("RSTREAM_CONFIG={}", cfg.display()), format!("RSTREAM_REMOTE_EXPOSE_DIR={}", dir.display())],
        "rstream_command": env!("CARGO_BIN_EXE_rstream"),
        "timeout_seconds": 30,
    })
}

#[tokio::test]
async fn an_exposed_device_port_answers_at_its_url_until_stopped() {
    let engine = Engine::start();
    let cfg = engine.config_path();
    let dir = TempDir::new("remote-expose");
    let _device = WebttyTunnel::start(&cfg, &["--name", "exp-device", "--no-publish", "--allow-detach"]);
    let origin = http_origin();
    let mcp = Mcp::start(&cfg, &[], None).await;

    let r = mcp.call("rstream_remote_expose", expose_args(&cfg, dir.path(), origin.port, "exp-web")).await;
    assert_eq!(r.is_error, Some(false), "{}", mcp_common::text(&r));
    let out = r.structured_content.clone().unwrap();
    assert_eq!((out["status"].as_str(), out["id"].as_str()), (Some("online"), Some("exp-web-1")), "{out}");
    let url = out["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://exp-web.t.localhost:"), "{url}");
    assert!(r.content.iter().any(|c| matches!(c, rmcp::model::ContentBlock::ResourceLink(l) if l.uri == url)));
    assert_eq!(out["forward"]["status"], "online");
    assert!(out["command"].as_array().unwrap().contains(&json!("rstream.remote.source=webtty")), "{out}");
    let pid: i64 = out["pid"].as_str().unwrap().parse().unwrap();
    assert!(dir.path().join("exp-web-1.log").exists() && dir.path().join("exp-web-1.pid").exists());

    // The exec session is over; the forward it started lives on and serves.
    let (status, body) = https_get(&engine, "exp-web.t.localhost", "/");
    assert_eq!((status, body.as_slice()), (200, HELLO.as_bytes()));
    assert!(alive(pid));

    let stop_args = json!({"webtty_url": "rstrm://exp-device", "id": "exp-web-1", "env": [format!("RSTREAM_REMOTE_EXPOSE_DIR={}", dir.path().display())]});
    let stop = mcp.ok("rstream_remote_expose_stop", stop_args.clone()).await;
    assert_eq!(stop["stopped"], json!(true), "{stop}");
    wait_for(Duration::from_secs(10), "the forward's pid to be dead", || (!alive(pid)).then_some(()));
    wait_for(Duration::from_secs(20), "the tunnel to leave the inventory", || {
        (!tunnel_names(&cfg).contains(&"exp-web".to_owned())).then_some(())
    });
    let again = mcp.call("rstream_remote_expose_stop", stop_args).await;
    assert_eq!(again.is_error, Some(true));
}

#[tokio::test]
async fn a_server_without_allow_detach_is_refused_naming_the_flag() {
    let engine = Engine::start();
    let cfg = engine.config_path();
    let dir = TempDir::new("remote-expose-denied");
    let _device = WebttyTunnel::start(&cfg, &["--name", "exp-device", "--no-publish"]);
    let mcp = Mcp::start(&cfg, &[], None).await;
    let err = mcp.err("rstream_remote_expose", expose_args(&cfg, dir.path(), 9, "exp-denied")).await;
    assert!(err.contains("--allow-detach") && err.contains("exp-device"), "{err}");
    assert!(!dir.path().join("exp-denied-1.pid").exists(), "something was started");
    let ro = Mcp::start_with(&cfg, &["--read-only"], &[], None).await;
    let refused = ro.err("rstream_remote_expose", expose_args(&cfg, dir.path(), 9, "exp-ro")).await;
    assert!(refused.contains("--read-only"), "{refused}");
}
