//! Remote MCP through the engine: a standard Streamable-HTTP MCP server built with the official Python SDK
//! (tests/mcp_sdk/remote_server.py: SSE answers, `initialize` + `Mcp-Session-Id` required) runs on 127.0.0.1
//! behind `rstream forward --no-publish --label application-protocol=rstream.mcp`; `rstream mcp serve`, driven
//! over stdio, discovers it, lists its tools and calls one.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
mod mcp_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tunnel::Forward;
use common::{ChildGuard, Engine};
use mcp_common::{sdk_python, wait_for, Mcp};
use serde_json::{json, Value};

/// A free loopback port (bound, then released for the server that takes it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The SDK server on `port`, accepting the tunnel name `tunnel` as Host; returns once it accepts connections.
fn start_sdk_server(port: u16, tunnel: &str, log: &Path) -> ChildGuard {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_sdk/remote_server.py");
    let child = Command::new(sdk_python())
        .arg(script)
        .args([port.to_string(), tunnel.to_owned()])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .expect("start the SDK server");
    let guard = ChildGuard(child);
    wait_for(Duration::from_secs(60), "the SDK MCP server to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(drop)
    });
    guard
}

#[tokio::test]
async fn a_standard_sdk_server_behind_a_private_forward_is_discovered_listed_and_called() {
    let engine = Engine::start();
    let scratch = common::TempDir::new("mcp-remote");
    let port = free_port();
    let _sdk = start_sdk_server(port, "sdk-mcp", &scratch.path().join("sdk.log"));
    let forward = Forward::start(
        &engine,
        &format!("127.0.0.1:{port}"),
        &["--no-publish", "--name", "sdk-mcp", "--label", "application-protocol=rstream.mcp", "-o", "json"],
        &[],
    );
    forward.wait_online(1, Duration::from_secs(30));

    let mcp = Mcp::start(&engine.config_path(), &[], None).await;
    let found = mcp.ok("rstream_remote_mcp_discover", json!({})).await;
    let endpoints = found["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{found}");
    let endpoint = &endpoints[0];
    assert_eq!(
        (endpoint["name"].as_str(), endpoint["path"].as_str(), endpoint["status"].as_str()),
        (Some("sdk-mcp"), Some("/mcp"), Some("online"))
    );
    assert_eq!(endpoint["token_auth"], json!(false));
    let url = endpoint["rstrm_url"].as_str().unwrap().to_owned();
    assert_eq!(url, "rstrm://sdk-mcp");
    let none = mcp.ok("rstream_remote_mcp_discover", json!({"filter": "name=other"})).await;
    assert_eq!(none["endpoints"], json!([]));

    let listed = mcp.ok("rstream_remote_mcp_tools", json!({"url": url})).await;
    let names: Vec<&str> =
        listed["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"add") && names.contains(&"shout"), "{listed}");

    let sum =
        mcp.ok("rstream_remote_mcp_call", json!({"url": url, "tool": "add", "arguments": {"a": 2, "b": 40}})).await;
    let text = sum["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert_eq!(text, "42", "{sum}");
    let loud = mcp
        .ok("rstream_remote_mcp_call", json!({"url": url, "tool": "shout", "arguments_json": "{\"text\": \"hi\"}"}))
        .await;
    assert_eq!(loud["result"]["content"][0]["text"], "HI", "{loud}");

    let r = mcp.call("rstream_remote_mcp_call", json!({"url": url, "tool": "nope"})).await;
    assert_eq!(r.is_error, Some(true), "{}", mcp_common::text(&r));
    let gone = mcp.err("rstream_remote_mcp_tools", json!({"url": "rstrm://no-such-endpoint"})).await;
    assert!(gone.contains("rstrm://no-such-endpoint/mcp"), "{gone}");
}

#[tokio::test]
async fn read_only_servers_list_remote_tools_but_refuse_remote_calls() {
    let engine = Engine::start();
    common::tunnel::wait_for_context(&engine);
    let mcp = Mcp::start_with(&engine.config_path(), &["--read-only"], &[], None).await;
    let err = mcp.err("rstream_remote_mcp_call", json!({"url": "rstrm://x", "tool": "t"})).await;
    assert!(err.contains("disabled on this MCP server by its tool policy: --read-only"), "{err}");
    let tools = mcp.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"rstream_remote_mcp_discover") && names.contains(&"rstream_remote_mcp_tools"));
    assert!(!names.contains(&"rstream_remote_mcp_call"));
    let _: Value = mcp.ok("rstream_remote_mcp_discover", json!({})).await;
}
