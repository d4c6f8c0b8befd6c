//! A raw JSON-RPC peer for `rstream mcp serve`: newline-delimited messages written by hand, so tests can send
//! what no SDK sends (broken JSON, duplicate ids, floods, bare cancellations) and read every answer as sent.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running `rstream mcp serve` spoken to line by line.
pub struct RawMcp {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Answers read while waiting for another one.
    pending: VecDeque<Value>,
}

impl RawMcp {
    /// Starts `rstream mcp serve <args>` with `RSTREAM_CONFIG=config` plus `env`.
    pub fn start(config: &Path, args: &[&str], env: &[(&str, &str)]) -> RawMcp {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rstream"));
        cmd.args(["mcp", "serve"]).args(args);
        for k in ["RSTREAM_CONTEXT", "RSTREAM_ENGINE", "RSTREAM_AUTHENTICATION_TOKEN", "RSTREAM_API_URL"] {
            cmd.env_remove(k);
        }
        cmd.env("RSTREAM_CONFIG", config).envs(env.iter().copied());
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn mcp serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        RawMcp { stdin: child.stdin.take(), child, lines, pending: VecDeque::new() }
    }

    /// Writes one line as is.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to mcp serve");
        stdin.flush().unwrap();
    }

    /// Writes one message.
    pub fn send(&mut self, message: &Value) {
        self.send_line(&message.to_string());
    }

    /// A request `method` with `params` and `id`.
    pub fn request(&mut self, id: Value, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    }

    /// A `tools/call` request.
    pub fn call(&mut self, id: Value, tool: &str, arguments: Value) {
        self.request(id, "tools/call", json!({"name": tool, "arguments": arguments}));
    }

    /// `notifications/cancelled` for `id`.
    pub fn cancel(&mut self, id: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "test"}}));
    }

    /// The handshake with `protocol_version`; returns the `initialize` result.
    pub fn initialize(&mut self, protocol_version: &str) -> Value {
        let params = json!({"protocolVersion": protocol_version, "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"}});
        self.request(json!(0), "initialize", params);
        let answer = self.answer(&json!(0), Duration::from_secs(20));
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        answer.get("result").cloned().unwrap_or_else(|| panic!("initialize failed: {answer}"))
    }

    /// The next message, whatever it answers.
    pub fn next(&mut self, limit: Duration) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        let line = self.lines.recv_timeout(limit).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("server wrote non-JSON ({e}): {line:?}")))
    }

    /// The answer to request `id` (other answers are kept for later), or a panic after `limit`.
    pub fn answer(&mut self, id: &Value, limit: Duration) -> Value {
        self.try_answer(id, limit).unwrap_or_else(|| panic!("no answer to id {id} within {limit:?}"))
    }

    /// The answer to request `id`, if one arrives within `limit`.
    pub fn try_answer(&mut self, id: &Value, limit: Duration) -> Option<Value> {
        if let Some(i) = self.pending.iter().position(|m| &m["id"] == id) {
            return self.pending.remove(i);
        }
        let end = Instant::now() + limit;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("non-JSON ({e}): {line:?}"));
            if &message["id"] == id {
                return Some(message);
            }
            self.pending.push_back(message);
        }
    }

    /// Closes stdin (the client goes away).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Whether the server process has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }
}

impl Drop for RawMcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON-RPC error code of an answer (panics when it is a result).
pub fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error: {answer}"))
}
