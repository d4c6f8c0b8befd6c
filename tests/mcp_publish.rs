//! `rstream mcp publish` against a live engine: the tool set at `/mcp` on a private tunnel is discovered, listed
//! and called by another `rstream mcp serve` (rstream_remote_mcp_*); the HTTP contract holds on the raw stream
//! (405 with `Allow: POST`, 400/-32700, 404, 413 beyond 1 MiB); published, it is token_auth and labelled.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
mod mcp_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ChildGuard, Engine};
use mcp_common::{wait_for, Mcp};
use serde_json::{json, Value};

/// A running `rstream mcp publish <args>` and the JSON status lines it printed.
struct Publish {
    _child: ChildGuard,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Publish {
    fn start(engine: &Engine, args: &[&str]) -> (Publish, Value) {
        common::tunnel::wait_for_context(engine);
        let mut child = Command::new(env!("CARGO_BIN_EXE_rstream"))
            .args(["mcp", "publish", "-o", "json"])
            .args(args)
            .env("RSTREAM_CONFIG", engine.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mcp publish");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let publish = Publish { _child: ChildGuard(child), lines };
        let status = wait_for(Duration::from_secs(30), "mcp publish to report its endpoint", || {
            publish.lines.lock().unwrap().iter().find_map(|l| serde_json::from_str::<Value>(l).ok())
        });
        (publish, status)
    }
}

/// One raw HTTP/1.1 exchange with the endpoint through `rstream dial` (the request asks to close).
fn raw(engine: &Engine, target: &str, request: &[u8]) -> String {
    let (_, out, err) = common::tunnel::dial(engine, target, request, &[]);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("HTTP/1.1 "), "no HTTP answer: {text:?} {err}");
    text
}

#[tokio::test]
async fn a_private_endpoint_is_discovered_listed_called_and_keeps_the_http_contract() {
    let engine = Engine::start();
    let (_publish, status) = Publish::start(&engine, &["--no-publish", "--name", "box-mcp", "--label", "role=lab"]);
    assert_eq!(status["url"], "rstrm://box-mcp/mcp", "{status}");
    assert_eq!((status["published"].clone(), status["token_auth"].clone()), (json!(false), json!(false)));
    assert_eq!((status["path"].as_str(), status["name"].as_str()), (Some("/mcp"), Some("box-mcp")));

    let mcp = Mcp::start(&engine.config_path(), &[], None).await;
    let found = mcp.ok("rstream_remote_mcp_discover", json!({"filter": "labels.role=lab"})).await;
    let endpoint = &found["endpoints"][0];
    assert_eq!((endpoint["name"].as_str(), endpoint["path"].as_str()), (Some("box-mcp"), Some("/mcp")), "{found}");
    assert_eq!(endpoint["labels"]["rstream.mcp.transport"], "streamable-http");
    let listed = mcp.ok("rstream_remote_mcp_tools", json!({"url": "rstrm://box-mcp"})).await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t["name"] == "rstream_webtty_exec"), "{listed}");
    let called =
        mcp.ok("rstream_remote_mcp_call", json!({"url": "rstrm://box-mcp", "tool": "rstream_context_list"})).await;
    assert!(called["result"]["structuredContent"]["contexts"].is_array(), "{called}");

    let get = raw(&engine, "rstrm://box-mcp", b"GET /mcp HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n");
    assert!(get.starts_with("HTTP/1.1 405") && get.contains("Allow: POST"), "{get}");
    let body = "{not json";
    let bad = format!(
        "POST /mcp HTTP/1.1\r\nHost: m\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n{body}",
        body.len()
    );
    let bad = raw(&engine, "rstrm://box-mcp", bad.as_bytes());
    assert!(bad.starts_with("HTTP/1.1 400") && bad.contains("-32700"), "{bad}");
    let elsewhere = raw(&engine, "rstrm://box-mcp", b"POST /x HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n");
    assert!(elsewhere.starts_with("HTTP/1.1 404"), "{elsewhere}");
    let big = format!("POST /mcp HTTP/1.1\r\nHost: m\r\nContent-Length: {}\r\n\r\n", 1024 * 1024 + 1);
    let big = raw(&engine, "rstrm://box-mcp", big.as_bytes());
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
}

#[test]
fn a_published_endpoint_asks_callers_for_a_token() {
    let engine = Engine::start();
    let (_publish, status) = Publish::start(&engine, &["--name", "pub-mcp", "--read-only"]);
    assert_eq!((status["published"].clone(), status["token_auth"].clone()), (json!(true), json!(true)), "{status}");
    let url = status["url"].as_str().unwrap();
    assert!(url.starts_with("https://pub-mcp.t.localhost:") && url.ends_with("/mcp"), "{url}");
    let host = "pub-mcp.t.localhost";
    let (code, _) = common::tunnel::https_get(&engine, host, "/mcp");
    assert_eq!(code, 401, "the engine admits no caller without a token");
    let token = mcp_common::context_token(&engine.config_path());
    let out = common::tunnel::curl_command(&engine, host, "/mcp")
        .args(["-X", "POST", "-H", "Content-Type: application/json", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(["--max-time", "30", "-d", r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#])
        .output()
        .unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    let names: Vec<&str> =
        answer["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"rstream_webtty_list") && !names.contains(&"rstream_webtty_exec"), "{names:?}");
}
