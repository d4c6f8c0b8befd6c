//! The agent survives its engine: re-registers after an engine restart, and a frozen agent's tunnels leave the
//! engine's inventory within three heartbeats.

mod common;

use std::time::{Duration, Instant};

use common::tunnel::{http_origin, https_get, signal, Forward, HELLO};
use common::{wait_until, Engine};

const ONLINE: Duration = Duration::from_secs(20);

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
    assert_eq!(engine.tunnel_names(), ["frozen"]);

    // SIGSTOP: the connection stays open but no heartbeat is sent any more.
    signal(forward.pid(), "STOP");
    let stopped = Instant::now();
    wait_until(Duration::from_secs(20), "the frozen agent's tunnel to leave the inventory", || {
        engine.tunnel_names().is_empty().then_some(())
    });
    let gone = stopped.elapsed();
    assert!(gone <= Duration::from_secs(17), "took {gone:?}, more than 3 heartbeats (15 s)");

    signal(forward.pid(), "CONT");
    forward.wait_online(2, ONLINE);
    assert_eq!(engine.tunnel_names(), ["frozen"]);
}

#[test]
fn a_killed_agent_leaves_the_inventory_at_once() {
    let engine = Engine::start();
    let origin = http_origin();
    let mut forward = Forward::start(&engine, &origin.target(), &["--name", "killed", "-o", "json"], &[]);
    forward.wait_online(1, ONLINE);
    assert_eq!(engine.tunnel_names(), ["killed"]);
    forward.kill();
    wait_until(Duration::from_secs(15), "the killed agent's tunnel to leave the inventory", || {
        engine.tunnel_names().is_empty().then_some(())
    });
}
