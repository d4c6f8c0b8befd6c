//! `webtty server --allow-detach`, the host's opt-in for processes that must outlive the session that started
//! them (remote expose's `rstream forward`): a process that left the command's session (`setsid`) survives,
//! is reaped by the lingering supervisor when it ends, while everything still in the command's session dies
//! as always. Without the flag the same `setsid` process dies with its session (tests/webtty_descendants.rs
//! covers every other escape). Sessions see the server's word in `RSTREAM_WEBTTY_DETACH`.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::time::Duration;

use webtty_support::*;

/// How long ending a session may take (the 2 s kill grace plus slack for a loaded machine).
const GONE_WITHIN: Duration = Duration::from_secs(10);

/// Starts a `setsid sleep` and a plain background `sleep` and returns (setsid pid, plain pid, the detach word).
fn start_both(server: &LocalServer) -> (i32, i32, String) {
    let script = "setsid sleep 300 >/dev/null 2>&1 & echo $!; sleep 301 >/dev/null 2>&1 & echo $!; \
                  echo \"$RSTREAM_WEBTTY_DETACH\"";
    let out = server.exec(&["-e", "RSTREAM_WEBTTY_DETACH=forged", "--", "sh", "-c", script]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = exec_json(&out)["stdout"].as_str().unwrap_or_default().to_owned();
    let lines: Vec<&str> = text.lines().collect();
    let pid = |i: usize| lines.get(i).and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("{text:?}"));
    (pid(0), pid(1), lines.get(2).unwrap_or(&"").to_string())
}

fn gone_within(pid: i32, limit: Duration) -> bool {
    poll(limit, || (!alive(pid)).then_some(())).is_some()
}

#[test]
fn with_allow_detach_a_setsid_process_outlives_its_session_and_the_rest_dies() {
    let server = LocalServer::start(&["--allow-detach"]);
    let (detached, attached, word) = start_both(&server);
    assert_eq!(word, "allowed");
    assert!(gone_within(attached, GONE_WITHIN), "the process left in the command's session survived");
    assert!(alive(detached), "the setsid process died with its session");
    // Another session's end (and its sweep) leaves it alone too.
    assert!(server.exec(&["--", "true"]).status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(detached), "a later session's end killed the detached process");
    // Ended by its owner, it is reaped at once (by the supervisor lingering for it), not left a zombie.
    unsafe_free_kill(detached);
    assert!(gone_within(detached, GONE_WITHIN), "the detached process was not reaped");
}

#[test]
fn without_it_the_same_setsid_process_dies_with_its_session() {
    let server = LocalServer::start(&[]);
    let (detached, attached, word) = start_both(&server);
    assert_eq!(word, "denied");
    assert!(gone_within(attached, GONE_WITHIN));
    assert!(gone_within(detached, GONE_WITHIN), "a setsid process outlived its session without --allow-detach");
}

/// SIGTERM through kill(1) (the tests keep `unsafe` out).
fn unsafe_free_kill(pid: i32) {
    assert!(std::process::Command::new("kill").arg(pid.to_string()).status().unwrap().success());
}
