//! Session protocol tests: the server session and the exec client over loopback TCP (the WebSocket handshake
//! done by tungstenite here; the real server routes through `crate::http`).

use std::time::{Duration, Instant};

use async_net::TcpListener;
use futures_lite::future;

use super::client::{exec, ExecRequest};
use super::policy::{SessionPolicy, SessionSlots};
use super::session::serve_session;
use super::wire::ws_config;

/// Serves WebTTY sessions on an ephemeral loopback port until the test process exits.
fn serve(policy: SessionPolicy) -> String {
    let listener = future::block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        future::block_on(async move {
            let ex = smol::LocalExecutor::new();
            ex.run(async {
                loop {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let policy = policy.clone();
                    ex.spawn(async move {
                        if let Ok(ws) = async_tungstenite::accept_async_with_config(tcp, Some(ws_config())).await {
                            serve_session(ws, &policy).await;
                        }
                    })
                    .detach();
                }
            })
            .await
        })
    });
    format!("ws://{addr}")
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    future::block_on(f)
}

#[test]
fn exec_reports_stdout_stderr_and_exit_code() {
    let url = serve(SessionPolicy::default());
    let r = run(exec(&url, ExecRequest::command(["sh", "-c", "echo out; echo err >&2; exit 3"]))).unwrap();
    assert_eq!((r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code), (&b"out\n"[..], &b"err\n"[..], 3));
    assert!(!r.timed_out && !r.truncated);
    assert!(r.url.starts_with("ws://127.0.0.1:"), "{}", r.url);
}

#[test]
fn exec_forwards_stdin_until_eof() {
    let url = serve(SessionPolicy::default());
    let mut req = ExecRequest::command(["sh", "-c", "cat; echo done"]);
    req.stdin = Some(Box::new(futures_lite::io::Cursor::new(b"hello\n".to_vec())));
    let r = run(exec(&url, req)).unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "hello\ndone\n");
}

#[test]
fn exec_output_of_a_mebibyte_arrives_intact() {
    let url = serve(SessionPolicy::default());
    let r = run(exec(&url, ExecRequest::command(["head", "-c", "1048576", "/dev/urandom"]))).unwrap();
    assert_eq!(r.stdout.len(), 1 << 20);
    let r2 = run(exec(&url, ExecRequest::command(["sh", "-c", "seq 1 200000"]))).unwrap();
    let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8(r2.stdout).unwrap(), expected);
}

#[test]
fn exec_output_beyond_the_cap_is_truncated_and_flagged() {
    let url = serve(SessionPolicy::default());
    let mut req = ExecRequest::command(["head", "-c", "100000", "/dev/zero"]);
    req.output_cap = 1000;
    let r = run(exec(&url, req)).unwrap();
    assert_eq!(r.stdout.len(), 1000);
    assert!(r.truncated);
    assert_eq!(r.exit_code, 0);
}

#[test]
fn exec_timeout_ends_the_session_and_kills_the_remote_group() {
    let url = serve(SessionPolicy::default());
    let mut req = ExecRequest::command(["sh", "-c", "echo $$; sleep 30 & wait"]);
    req.timeout = Some(Duration::from_millis(700));
    let started = Instant::now();
    let r = run(exec(&url, req)).unwrap();
    assert!(r.timed_out);
    assert_eq!(r.exit_code, 124);
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid: i32 = String::from_utf8_lossy(&r.stdout).trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !super::proc_tree::session_members(pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(super::proc_tree::session_members(pid).is_empty(), "remote processes left after timeout");
}

#[test]
fn session_limit_refuses_new_sessions_and_spares_running_ones() {
    let url = serve(SessionPolicy { slots: SessionSlots::new(1), ..SessionPolicy::default() });
    let marker = std::env::temp_dir().join(format!("rstream-session-limit-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let script = format!("touch {}; sleep 1; echo survived", marker.display());
    let long = {
        let url = url.clone();
        std::thread::spawn(move || run(exec(&url, ExecRequest::command(["sh", "-c", &script]))))
    };
    // The first session holds the slot once its command runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "first session never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&marker);
    let refusal = run(exec(&url, ExecRequest::command(["true"]))).unwrap_err().to_string();
    assert!(refusal.contains("session limit (1 sessions)"), "{refusal}");
    let first = long.join().unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&first.stdout), "survived\n");
}

#[test]
fn unknown_program_is_a_clear_error() {
    let url = serve(SessionPolicy::default());
    let err = run(exec(&url, ExecRequest::command(["/no/such/program"]))).unwrap_err().to_string();
    assert!(err.contains("/no/such/program"), "{err}");
}

#[test]
fn server_max_duration_ends_a_session() {
    let url = serve(SessionPolicy { max_duration: Duration::from_millis(300), ..SessionPolicy::default() });
    let err = run(exec(&url, ExecRequest::command(["sleep", "30"]))).unwrap_err().to_string();
    assert!(err.contains("maximum duration"), "{err}");
}
