//! `rstream webtty exec` against a local `rstream webtty server --listen` (no engine): output, exit codes,
//! stdin, large output, timeouts, session limits, authentication and process-group cleanup.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use webtty_support::*;

#[test]
fn exec_reports_stdout_stderr_exit_code_and_duration() {
    let server = LocalServer::start(&[]);
    let out = server.exec(&["--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json = exec_json(&out);
    assert_eq!(json["stdout"], "out\n");
    assert_eq!(json["stderr"], "err\n");
    assert_eq!(json["exit_code"], 3);
    assert_eq!(json["command"], serde_json::json!(["sh", "-c", "echo out; echo err >&2; exit 3"]));
    assert_eq!(json["url"], format!("ws://{}/", server.addr));
    assert!(json["duration_ms"].as_u64().is_some(), "{json}");
    assert!(json.get("timed_out").is_none() && json.get("truncated").is_none(), "{json}");
}

#[test]
fn exec_text_output_passes_streams_through_and_explains_the_code() {
    let server = LocalServer::start(&[]);
    let out = server.exec(&["-o", "text", "--", "sh", "-c", "echo out; echo err >&2; exit 300"]);
    assert_eq!(out.status.code(), Some(44), "300 wraps to 44 in the remote shell");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("err\n") && stderr.contains("remote command exited with code 44"), "{stderr}");
}

#[test]
fn exec_delivers_a_mebibyte_of_stdout_intact() {
    let server = LocalServer::start(&[]);
    let data = server.dir.join("blob");
    let blob: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&data, &blob).unwrap();
    let out = server.exec(&["-o", "text", "--", "cat", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), blob.len());
    assert!(out.stdout == blob, "1 MiB differs after the round trip");
}

#[test]
fn exec_forwards_piped_stdin_and_ends_it() {
    let server = LocalServer::start(&[]);
    let mut child = server
        .exec_cmd(&["-o", "text", "--", "sh", "-c", "tr a-z A-Z; echo end"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello webtty\n").unwrap(); // dropped: EOF
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO WEBTTY\nend\n");
}

#[test]
fn exec_timeout_ends_in_about_a_second_and_leaves_no_process() {
    let server = LocalServer::start(&[]);
    let pidfile = server.dir.join("pid");
    let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
    let started = Instant::now();
    let out = server.exec(&["--timeout", "1", "--", "sh", "-c", &script]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(124));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    let json = exec_json(&out);
    assert_eq!(json["timed_out"], true);
    assert_eq!(json["exit_code"], 124);
    let pid = read_pid(&pidfile);
    let gone = poll(Duration::from_secs(5), || (!alive(pid) && group_or_session_members(pid).is_empty()).then_some(()));
    assert!(gone.is_some(), "sleep {pid} or its group survived the timeout: {:?}", group_or_session_members(pid));
}

#[test]
fn killed_client_mid_session_kills_the_remote_group() {
    let server = LocalServer::start(&[]);
    let pidfile = server.dir.join("pid");
    let script = format!("sleep 30 & sleep 30 & echo $$ > {}; wait", pidfile.display());
    let mut client = server.exec_cmd(&["--", "sh", "-c", &script]).stdout(Stdio::null()).spawn().unwrap();
    let pid = read_pid(&pidfile);
    poll(Duration::from_secs(5), || (group_or_session_members(pid).len() >= 3).then_some(()))
        .expect("sh and two sleeps running");
    client.kill().unwrap();
    client.wait().unwrap();
    let gone = poll(Duration::from_secs(5), || group_or_session_members(pid).is_empty().then_some(()));
    assert!(gone.is_some(), "left after the client died: {:?}", group_or_session_members(pid));
}

#[test]
fn session_limit_refuses_clearly_and_spares_running_sessions() {
    let server = LocalServer::start(&["--max-sessions", "1"]);
    let marker = server.dir.join("started");
    let script = format!("touch {}; sleep 1; echo survived", marker.display());
    let first = server.exec_cmd(&["--", "sh", "-c", &script]).stdout(Stdio::piped()).spawn().unwrap();
    poll(Duration::from_secs(10), || marker.exists().then_some(())).expect("first session started");
    let refused = server.exec(&["--", "true"]);
    assert_eq!(refused.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("session limit (1 sessions)"), "{stderr}");
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success());
    assert_eq!(exec_json(&first)["stdout"], "survived\n");
    let after = server.exec(&["--", "true"]);
    assert!(after.status.success(), "a freed slot is usable again");
}

#[test]
fn local_server_refuses_missing_or_wrong_bearer_token() {
    let server = LocalServer::start(&[]);
    let base = |cmd: &mut Command| {
        cmd.args(["webtty", "exec", "--url", &server.url(), "--", "true"])
            .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
            .stdin(Stdio::null());
    };
    let mut missing = Command::new(BIN);
    base(&mut missing);
    let out = missing.output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"), "{}", String::from_utf8_lossy(&out.stderr));

    let mut wrong = Command::new(BIN);
    base(&mut wrong);
    let out = wrong.env("RSTREAM_WEBTTY_AUTH_TOKEN", "not-the-token").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));

    let mut right = Command::new(BIN);
    base(&mut right);
    let out = right.env("RSTREAM_WEBTTY_AUTH_TOKEN", &server.token).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn local_server_requires_a_token_unless_explicitly_unauthenticated() {
    let out = Command::new(BIN)
        .args(["webtty", "server", "--listen", "127.0.0.1:0"])
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-unauthenticated"));
}

#[test]
fn plain_http_at_the_endpoint_gets_426_and_bad_origins_403() {
    let server = LocalServer::start(&["--allowed-origin", "https://ok.example"]);
    let request = |extra: &str| {
        use std::io::Read;
        let mut tcp = std::net::TcpStream::connect(&server.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{extra}Connection: close\r\n\r\n",
            server.addr, server.token
        );
        tcp.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        let _ = tcp.read_to_string(&mut resp);
        resp
    };
    assert!(request("").starts_with("HTTP/1.1 426"), "{}", request(""));
    let ws = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let evil = request(&format!("{ws}Origin: https://evil.example\r\n"));
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
}

#[test]
fn sigterm_ends_running_sessions_and_their_groups() {
    let mut server = LocalServer::start(&[]);
    let pidfile = server.dir.join("pid");
    let script = format!("echo $$ > {}; sleep 30", pidfile.display());
    let client = server.exec_cmd(&["--", "sh", "-c", &script]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let client = client.unwrap();
    let pid = read_pid(&pidfile);
    let server_pid = server.child.id() as i32;
    assert!(Command::new("kill").args(["-TERM", &server_pid.to_string()]).status().unwrap().success());
    let status = poll(Duration::from_secs(10), || server.child.try_wait().unwrap()).expect("server exited");
    assert!(status.success(), "{status:?}");
    assert!(group_or_session_members(pid).is_empty());
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(255), "the client reports the shutdown");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shutting down"));
}
