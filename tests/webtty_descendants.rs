//! Sessions end completely: a command that tries to outlive its session — `setsid`, a double-forked daemon,
//! `nohup`, killing its own supervisor — is gone within a deadline after the session times out, the client
//! dies or the command exits; a concurrent session keeps its processes; the command sees only descriptors 0–2
//! even when the server inherited more. All against the real `rstream webtty server --listen`.
//!
//! Every process a test starts carries a unique `RSTREAM_TEST_MARKER` in its environment (inherited by every
//! descendant), so the tests find them in `/proc` whatever they re-parented to.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use webtty_support::*;

/// How long ending a session may take (the 2 s kill grace plus slack for a loaded machine).
const GONE_WITHIN: Duration = Duration::from_secs(10);

/// A marker unique to this test process and call.
fn marker(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Live (not zombie) pids whose environment holds `RSTREAM_TEST_MARKER=<marker>`.
fn marked(marker: &str) -> Vec<i32> {
    let needle = format!("RSTREAM_TEST_MARKER={marker}");
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| alive(pid))
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// Waits until at least `n` marked processes run.
fn wait_marked(marker: &str, n: usize) {
    let found = poll(Duration::from_secs(10), || (marked(marker).len() >= n).then_some(()));
    assert!(found.is_some(), "expected {n} processes marked {marker}, found {:?}", marked(marker));
}

/// Waits until exactly `n` marked processes run and `commands` are among their command lines.
fn wait_steady(marker: &str, commands: &[&str], n: usize) {
    let steady = || {
        let pids = marked(marker);
        let running = describe(&pids);
        let all_there = commands.iter().all(|c| running.iter().any(|r| r.trim_end().ends_with(&format!(": {c}"))));
        (pids.len() == n && all_there).then_some(())
    };
    let found = poll(Duration::from_secs(10), steady);
    assert!(
        found.is_some(),
        "expected {commands:?} among {n} processes marked {marker}: {:?}",
        describe(&marked(marker))
    );
}

/// Asserts that every marked process disappears within [`GONE_WITHIN`].
fn assert_all_gone(marker: &str, what: &str) {
    let gone = poll(GONE_WITHIN, || marked(marker).is_empty().then_some(()));
    assert!(gone.is_some(), "{what}: processes survived the session: {:?}", describe(&marked(marker)));
}

/// `pid: cmdline` of each pid, for failure messages.
fn describe(pids: &[i32]) -> Vec<String> {
    pids.iter()
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!("{pid}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect()
}

/// `webtty exec` arguments running `script` in `sh -c` with the marker in its environment.
fn marked_exec(marker: &str, extra: &[&str], script: &str) -> Vec<String> {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend(["-e".into(), format!("RSTREAM_TEST_MARKER={marker}"), "--".into(), "sh".into(), "-c".into()]);
    args.push(script.into());
    args
}

fn exec(server: &LocalServer, args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    server.exec(&args)
}

#[test]
fn setsid_escapees_die_with_a_timed_out_session() {
    let server = LocalServer::start(&[]);
    let m = marker("setsid");
    let script = "setsid sh -c 'sleep 300; :' & setsid sleep 301 & sleep 302";
    let out = exec(&server, &marked_exec(&m, &["--timeout", "2"], script));
    assert_eq!(out.status.code(), Some(124), "{}", String::from_utf8_lossy(&out.stderr));
    assert_all_gone(&m, "setsid after a timeout");
}

#[test]
fn a_double_forked_daemon_dies_when_its_command_exits() {
    let server = LocalServer::start(&[]);
    let m = marker("daemon");
    // The classic daemon: fork, setsid, fork again, the intermediate exits, the command exits at once.
    let script = "(setsid sh -c 'sleep 300 & exit 0' &) ; sleep 0.2; exit 0";
    let out = exec(&server, &marked_exec(&m, &[], script));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_all_gone(&m, "double-forked daemon after exit");
}

#[test]
fn nohup_and_setsid_survivors_die_when_the_client_is_killed() {
    let server = LocalServer::start(&[]);
    let m = marker("nohup");
    let script = "nohup sleep 300 >/dev/null 2>&1 & setsid nohup sleep 301 >/dev/null 2>&1 & sleep 302";
    let args = marked_exec(&m, &[], script);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut client = server.exec_cmd(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_marked(&m, 4);
    client.kill().unwrap();
    client.wait().unwrap();
    assert_all_gone(&m, "nohup after the client died");
}

#[test]
fn killing_its_own_supervisor_does_not_let_a_session_escape() {
    let server = LocalServer::start(&[]);
    let m = marker("parent");
    // $PPID of the command is its session supervisor (on old code: the server itself).
    let script = "setsid sleep 300 & (setsid sh -c 'sleep 301 & exit 0' &); sleep 0.2; kill -9 $PPID; sleep 302";
    let out = exec(&server, &marked_exec(&m, &["--timeout", "10"], script));
    assert!(out.status.code().is_some(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_all_gone(&m, "after killing the supervisor");
    assert!(exec(&server, &["--".into(), "true".into()]).status.success(), "the server still serves");
}

#[test]
fn ending_one_session_spares_another_sessions_processes() {
    let server = LocalServer::start(&[]);
    let keep = marker("keep");
    let args = marked_exec(&keep, &[], "setsid sleep 300 & (setsid sh -c 'sleep 301 & exit 0' &); sleep 302");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut survivor = server.exec_cmd(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Steady state: the script's shell and its three sleepers (the subshell and `sh -c` in between come and go).
    wait_steady(&keep, &["sleep 300", "sleep 301", "sleep 302"], 4);
    let before = marked(&keep);

    let doomed = marker("doomed");
    let script = "setsid sleep 300 & (setsid sh -c 'sleep 301 & exit 0' &); sleep 0.2; kill -9 $PPID; sleep 302";
    let out = exec(&server, &marked_exec(&doomed, &["--timeout", "2"], script));
    assert!(out.status.code().is_some());
    assert_all_gone(&doomed, "the ended session");
    let mut after = marked(&keep);
    after.sort_unstable();
    let mut before = before;
    before.sort_unstable();
    assert_eq!(after, before, "the other session lost processes");

    survivor.kill().unwrap();
    survivor.wait().unwrap();
    assert_all_gone(&keep, "the second session after its client died");
}

#[test]
fn the_command_sees_only_descriptors_0_1_2_even_when_the_server_inherited_more() {
    let server = LocalServer::start_with(&[], |cmd, _| {
        // SAFETY: dup2 is async-signal-safe; it leaves a descriptor 7 without close-on-exec in the server, as a
        // careless launcher (or socket activation) would.
        unsafe {
            cmd.pre_exec(|| {
                if libc::dup2(2, 7) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let out = server.exec(&["-o", "text", "--", "sh", "-c", "ls /proc/$$/fd; true"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fds: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
    assert_eq!(fds, ["0", "1", "2"], "the command inherited more than stdio");
}

#[test]
fn many_sessions_leave_the_server_without_threads_zombies_or_growth() {
    let server = LocalServer::start(&[]);
    let pid = server.child.id();
    let script = "setsid sleep 300 & (setsid sh -c 'sleep 301 & exit 0' &); sleep 0.1; exit 0";
    let warm = marker("warm");
    assert!(exec(&server, &marked_exec(&warm, &[], script)).status.success());
    assert_all_gone(&warm, "warm-up session");
    let (threads, rss) = (thread_count(pid), proc::memory_kib(pid).1);
    for _ in 0..20 {
        let m = marker("many");
        assert!(exec(&server, &marked_exec(&m, &[], script)).status.success());
        assert_all_gone(&m, "one of many sessions");
    }
    let children = poll(GONE_WITHIN, || children_of(pid as i32).is_empty().then_some(()));
    assert!(children.is_some(), "server children left (zombies?): {:?}", describe(&children_of(pid as i32)));
    let (threads_after, rss_after) = (thread_count(pid), proc::memory_kib(pid).1);
    assert!(threads_after <= threads, "threads grew from {threads} to {threads_after}");
    assert!(rss_after <= rss + 1024, "RSS grew from {rss} KiB to {rss_after} KiB over 20 sessions");
    eprintln!("server after 20 sessions: {threads_after} threads (was {threads}), RSS {rss_after} KiB (was {rss})");
}

/// `Threads:` of `/proc/<pid>/status`.
fn thread_count(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()).unwrap()
}

/// Pids whose parent is `parent` (zombies included).
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
            fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(parent)
        })
        .collect()
}
