//! `rstream mcp serve` on the wire, played by a raw JSON-RPC peer that sends what no SDK would: broken JSON,
//! incomplete `initialize` params, a duplicate in-flight id, a flood of calls, a cancellation mid-command. Each
//! answer is upstream's (-32700, -32600, -32602, -32000 "server is busy") and nothing else is disturbed.

mod mcp_common;
mod webtty_support;

use std::time::Duration;

use mcp_common::raw::{error_code, RawMcp};
use mcp_common::scratch;
use serde_json::{json, Value};
use webtty_support::{alive, poll, read_pid, LocalServer};

const ANSWER: Duration = Duration::from_secs(20);

/// A server with the bearer token of `server` (exec over ws://, no engine needed).
fn serve(tag: &str, server: &LocalServer, args: &[&str]) -> RawMcp {
    let dir = scratch(tag);
    let mut mcp = RawMcp::start(&dir.join("config.yaml"), args, &[("RSTREAM_WEBTTY_AUTH_TOKEN", &server.token)]);
    mcp.initialize("2025-11-25");
    mcp
}

/// A remote command that marks itself started in `dir` as `started.<n>`, then waits for `dir/go`.
fn held_command(dir: &std::path::Path, n: usize) -> Value {
    let script = format!(
        "touch {d}/started.{n}; while [ ! -e {d}/go ]; do sleep 0.02; done; echo released {n}",
        d = dir.display()
    );
    json!(["sh", "-c", script])
}

fn started(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("started."))
        .count()
}

#[test]
fn malformed_messages_get_upstreams_json_rpc_errors_and_the_session_goes_on() {
    let dir = scratch("wire-malformed");
    let mut mcp = RawMcp::start(&dir.join("config.yaml"), &[], &[]);
    mcp.send_line("{not json");
    let parse = mcp.next(ANSWER).expect("an answer to broken JSON");
    assert_eq!(
        (error_code(&parse), parse["error"]["message"].as_str(), &parse["id"]),
        (-32700, Some("Parse error"), &Value::Null)
    );
    mcp.send_line("[1, 2]");
    assert_eq!(error_code(&mcp.next(ANSWER).unwrap()), -32600);
    mcp.send(&json!({"jsonrpc": "1.0", "id": 3, "method": "initialize"}));
    assert_eq!(error_code(&mcp.answer(&json!(3), ANSWER)), -32600);
    for (id, params) in [
        (4, json!({})),
        (5, json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x"}})),
        (6, json!({"protocolVersion": "", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}})),
        (7, json!({"protocolVersion": "2025-11-25", "capabilities": [], "clientInfo": {"name": "x", "version": "1"}})),
    ] {
        mcp.request(json!(id), "initialize", params.clone());
        let answer = mcp.answer(&json!(id), ANSWER);
        assert_eq!(
            (error_code(&answer), answer["error"]["message"].as_str()),
            (-32602, Some("Invalid params")),
            "{params}"
        );
    }
    // Still serving: a proper handshake and a tool list.
    assert_eq!(mcp.initialize("2025-11-25")["protocolVersion"], "2025-11-25");
    mcp.request(json!(8), "tools/list", json!({}));
    assert!(mcp.answer(&json!(8), ANSWER)["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()));
}

#[test]
fn initialize_answers_2025_11_25_or_the_older_version_the_client_asks_for() {
    let dir = scratch("wire-version");
    for (asked, answered) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2024-11-05", "2024-11-05"),
        ("2099-01-01", "2025-11-25"),
        ("2026-07-28", "2025-11-25"),
    ] {
        let mut mcp = RawMcp::start(&dir.join("config.yaml"), &[], &[]);
        assert_eq!(mcp.initialize(asked)["protocolVersion"], answered, "client asked {asked}");
    }
}

#[test]
fn a_duplicate_in_flight_id_is_refused_and_the_first_call_still_answers() {
    let server = LocalServer::start(&[]);
    let marks = scratch("wire-dup-marks");
    let mut mcp = serve("wire-dup", &server, &[]);
    mcp.call(json!(7), "rstream_webtty_exec", json!({"url": server.url(), "command": held_command(&marks, 1)}));
    poll(ANSWER, || (started(&marks) == 1).then_some(())).expect("the first call runs");
    mcp.call(json!(7), "rstream_runtime_status", json!({}));
    let dup = mcp.answer(&json!(7), ANSWER);
    assert_eq!(
        (error_code(&dup), dup["error"]["message"].as_str()),
        (-32600, Some("request id is already in progress")),
        "{dup}"
    );
    std::fs::write(marks.join("go"), "").unwrap();
    let first = mcp.answer(&json!(7), ANSWER);
    assert_eq!(first["result"]["structuredContent"]["stdout"], "released 1\n", "{first}");
    // The id is free again once answered.
    mcp.call(json!(7), "rstream_runtime_status", json!({}));
    assert!(mcp.answer(&json!(7), ANSWER).get("result").is_some());
}

#[test]
fn twenty_five_calls_at_once_run_eight_queue_sixteen_and_refuse_one() {
    let server = LocalServer::start(&[]);
    let marks = scratch("wire-busy-marks");
    let mut mcp = serve("wire-busy", &server, &[]);
    for n in 1..=25 {
        mcp.call(json!(n), "rstream_webtty_exec", json!({"url": server.url(), "command": held_command(&marks, n)}));
    }
    let busy = mcp.answer(&json!(25), ANSWER);
    assert_eq!((error_code(&busy), busy["error"]["message"].as_str()), (-32000, Some("server is busy")), "{busy}");
    poll(ANSWER, || (started(&marks) == 8).then_some(())).expect("eight calls run");
    // The ninth waits for a free slot: nothing more starts while the eight hold theirs.
    assert!(
        poll(Duration::from_millis(700), || (started(&marks) > 8).then_some(())).is_none(),
        "more than 8 ran at once"
    );
    std::fs::write(marks.join("go"), "").unwrap();
    for n in 1..=24 {
        let answer = mcp.answer(&json!(n), Duration::from_secs(60));
        assert_eq!(answer["result"]["structuredContent"]["stdout"], format!("released {n}\n"), "{answer}");
    }
    assert_eq!(started(&marks), 24);
}

#[test]
fn cancelling_a_call_kills_the_remote_process_group_within_two_seconds() {
    let server = LocalServer::start(&[]);
    let marks = scratch("wire-cancel-marks");
    let pid_file = marks.join("pid");
    let mut mcp = serve("wire-cancel", &server, &[]);
    let script = format!("echo $$ > {}; exec sleep 60", pid_file.display());
    mcp.call(json!("slow"), "rstream_webtty_exec", json!({"url": server.url(), "command": ["sh", "-c", script]}));
    let pid = read_pid(&pid_file);
    assert!(alive(pid));
    mcp.cancel(json!("slow"));
    let gone = poll(Duration::from_secs(2), || (!alive(pid)).then_some(()));
    assert!(gone.is_some(), "remote sleep {pid} still running 2 s after notifications/cancelled");
    // A cancelled request gets no answer; the session carries on.
    assert!(mcp.try_answer(&json!("slow"), Duration::from_millis(300)).is_none());
    mcp.call(json!(2), "rstream_runtime_status", json!({}));
    assert!(mcp.answer(&json!(2), ANSWER).get("result").is_some());
}
