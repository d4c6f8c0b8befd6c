//! Tests of [`super::SessionProcess`]: streams, environment, refusals, and that ending a session ends every
//! process it started (background jobs, `setsid` escapees, double-forked daemons) and nothing else.

use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};

use super::*;

fn spec(argv: &[&str]) -> SpawnSpec {
    SpawnSpec { argv: argv.iter().map(|s| s.to_string()).collect(), ..SpawnSpec::default() }
}

fn spawn(spec: &SpawnSpec) -> Result<(SessionProcess, ProcessIo), SpawnError> {
    SessionProcess::spawn(spec, &Orphanage::none())
}

/// Live pids below the supervisor `root`.
fn tree(root: i32) -> Vec<i32> {
    ProcessTable::read().descendants(root).into_iter().filter(|e| !e.zombie).map(|e| e.pid).collect()
}

/// Waits (at most 5 s) until `tree(root)` has at least `n` processes.
async fn wait_for_tree(root: i32, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while tree(root).len() < n && Instant::now() < deadline {
        Timer::after(Duration::from_millis(10)).await;
    }
    assert!(tree(root).len() >= n, "expected {n} processes below {root}: {:?}", tree(root));
}

/// Whether `pid` exists and has not exited.
fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_some_and(|state| state != "Z")
}

#[test]
fn pipes_carry_stdout_stderr_and_the_exit_code() {
    future::block_on(async {
        let (mut p, io) = spawn(&spec(&["sh", "-c", "echo out; echo err >&2; exit 3"])).unwrap();
        let ProcessIo::Pipes { stdin, mut stdout, mut stderr } = io else { panic!("pipes expected") };
        assert!(stdin.is_none());
        let (mut out, mut err) = (String::new(), String::new());
        stdout.read_to_string(&mut out).await.unwrap();
        stderr.read_to_string(&mut err).await.unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
        assert_eq!(exit_code(&p.exit().await.unwrap()), 3);
        p.reap_leftovers().await;
    });
}

#[test]
fn environment_is_conservative_plus_client_values() {
    std::env::set_var("RSTREAM_TEST_SECRET", "leak");
    future::block_on(async {
        let mut s = spec(&["env"]);
        s.env = vec![("GREETING".into(), "hi".into())];
        s.workdir = Some("/".into());
        let (p, io) = spawn(&s).unwrap();
        let ProcessIo::Pipes { mut stdout, .. } = io else { panic!("pipes expected") };
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.unwrap();
        p.exit().await.unwrap();
        assert!(out.contains("GREETING=hi\n"), "{out}");
        assert!(out.contains("PATH="), "{out}");
        assert!(!out.contains("RSTREAM_TEST_SECRET"), "server environment leaked: {out}");
    });
}

#[test]
fn bad_workdir_and_env_names_are_refused_with_the_value() {
    let mut s = spec(&["true"]);
    s.workdir = Some("/nonexistent/dir".into());
    let err = spawn(&s).err().unwrap().to_string();
    assert!(err.contains("\"/nonexistent/dir\""), "{err}");
    let mut s = spec(&["true"]);
    s.env = vec![("A=B".into(), "x".into())];
    assert!(spawn(&s).err().unwrap().to_string().contains("\"A=B\""));
    let err = spawn(&spec(&["/no/such/program"])).err().unwrap().to_string();
    assert!(err.contains("/no/such/program"), "{err}");
}

#[test]
fn pty_child_sees_a_terminal_of_the_requested_size() {
    future::block_on(async {
        let mut s = spec(&["sh", "-c", "stty size; tty -s && echo tty"]);
        s.tty = Some((33, 101));
        let (p, io) = spawn(&s).unwrap();
        let ProcessIo::Pty(mut master) = io else { panic!("pty expected") };
        let mut out = String::new();
        master.read_to_string(&mut out).await.unwrap();
        assert!(out.contains("33 101"), "{out:?}");
        assert!(out.contains("tty"), "{out:?}");
        assert_eq!(exit_code(&p.exit().await.unwrap()), 0);
        master.write_all(b"").await.unwrap();
    });
}

#[test]
fn the_command_keeps_only_descriptors_0_to_2() {
    future::block_on(async {
        // `ls` lists the shell's descriptors (its own directory handle is in another process).
        let (p, io) = spawn(&spec(&["sh", "-c", "ls /proc/$$/fd; true"])).unwrap();
        let ProcessIo::Pipes { mut stdout, .. } = io else { panic!("pipes expected") };
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.unwrap();
        p.exit().await.unwrap();
        let fds: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fds, ["0", "1", "2"], "{out:?}");
    });
}

#[test]
fn the_exit_is_reported_while_background_jobs_still_run_and_they_end_with_the_session() {
    future::block_on(async {
        let (mut p, _io) = spawn(&spec(&["sh", "-c", "sleep 30 & exit 4"])).unwrap();
        let root = p.pid();
        assert_eq!(exit_code(&p.exit().await.unwrap()), 4);
        wait_for_tree(root, 1).await; // the orphaned sleep, re-parented to the supervisor
        p.reap_leftovers().await;
        assert!(tree(root).is_empty(), "left: {:?}", tree(root));
        assert!(!alive(root), "supervisor {root} still there");
    });
}

#[test]
fn dropping_a_running_session_kills_its_tree() {
    future::block_on(async {
        let (p, _io) = spawn(&spec(&["sh", "-c", "sleep 30 & setsid sleep 31 & wait"])).unwrap();
        let root = p.pid();
        wait_for_tree(root, 3).await;
        let members = tree(root);
        drop(p);
        let deadline = Instant::now() + Duration::from_secs(5);
        while members.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
            Timer::after(Duration::from_millis(10)).await;
        }
        assert!(!members.iter().any(|&pid| alive(pid)), "left: {members:?}");
    });
}

#[test]
fn terminate_ends_escapees_and_daemons_but_spares_another_session() {
    future::block_on(async {
        let (mut other, _other_io) = spawn(&spec(&["sh", "-c", "sleep 30 & wait"])).unwrap();
        // A background job, a setsid escapee and a double-forked daemon (its parent exits at once).
        let script = "sleep 30 & setsid sleep 31 & (setsid sh -c 'sleep 32' &) ; nohup sleep 33 >/dev/null 2>&1 & wait";
        let (mut p, _io) = spawn(&spec(&["sh", "-c", script])).unwrap();
        let root = p.pid();
        wait_for_tree(root, 5).await;
        wait_for_tree(other.pid(), 2).await;
        let members = tree(root);
        let code = p.terminate().await;
        assert!(code > 128, "killed by a signal: {code}");
        assert!(tree(root).is_empty() && !alive(root), "left: {:?}", tree(root));
        assert!(!members.iter().any(|&pid| alive(pid)), "left: {members:?}");
        assert_eq!(tree(other.pid()).len(), 2, "the other session lost processes");
        other.terminate().await;
    });
}
