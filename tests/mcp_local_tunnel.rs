//! `rstream_local_tunnel_expose|list|stop` against a live engine: a port of this machine published through a
//! supervised `rstream forward`, reachable with curl at its public URL, labelled like upstream, listed, and
//! taken down by stop — also from a later MCP session after the one that started it has exited.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
mod mcp_common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Engine;
use mcp_common::{wait_for, wait_for_context, Mcp};
use serde_json::{json, Value};

/// A tiny HTTP origin on 127.0.0.1 answering every request with `body`; returns its port.
fn serve_http(body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).map(|n| n == 1).unwrap_or(false) {
                head.push(byte[0]);
            }
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    port
}

/// `curl` the published URL through the engine (its CA, `*.t.localhost` pinned to loopback): (status, body).
fn curl(engine: &Engine, url: &str) -> (String, String) {
    let host = url.trim_start_matches("https://").split(':').next().unwrap().to_owned();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", "--cacert"])
        .arg(engine.ca_path())
        .args(["--resolve", &format!("{host}:{}:127.0.0.1", engine.port()), url])
        .output()
        .expect("run curl (installed by cross/install-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_owned(), body.to_owned())
}

fn tunnel_labels(cfg: &Path, name: &str) -> Value {
    let (code, out, err) = common::run(&["tunnels", "list", "-o", "json"], &[("RSTREAM_CONFIG", cfg)]);
    assert_eq!(code, 0, "tunnels list: {err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    all.as_array().unwrap().iter().find(|t| t["name"] == name).map(|t| t["labels"].clone()).unwrap_or(Value::Null)
}

/// Kills every `forward` recorded in the registry next to `config` when dropped, so a failing test does not
/// leave detached tunnels running.
struct ForwardReaper(std::path::PathBuf);

impl Drop for ForwardReaper {
    fn drop(&mut self) {
        let registry = self.0.parent().unwrap().join("mcp-local-tunnels.json");
        let Ok(text) = std::fs::read_to_string(registry) else { return };
        let Ok(v) = serde_json::from_str::<Value>(&text) else { return };
        for t in v["tunnels"].as_array().into_iter().flatten() {
            if let Some(pid) = t["pid"].as_u64() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
    }
}

fn process_gone(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.split(' ').nth(2) == Some("Z"))
}

#[tokio::test]
async fn expose_publishes_a_local_port_and_stop_takes_it_down() {
    let engine = Engine::start();
    let cfg = engine.config_path();
    let _reaper = ForwardReaper(cfg.clone());
    wait_for_context(&cfg);
    let origin = serve_http("hello from the operator's machine");
    let mcp = Mcp::start(&cfg, &[], None).await;

    let t = mcp
        .ok(
            "rstream_local_tunnel_expose",
            json!({"port": origin.to_string(), "name": "mcp-web", "labels": ["team=qa"]}),
        )
        .await;
    let url = format!("https://mcp-web.t.localhost:{}", engine.port());
    assert_eq!(t["url"], url, "{t}");
    assert_eq!((t["protocol"].as_str(), t["publish"].clone()), (Some("http"), json!(true)));
    assert_eq!(t["cleanup_tool"], "rstream_local_tunnel_stop");
    assert_eq!(t["cleanup_id"], t["id"]);
    assert!(t["id"].as_str().unwrap().starts_with("lt-"), "{t}");
    let pid = t["pid"].as_u64().unwrap();

    assert_eq!(curl(&engine, &url), ("200".into(), "hello from the operator's machine".into()));
    let labels = tunnel_labels(&cfg, "mcp-web");
    assert_eq!(labels["application-protocol"], "rstream.local_tunnel", "{labels}");
    assert_eq!(labels["rstream.local_tunnel.kind"], "codex");
    assert_eq!(labels["rstream.local_tunnel.port"], origin.to_string());
    assert_eq!(labels["team"], "qa");

    let dir = cfg.parent().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("mcp-local-tunnels.json")), 0o600);
    assert_eq!(mode(&dir.join("mcp-local-tunnels")), 0o700);

    let list = mcp.ok("rstream_local_tunnel_list", json!({})).await;
    let entries = list["local_tunnels"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!((entries[0]["id"].clone(), entries[0]["status"].as_str()), (t["id"].clone(), Some("running")));

    let msg = mcp.err("rstream_local_tunnel_expose", json!({"port": origin.to_string(), "name": "mcp-web"})).await;
    assert!(msg.contains("already running"), "{msg}");
    // Local tunnels are not WebTTY servers.
    assert_eq!(mcp.ok("rstream_webtty_list", json!({})).await["servers"], json!([]));

    let stopped = mcp.ok("rstream_local_tunnel_stop", json!({"id": t["id"]})).await;
    assert_eq!((stopped["ok"].clone(), stopped["was_running"].clone()), (json!(true), json!(true)));
    wait_for(Duration::from_secs(10), "the forward process to end", || process_gone(pid).then_some(()));
    wait_for(Duration::from_secs(20), "the public URL to stop answering", || {
        (curl(&engine, &url).0 != "200").then_some(())
    });
    assert_eq!(mcp.ok("rstream_local_tunnel_list", json!({})).await["local_tunnels"], json!([]));
    let msg = mcp.err("rstream_local_tunnel_stop", json!({"id": t["id"]})).await;
    assert!(msg.contains("no local tunnel"), "{msg}");

    let private = mcp
        .ok("rstream_local_tunnel_expose", json!({"port": origin.to_string(), "name": "mcp-private", "publish": false}))
        .await;
    assert_eq!((private["url"].as_str(), private["publish"].clone()), (Some("rstrm://mcp-private"), json!(false)));
    let stopped = mcp.ok("rstream_local_tunnel_stop", json!({"id": "mcp-private"})).await;
    assert_eq!(stopped["was_running"], json!(true));
}

#[tokio::test]
async fn a_tunnel_outlives_the_session_that_started_it_and_a_later_session_stops_it() {
    let engine = Engine::start();
    let cfg = engine.config_path();
    let _reaper = ForwardReaper(cfg.clone());
    wait_for_context(&cfg);
    let origin = serve_http("still here");
    let first = Mcp::start(&cfg, &[], None).await;
    let t = first.ok("rstream_local_tunnel_expose", json!({"port": origin.to_string(), "name": "mcp-lasting"})).await;
    let pid = t["pid"].as_u64().unwrap();
    drop(first); // kills `mcp serve`; the forward runs in its own process group and stays up
    let url = t["url"].as_str().unwrap().to_owned();
    wait_for(Duration::from_secs(10), "the first MCP server to exit", || {
        // The tunnel keeps answering while its MCP server is gone.
        (curl(&engine, &url).1 == "still here").then_some(())
    });
    assert!(!process_gone(pid));

    let second = Mcp::start(&cfg, &[], None).await;
    let list = second.ok("rstream_local_tunnel_list", json!({})).await;
    assert_eq!(list["local_tunnels"][0]["status"], "running", "{list}");
    let stopped = second.ok("rstream_local_tunnel_stop", json!({"id": t["tunnel_id"]})).await;
    assert_eq!(stopped["was_running"], json!(true));
    wait_for(Duration::from_secs(10), "the forward process to end", || process_gone(pid).then_some(()));
}

#[tokio::test]
async fn a_forward_that_cannot_go_online_is_an_error_with_its_log() {
    let dir = mcp_common::scratch("lt-noengine");
    let cfg = dir.join("config.yaml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &cfg,
        format!(
            "version: 1\ndefaults:\n  context:\n    name: gone\ncontexts:\n- name: gone\n  engine: 127.0.0.1:{port}\n  \
             auth:\n    token:\n      storage:\n        kind: inline\n        value: eyJ.not-a-real-token.sig\n"
        ),
    )
    .unwrap();
    let mcp = Mcp::start(&cfg, &[], None).await;
    let msg = mcp.err("rstream_local_tunnel_expose", json!({"port": "3000", "name": "mcp-nowhere"})).await;
    assert!(msg.contains("connection failed") && msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert_eq!(mcp.ok("rstream_local_tunnel_list", json!({})).await["local_tunnels"], json!([]));
    let logs: Vec<_> = std::fs::read_dir(dir.join("mcp-local-tunnels")).unwrap().collect();
    assert!(logs.is_empty(), "the failed forward's log is cleaned up: {logs:?}");
}

#[tokio::test]
async fn listing_is_read_only_an_exited_tunnel_stays_listed_until_stopped() {
    let engine = Engine::start();
    let cfg = engine.config_path();
    let _reaper = ForwardReaper(cfg.clone());
    wait_for_context(&cfg);
    let origin = serve_http("short-lived");
    let mcp = Mcp::start(&cfg, &[], None).await;
    let t = mcp
        .ok("rstream_local_tunnel_expose", json!({"port": origin.to_string(), "name": "mcp-gone", "publish": false}))
        .await;
    let pid = t["pid"].as_u64().unwrap();
    Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    let mut exited = None;
    for _ in 0..500 {
        let list = mcp.ok("rstream_local_tunnel_list", json!({})).await;
        if list["local_tunnels"][0]["status"] == "exited" {
            exited = Some(list);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = exited.expect("the killed forward is reported as exited");
    // Listing again changes nothing: the same entry, still exited (annotated readOnlyHint: true).
    let second = mcp.ok("rstream_local_tunnel_list", json!({})).await;
    assert_eq!(second["local_tunnels"].as_array().map(Vec::len), Some(1), "{second}");
    assert_eq!(
        (second["local_tunnels"][0]["id"].clone(), second["local_tunnels"][0]["status"].as_str()),
        (t["id"].clone(), Some("exited"))
    );
    assert!(first["local_tunnels"][0]["log_tail"].is_string());
    let stopped = mcp.ok("rstream_local_tunnel_stop", json!({"id": t["id"]})).await;
    assert_eq!(stopped["was_running"], json!(false));
    assert_eq!(mcp.ok("rstream_local_tunnel_list", json!({})).await["local_tunnels"], json!([]));
}
