//! `--verify` for `codex setup`: start the configured MCP server and check it answers like ours should.
//!
//! Spawns `<command> mcp serve` with the entry's arguments (its tool policy flags) and environment, speaks
//! newline-delimited JSON-RPC over its stdio (`initialize`, `notifications/initialized`, `tools/list`) and checks
//! the essential tools the policy leaves enabled are present, all within [`VERIFY_TIMEOUT`]; the child is killed
//! afterwards either way.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::tool_policy::ToolPolicyFlags;

/// Deadline for the whole verification.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Tools an agent needs; their absence fails verification.
pub const REQUIRED_TOOLS: [&str; 4] =
    ["rstream_runtime_status", "rstream_context_list", "rstream_webtty_list", "rstream_webtty_exec"];
/// The one of [`REQUIRED_TOOLS`] that changes things (`--read-only` disables it).
const REQUIRED_CHANGING_TOOL: &str = "rstream_webtty_exec";
/// Protocol version we offer.
const PROBE_PROTOCOL_VERSION: &str = "2025-11-25";

/// The [`REQUIRED_TOOLS`] that `flags` leave enabled (a policy may disable essentials on purpose).
pub fn required_tools(flags: &ToolPolicyFlags) -> Vec<&'static str> {
    REQUIRED_TOOLS.into_iter().filter(|t| flags.may_enable(t, *t != REQUIRED_CHANGING_TOOL)).collect()
}

/// What verification found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// `succeeded` or `failed`.
    pub status: String,
    /// Negotiated protocol version.
    pub protocol_version: String,
    /// `serverInfo.name`.
    pub server_name: String,
    /// `serverInfo.version`.
    pub server_version: String,
    /// Number of tools listed.
    pub tool_count: usize,
    /// The required tools.
    pub required_tools: Vec<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs the probe against `command <args>` (`mcp serve` and its policy flags) with `env`, requiring the
/// `required` tools.
pub fn verify(command: &Path, args: &[String], env: &BTreeMap<String, String>, required: &[&str]) -> Verification {
    let required_tools = required.iter().map(|t| (*t).to_owned()).collect();
    let mut v = Verification { required_tools, ..Default::default() };
    match probe(command, args, env, &mut v) {
        Ok(()) => v.status = "succeeded".into(),
        Err(e) => {
            v.status = "failed".into();
            v.error = Some(e);
        }
    }
    v
}

fn probe(command: &Path, args: &[String], env: &BTreeMap<String, String>, v: &mut Verification) -> Result<(), String> {
    let mut child = Command::new(command)
        .args(args)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {} mcp serve: {e}", command.display()))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut session = Session { stdin, lines: rx, deadline: std::time::Instant::now() + VERIFY_TIMEOUT };
    let result = handshake(&mut session, v);
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// One JSON-RPC conversation over the child's stdio.
struct Session {
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    deadline: std::time::Instant,
}

impl Session {
    fn send(&mut self, msg: &Value) -> Result<(), String> {
        writeln!(self.stdin, "{msg}").and_then(|_| self.stdin.flush()).map_err(|e| format!("write to server: {e}"))
    }

    fn call(&mut self, id: u64, method: &str, params: Value) -> Result<Value, String> {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let left = self.deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("no answer to {method} within {VERIFY_TIMEOUT:?}"))?;
            let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
            if msg["id"] != json!(id) {
                continue;
            }
            if let Some(err) = msg.get("error") {
                return Err(format!("{method} failed: {err}"));
            }
            return Ok(msg["result"].clone());
        }
    }
}

fn handshake(session: &mut Session, v: &mut Verification) -> Result<(), String> {
    let client = json!({"name": "rstream-setup-verify", "version": env!("CARGO_PKG_VERSION")});
    let init = session.call(
        1,
        "initialize",
        json!({"protocolVersion": PROBE_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": client}),
    )?;
    v.protocol_version = init["protocolVersion"].as_str().unwrap_or_default().to_owned();
    v.server_name = init["serverInfo"]["name"].as_str().unwrap_or_default().to_owned();
    v.server_version = init["serverInfo"]["version"].as_str().unwrap_or_default().to_owned();
    session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    let tools = session.call(2, "tools/list", json!({}))?;
    let names: Vec<&str> =
        tools["tools"].as_array().map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect()).unwrap_or_default();
    v.tool_count = names.len();
    if v.server_name != "rstream" {
        return Err(format!("server name is {:?}, expected \"rstream\"", v.server_name));
    }
    let missing: Vec<&str> = v.required_tools.iter().map(String::as_str).filter(|t| !names.contains(t)).collect();
    if !missing.is_empty() {
        return Err(format!("missing tools: {}", missing.join(", ")));
    }
    Ok(())
}
