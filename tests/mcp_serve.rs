//! `rstream mcp serve` driven by rmcp's client over stdio: the handshake, the tool list, and the tools that need
//! only the operator's config (runtime status, contexts) — including that no token ever reaches the agent.

mod mcp_common;

use mcp_common::{scratch, text, wire, Mcp};
use rmcp::model::ProtocolVersion;
use serde_json::{json, Value};

const TOKEN_LAB: &str = "eyJhbGciOiJIUzI1NiJ9.lab-secret-payload.sig";
const TOKEN_ENV: &str = "eyJhbGciOiJIUzI1NiJ9.env-secret-payload.sig";

fn config(tag: &str) -> std::path::PathBuf {
    let dir = scratch(tag);
    let path = dir.join("config.yaml");
    let yaml = format!(
        "version: 1\ndefaults:\n  context:\n    name: lab\ncontexts:\n- name: lab\n  engine: localhost:8443\n  auth:\n    \
         token:\n      storage:\n        kind: inline\n        value: {TOKEN_LAB}\n  transport:\n    tls:\n      \
         caFile: ca.pem\n- name: bare\n  engine: bare.example:443\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test]
async fn initialize_negotiates_the_clients_protocol_version_and_names_the_server() {
    let cfg = config("init");
    for version in [
        ProtocolVersion::V_2024_11_05,
        ProtocolVersion::V_2025_03_26,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
    ] {
        let mcp = Mcp::start(&cfg, &[], Some(version.clone())).await;
        let info = mcp.client.peer_info().expect("server info");
        assert_eq!(info.protocol_version, version);
        let server = info.server_info.as_ref().expect("serverInfo");
        assert_eq!((server.name.as_str(), server.version.as_str()), ("rstream", env!("CARGO_PKG_VERSION")));
        let instructions = info.instructions.clone().unwrap_or_default();
        for needle in ["rstream_runtime_status", "rstream_webtty_list", "capabilities", "fs root"] {
            assert!(instructions.contains(needle), "instructions lack {needle:?}: {instructions}");
        }
        assert!(info.capabilities.tools.is_some());
    }
}

#[tokio::test]
async fn tools_list_gives_every_tool_a_closed_schema_a_title_and_annotations() {
    let mcp = Mcp::start(&config("list"), &[], None).await;
    let tools = mcp.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "rstream_runtime_status",
        "rstream_context_list",
        "rstream_context_get",
        "rstream_webtty_list",
        "rstream_webtty_exec",
        "rstream_webtty_fs_list",
        "rstream_webtty_fs_read",
        "rstream_webtty_fs_write",
        "rstream_webtty_fs_mkdir",
        "rstream_webtty_fs_delete",
        "rstream_webtty_fs_download",
        "rstream_local_tunnel_expose",
        "rstream_local_tunnel_list",
        "rstream_local_tunnel_stop",
        "rstream_tunnels_list",
        "rstream_webtty_fs_stat",
        "rstream_webtty_fs_move",
        "rstream_webtty_fs_upload",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for tool in &tools {
        let schema = Value::Object((*tool.input_schema).clone());
        assert_eq!(schema["type"], "object", "{}", tool.name);
        assert_eq!(schema["additionalProperties"], false, "{}", tool.name);
        assert!(schema["properties"].is_object(), "{}", tool.name);
        assert!(tool.title.is_some() && tool.description.as_deref().is_some_and(|d| d.len() > 40), "{}", tool.name);
        let a = tool.annotations.as_ref().unwrap_or_else(|| panic!("{} has no annotations", tool.name));
        assert!(a.title.is_some() && a.read_only_hint.is_some() && a.destructive_hint.is_some());
        assert!(a.idempotent_hint.is_some() && a.open_world_hint.is_some());
        let output = tool.output_schema.as_ref().unwrap_or_else(|| panic!("{} has no outputSchema", tool.name));
        assert_eq!(output.get("type"), Some(&json!("object")), "{}", tool.name);
        let meta = tool.meta.as_ref().unwrap_or_else(|| panic!("{} has no _meta", tool.name));
        let title = tool.title.as_deref().unwrap();
        assert_eq!(meta.0["openai/toolInvocation/invoking"], format!("Running: {title}"));
        assert_eq!(meta.0["openai/toolInvocation/invoked"], format!("Finished: {title}"));
    }
    let hints = |name: &str| {
        let a = tools.iter().find(|t| t.name == name).unwrap().annotations.clone().unwrap();
        (a.read_only_hint.unwrap(), a.destructive_hint.unwrap(), a.idempotent_hint.unwrap(), a.open_world_hint.unwrap())
    };
    assert_eq!(hints("rstream_runtime_status"), (true, false, true, false));
    assert_eq!(hints("rstream_webtty_exec"), (false, true, false, true));
    assert_eq!(hints("rstream_webtty_fs_read"), (true, false, true, true));
    assert_eq!(hints("rstream_webtty_fs_delete"), (false, true, true, true));
    assert_eq!(hints("rstream_local_tunnel_stop"), (false, true, true, true));
    assert_eq!(hints("rstream_local_tunnel_list"), (true, false, true, false));
    let exec = tools.iter().find(|t| t.name == "rstream_webtty_exec").unwrap();
    let schema = Value::Object((*exec.input_schema).clone());
    assert_eq!(schema["required"], json!(["url", "command"]));
    assert_eq!(schema["properties"]["command"]["minItems"], json!(1));
}

#[tokio::test]
async fn runtime_status_reports_the_selected_context_and_the_next_tool() {
    let cfg = config("status");
    let mcp = Mcp::start(&cfg, &[], None).await;
    let r = mcp.call("rstream_runtime_status", json!({})).await;
    let s = r.structured_content.clone().unwrap();
    assert_eq!((s["ready"].clone(), s["needs_context"].clone()), (json!(true), json!(false)));
    assert_eq!((s["selected_context"].as_str(), s["engine"].as_str()), (Some("lab"), Some("localhost:8443")));
    assert_eq!(s["suggested_next_tool"], "rstream_webtty_list");
    assert!(s["agent_guidance"].as_str().unwrap().contains("capabilities"));
    // The text content is the same object, pretty-printed.
    assert_eq!(serde_json::from_str::<Value>(&text(&r)).unwrap(), s);
    assert!(text(&r).contains("\n  \""), "not pretty JSON: {}", text(&r));
}

#[tokio::test]
async fn runtime_status_guides_the_agent_when_no_context_is_usable() {
    let dir = scratch("nocontext");
    let mcp = Mcp::start(&dir.join("missing.yaml"), &[], None).await;
    let s = mcp.ok("rstream_runtime_status", json!({})).await;
    assert_eq!((s["ready"].clone(), s["needs_context"].clone()), (json!(false), json!(true)));
    assert!(s["agent_guidance"].as_str().unwrap().contains("rstream engine serve"), "{s}");

    let mcp = Mcp::start(&config("notoken"), &[("RSTREAM_CONTEXT", "bare")], None).await;
    let s = mcp.ok("rstream_runtime_status", json!({})).await;
    assert_eq!((s["ready"].clone(), s["token_present"].clone()), (json!(false), json!(false)));
    assert!(s["agent_guidance"].as_str().unwrap().contains("has no token"), "{s}");
}

#[tokio::test]
async fn context_tools_report_whether_a_token_exists_but_never_the_token() {
    let cfg = config("secrets");
    let mcp = Mcp::start(&cfg, &[("RSTREAM_AUTHENTICATION_TOKEN", TOKEN_ENV)], None).await;
    let mut transcript = String::new();

    let r = mcp.call("rstream_context_list", json!({})).await;
    transcript += &wire(&r);
    let list = r.structured_content.clone().unwrap();
    let contexts = list["contexts"].as_array().expect("contexts under their semantic key");
    assert_eq!(contexts.len(), 2);
    assert_eq!((contexts[0]["name"].as_str(), contexts[0]["token"].clone()), (Some("lab"), json!(true)));
    assert_eq!((contexts[1]["name"].as_str(), contexts[1]["token"].clone()), (Some("bare"), json!(false)));
    assert_eq!(contexts[0]["default"], json!(true));

    let r = mcp.call("rstream_context_get", json!({"name": "bare"})).await;
    transcript += &wire(&r);
    let bare = r.structured_content.clone().unwrap();
    assert_eq!((bare["engine"].as_str(), bare["token"].clone()), (Some("bare.example:443"), json!(true)));
    assert_eq!(bare["tokenOverridden"], json!(true));

    let r = mcp.call("rstream_context_get", json!({})).await;
    transcript += &wire(&r);
    assert_eq!(r.structured_content.clone().unwrap()["name"], "lab");

    // An agent that guesses a token as a context name gets the error, not the echo.
    let r = mcp.call("rstream_context_get", json!({"name": TOKEN_LAB})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("[redacted]") && text(&r).contains("not found"), "{}", text(&r));
    transcript += &wire(&r);

    transcript += &wire(&mcp.call("rstream_runtime_status", json!({})).await);
    for secret in [TOKEN_LAB, TOKEN_ENV, "lab-secret-payload", "env-secret-payload"] {
        assert!(!transcript.contains(secret), "a token reached the agent: {transcript}");
    }
    assert!(!mcp.stderr().contains("secret-payload"), "a token reached the log");
}

#[tokio::test]
async fn tool_failures_are_error_results_an_agent_can_act_on() {
    let mcp = Mcp::start(&config("errors"), &[], None).await;
    let msg = mcp.err("rstream_context_get", json!({"context": "lab"})).await;
    assert_eq!(msg, "unknown argument \"context\" for rstream_context_get (accepted: name)");
    let msg = mcp.err("rstream_context_get", json!({"name": 7})).await;
    assert_eq!(msg, "argument \"name\" must be a string");
    let msg = mcp.err("rstream_launch_missiles", json!({})).await;
    assert!(msg.contains("unknown tool \"rstream_launch_missiles\"") && msg.contains("rstream_runtime_status"));
    // The session is still usable afterwards.
    mcp.ok("rstream_context_list", json!({})).await;
}

#[tokio::test]
async fn engine_tools_without_a_reachable_engine_fail_with_the_reason() {
    let dir = scratch("noengine");
    let cfg = dir.join("config.yaml");
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &cfg,
        format!("version: 1\ndefaults:\n  context:\n    name: gone\ncontexts:\n- name: gone\n  engine: 127.0.0.1:{port}\n  \
                 auth:\n    token:\n      storage:\n        kind: inline\n        value: {TOKEN_LAB}\n"),
    )
    .unwrap();
    let mcp = Mcp::start(&cfg, &[], None).await;
    let msg = mcp.err("rstream_webtty_list", json!({})).await;
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(!msg.contains(TOKEN_LAB));
    let msg = mcp.err("rstream_webtty_list", json!({"filter": "labels.=x"})).await;
    assert!(msg.contains("invalid filter"), "{msg}");

    let mcp = Mcp::start(&dir.join("none.yaml"), &[], None).await;
    let msg = mcp.err("rstream_webtty_list", json!({})).await;
    assert!(msg.contains("no context selected") && msg.contains("rstream_runtime_status"), "{msg}");
}

#[tokio::test]
async fn tools_and_deny_tools_limit_what_is_listed_and_refusals_name_the_flag() {
    let cfg = config("policy");
    let args = ["--tools", "rstream_context_*,rstream_runtime_status", "--deny-tools", "rstream_context_get"];
    let mcp = Mcp::start_with(&cfg, &args, &[], None).await;
    let mut names: Vec<String> =
        mcp.client.list_all_tools().await.unwrap().iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["rstream_context_list", "rstream_runtime_status"]);
    let instructions = mcp.client.peer_info().unwrap().instructions.clone().unwrap_or_default();
    assert!(instructions.contains("--tools rstream_context_*,rstream_runtime_status --deny-tools"), "{instructions}");
    let msg = mcp.err("rstream_context_get", json!({})).await;
    assert!(msg.contains("disabled on this MCP server by its tool policy: --deny-tools"), "{msg}");
    let msg = mcp.err("rstream_webtty_exec", json!({"url": "ws://127.0.0.1:1", "command": ["true"]})).await;
    assert!(msg.contains("--tools (enabled: rstream_context_*, rstream_runtime_status)"), "{msg}");
    assert!(mcp.ok("rstream_context_list", json!({})).await["contexts"].is_array());
}

#[test]
fn a_policy_naming_no_tool_stops_the_server_before_it_serves() {
    let cfg = config("policy-typo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rstream"))
        .args(["mcp", "serve", "--deny-tools", "rstream_webtty_exce"])
        .env("RSTREAM_CONFIG", &cfg)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--deny-tools: \"rstream_webtty_exce\" matches no tool"), "{stderr}");
    assert!(out.stdout.is_empty());
}
