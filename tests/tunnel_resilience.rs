//! The agent survives its engine: re-registers after an engine restart, and a frozen agent's tunnels leave the
//! engine's inventory within three heartbeats.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tunnel::{http_origin, https_get, signal, Forward, HELLO};
use common::{wait_until, Engine};

const ONLINE: Duration = Duration::from_secs(20);

/// Tunnel names listed by `GET /api/tunnels` (curl with the operator token).
fn listed_tunnels(engine: &Engine) -> Vec<String> {
    let port = engine.port();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(engine.ca_path())
        .args(["-H", &format!("Authorization: Bearer {}", engine.operator_token())])
        .arg(format!("https://localhost:{port}/api/tunnels"))
        .output()
        .expect("curl");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("GET /api/tunnels: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    list.as_array().expect("a JSON array").iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
}

#[test]
fn agent_reregisters_and_serves_again_within_5s_of_an_engine_restart() {
    let mut engine = Engine::start();
    let origin = http_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "web", "-o", "json"], &[]);
    forward.wait_online(1, ONLINE);
    assert_eq!(https_get(&engine, "web.t.localhost", "/").0, 200);

    engine.restart();
    let restarted = Instant::now();
    wait_until(Duration::from_secs(5), "the tunnel to serve again after the restart", || {
        let (status, body) = https_get(&engine, "web.t.localhost", "/");
        (status == 200 && body == HELLO.as_bytes()).then_some(())
    });
    eprintln!("tunnel served again {:?} after the engine restart", restarted.elapsed());
    let statuses: Vec<String> = forward.statuses().iter().map(|s| s["status"].as_str().unwrap().to_owned()).collect();
    assert!(statuses.iter().any(|s| s == "disconnected"), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("online"), "{statuses:?}");
}

#[test]
fn a_frozen_agent_leaves_the_inventory_within_three_heartbeats_and_comes_back() {
    let engine = Engine::start();
    let origin = http_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "frozen", "-o", "json"], &[]);
    forward.wait_online(1, ONLINE);
    assert_eq!(listed_tunnels(&engine), ["frozen"]);

    // SIGSTOP: the connection stays open but no heartbeat is sent any more.
    signal(forward.pid(), "STOP");
    let stopped = Instant::now();
    wait_until(Duration::from_secs(20), "the frozen agent's tunnel to leave the inventory", || {
        listed_tunnels(&engine).is_empty().then_some(())
    });
    let gone = stopped.elapsed();
    assert!(gone <= Duration::from_secs(17), "took {gone:?}, more than 3 heartbeats (15 s)");

    signal(forward.pid(), "CONT");
    forward.wait_online(2, ONLINE);
    assert_eq!(listed_tunnels(&engine), ["frozen"]);
}

#[test]
fn a_killed_agent_leaves_the_inventory_at_once() {
    let engine = Engine::start();
    let origin = http_origin();
    let mut forward = Forward::start(&engine, &origin.target(), &["--name", "killed", "-o", "json"], &[]);
    forward.wait_online(1, ONLINE);
    assert_eq!(listed_tunnels(&engine), ["killed"]);
    forward.kill();
    wait_until(Duration::from_secs(15), "the killed agent's tunnel to leave the inventory", || {
        listed_tunnels(&engine).is_empty().then_some(())
    });
}
