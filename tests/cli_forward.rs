//! `rstream forward` as a user meets it, from the real binary: a tunnel name held by another subject ends the
//! command at once with "name in use by another tunnel" (unless `--retry`), and on a terminal the status block is
//! redrawn in place instead of scrolling a new copy for every change.

#![cfg(all(feature = "device", feature = "engine"))]

mod common;

use std::fs::File;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tunnel::{http_origin, wait_for_context, Forward};
use common::{wait_until, wait_until_or, ChildGuard, Engine, DEVICE};

const DEADLINE: Duration = Duration::from_secs(20);

/// A device token (register tunnels) for subject `sub`.
fn device_token(engine: &Engine, sub: &str) -> String {
    let state = engine.state_dir();
    let args = ["engine", "token", "--state-dir", state.to_str().unwrap(), "--permissions", DEVICE[0], "--sub", sub];
    let (code, out, err) = common::run(&args, &[]);
    assert_eq!(code, 0, "engine token failed: {err}");
    out.trim().to_owned()
}

#[test]
fn a_name_held_by_another_tunnel_ends_forward_at_once_unless_retry() {
    let engine = Engine::start();
    let origin = http_origin();
    let alice = device_token(&engine, "alice");
    let bob = device_token(&engine, "bob");
    let holder = Forward::start(
        &engine,
        &origin.target(),
        &["--name", "web", "-o", "json"],
        &[("RSTREAM_AUTHENTICATION_TOKEN", &alice)],
    );
    holder.wait_online(1, DEADLINE);

    let mut second =
        Forward::start(&engine, &origin.target(), &["--name", "web"], &[("RSTREAM_AUTHENTICATION_TOKEN", &bob)]);
    let code = second.wait_exit(DEADLINE);
    assert_ne!(code, 0);
    let err = second.stderr();
    assert!(err.contains("name in use by another tunnel") && err.contains("\"web\""), "{err}");
    let blocks = second.lines().iter().filter(|l| l.starts_with("tunnel status")).count();
    assert!(blocks <= 4, "one attempt, not a loop: {blocks} status blocks\n{:#?}", second.lines());

    let retrying = Forward::start(
        &engine,
        &origin.target(),
        &["--name", "web", "--retry", "--retry-interval", "100", "-o", "json"],
        &[("RSTREAM_AUTHENTICATION_TOKEN", &bob)],
    );
    wait_until_or(
        DEADLINE,
        || format!("--retry to try again after a refusal: {:#?}\n{}", retrying.lines(), retrying.stderr()),
        || {
            let failures = retrying
                .statuses()
                .iter()
                .filter(|s| s["status"].as_str().is_some_and(|s| s.contains("failed")))
                .count();
            (failures >= 2).then_some(())
        },
    );
}

#[test]
fn status_blocks_on_a_terminal_are_redrawn_in_place() {
    let engine = Engine::start();
    wait_for_context(&engine);
    let origin = http_origin();
    let pty = rstream::webtty::sys::open_pty(24, 100).unwrap();
    let child = Command::new(common::BIN)
        .args(["forward", &origin.target(), "--name", "tty-web"])
        .env("RSTREAM_CONFIG", engine.config_path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(pty.slave);
    let _child = ChildGuard(child);
    let screen = Arc::new(Mutex::new(String::new()));
    let mut master = File::from(pty.master);
    let sink = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    wait_until(DEADLINE, "forward online on the terminal", || {
        screen.lock().unwrap().contains("status     : online").then_some(())
    });
    let screen = screen.lock().unwrap().clone();
    let blocks = screen.matches("tunnel status").count();
    assert!(blocks >= 2, "expected several status changes: {screen:?}");
    // Every block after the first moves the cursor back up over the previous one and clears it.
    let redraws = screen.matches("\x1b[10A\x1b[J").count();
    assert_eq!(redraws, blocks - 1, "status blocks scroll instead of redrawing in place: {screen:?}");
}
