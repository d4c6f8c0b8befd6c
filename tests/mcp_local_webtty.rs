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
    assert_eq!((r.is_error, v["timed_out"].clone()), (Some(true), json!(true)), "{v}");
    assert!(v["duration_ms"].as_u64().unwrap() < 10_000, "{v}");

    let msg = mcp.err("rstream_webtty_exec", json!({"url": url, "command": []})).await;
    assert!(msg.contains("\"command\""), "{msg}");
    let msg = mcp.err("rstream_webtty_exec", json!({"url": url, "command": ["true"], "env": ["NOEQUALS"]})).await;
    assert!(msg.contains("KEY=value"), "{msg}");
}
