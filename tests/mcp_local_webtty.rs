//! The exec tool of `rstream mcp serve` against a real local `rstream webtty server --listen` (ws://, no
//! engine): exit codes, output, stdin, env, workdir and timeouts.

mod mcp_common;
mod webtty_support;

use mcp_common::{scratch, text, Mcp};
use serde_json::json;
use webtty_support::LocalServer;

async fn session(tag: &str, server: &LocalServer) -> Mcp {
    let dir = scratch(tag);
    Mcp::start(&dir.join("config.yaml"), &[("RSTREAM_WEBTTY_AUTH_TOKEN", &server.token)], None).await
}

#[tokio::test]
async fn exec_returns_output_and_exit_code_and_a_non_zero_exit_is_an_error_result() {
    let server = LocalServer::start(&[]);
    let mcp = session("exec", &server).await;
    let url = server.url();

    let r = mcp
        .call("rstream_webtty_exec", json!({"url": url, "command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}))
        .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    let v = r.structured_content.clone().unwrap();
    assert_eq!(
        (v["exit_code"].clone(), v["stdout"].clone(), v["stderr"].clone()),
        (json!(3), json!("out\n"), json!("err\n"))
    );
    assert_eq!(v["command"], json!(["sh", "-c", "echo out; echo err >&2; exit 3"]));
    assert!(v["url"].as_str().unwrap().starts_with("ws://127.0.0.1:") && v["duration_ms"].is_u64(), "{v}");

    let v = mcp.ok("rstream_webtty_exec", json!({"url": url, "command": ["cat"], "stdin": "from the agent\n"})).await;
    assert_eq!((v["exit_code"].clone(), v["stdout"].clone()), (json!(0), json!("from the agent\n")));

    let dir = server.dir.0.display().to_string();
    let v = mcp
        .ok("rstream_webtty_exec", json!({"url": url, "command": ["sh", "-c", "echo $GREETING; pwd"], "env": ["GREETING=hi there"], "workdir": dir}))
        .await;
    assert_eq!(v["stdout"], format!("hi there\n{dir}\n"));

    let r =
        mcp.call("rstream_webtty_exec", json!({"url": url, "command": ["sleep", "30"], "timeout_seconds": 0.5})).await;
    let v = r.structured_content.clone().unwrap();
    assert_eq!((r.is_error, v["error_kind"].as_str()), (Some(true), Some("timeout")), "{v}");
    assert!(v["duration_ms"].as_u64().unwrap() < 10_000, "{v}");

    let msg = mcp.err("rstream_webtty_exec", json!({"url": url, "command": []})).await;
    assert!(msg.contains("\"command\""), "{msg}");
    let msg = mcp.err("rstream_webtty_exec", json!({"url": url, "command": ["true"], "env": ["NOEQUALS"]})).await;
    assert!(msg.contains("KEY=value"), "{msg}");
}

#[tokio::test]
async fn exec_sends_the_requested_user_and_the_server_decides() {
    let server = LocalServer::start(&[]);
    let mcp = session("exec-user", &server).await;
    let url = server.url();
    let args = |user: &str| json!({"url": url, "command": ["true"], "user": user});
    let msg = mcp.err("rstream_webtty_exec", args("nobody")).await;
    assert!(msg.contains("client-selected OS users are disabled in spawn execution mode"), "{msg}");
    let me = std::process::Command::new("id").arg("-un").output().unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_owned();
    let v = mcp.ok("rstream_webtty_exec", json!({"url": url, "command": ["id", "-un"], "user": me})).await;
    assert_eq!(v["stdout"], format!("{me}\n"), "the server's own user needs no permission");
}

#[test]
fn closing_stdin_ends_the_server_even_while_a_call_is_running() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let server = LocalServer::start(&[]);
    let dir = scratch("stdin-close");
    let marker = dir.join("started");
    let mut mcp = Command::new(env!("CARGO_BIN_EXE_rstream"))
        .args(["mcp", "serve"])
        .env("RSTREAM_CONFIG", dir.join("config.yaml"))
        .env("RSTREAM_WEBTTY_AUTH_TOKEN", &server.token)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "rstream_webtty_exec",
        "arguments": {"url": server.url(), "command": ["sh", "-c", format!("touch {}; sleep 30", marker.display())]}}});
    let mut stdin = mcp.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    writeln!(stdin, "{init}\n{}\n{call}", json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).unwrap();
    webtty_support::poll(Duration::from_secs(20), || marker.exists().then_some(())).expect("the remote command ran");
    drop(stdin);
    let closed = Instant::now();
    // rmcp drains in-flight answers for up to 5 s, then the runtime gives blocking calls MCP_SHUTDOWN_GRACE (1 s):
    // well before the remote `sleep 30` ends.
    let exited = webtty_support::poll(Duration::from_secs(20), || mcp.try_wait().unwrap());
    assert!(exited.is_some(), "mcp serve still running 20 s after stdin closed");
    assert!(closed.elapsed() < Duration::from_secs(9), "exit took {:?}", closed.elapsed());
}

#[tokio::test]
async fn a_session_that_breaks_keeps_the_output_so_far_and_says_so() {
    let mut server = LocalServer::start(&[]);
    let mcp = session("exec-broken", &server).await;
    let marker = server.dir.join("printed");
    // The pause lets the server forward "before" before the marker says the test may cut the connection.
    let script = format!("echo before; sleep 0.3; touch {}; sleep 30", marker.display());
    let url = server.url();
    let call = mcp.call("rstream_webtty_exec", json!({"url": url, "command": ["sh", "-c", script]}));
    let cut = async {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !marker.exists() {
            assert!(std::time::Instant::now() < end, "the remote command never ran");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        server.child.kill().unwrap();
    };
    let (r, ()) = tokio::join!(call, cut);
    let v = r.structured_content.clone().unwrap();
    assert_eq!(
        (r.is_error, v["error_kind"].as_str(), v["stdout"].as_str()),
        (Some(true), Some("session"), Some("before\n")),
        "{v}"
    );
    assert!(v["error"].as_str().unwrap().contains("session broke"), "{v}");
    assert_eq!(v["exit_code"], -1);
}
