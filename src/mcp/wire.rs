//! The stdio gate: newline-delimited JSON-RPC between the client and rmcp, checked on the way in as upstream
//! does before rmcp sees anything.
//!
//! A reader thread takes one line at a time from stdin (at most [`MCP_MAX_MESSAGE_LEN`] bytes) and answers
//! itself what must not reach the server loop:
//!
//! | input | answer |
//! |---|---|
//! | not JSON | -32700 "Parse error", id null |
//! | not a JSON-RPC 2.0 object (method missing, id not a string or integer, params not an object) | -32600 "Invalid Request" |
//! | `initialize` without a protocolVersion, a capabilities object, clientInfo.name and .version | -32602 "Invalid params" |
//! | a request whose id is still in flight | -32600 "request id is already in progress" |
//! | a request beyond [`crate::limits::MCP_MAX_IN_FLIGHT`] open ones | -32000 "server is busy" |
//! | known method, params of the wrong shape | -32602 "Invalid params" |
//!
//! Everything else goes to rmcp typed. A writer thread puts rmcp's messages (and the gate's own answers) on
//! stdout, one per line; a message leaving with an id ends that request in the [`CallBook`].

use std::borrow::Cow;
use std::future::Future;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleServer;
use serde_json::{json, Value};

use super::calls::{Admission, CallBook, IdKey, Kind};
use crate::limits::{MCP_MAX_MESSAGE_LEN, MCP_STDIO_QUEUE};

/// rmcp's side of the gate.
pub struct StdioGate {
    inbound: Receiver<ClientJsonRpcMessage>,
    outbound: Sender<String>,
    book: Arc<CallBook>,
}

/// The running reader and writer threads.
pub struct GateThreads {
    outbound: Sender<String>,
    writer: std::thread::JoinHandle<()>,
}

impl GateThreads {
    /// Stops accepting answers and waits (up to `grace`) until the queued ones are written.
    pub fn finish(self, grace: std::time::Duration) {
        self.outbound.close();
        let end = std::time::Instant::now() + grace;
        while !self.writer.is_finished() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Starts the gate on `input` / `output` (stdin / stdout in production).
pub fn start(
    input: impl BufRead + Send + 'static,
    output: impl Write + Send + 'static,
    book: Arc<CallBook>,
) -> (StdioGate, GateThreads) {
    let (in_tx, inbound) = async_channel::bounded(MCP_STDIO_QUEUE);
    let (outbound, out_rx) = async_channel::bounded::<String>(MCP_STDIO_QUEUE);
    let reader_book = Arc::clone(&book);
    let answers = outbound.clone();
    std::thread::Builder::new()
        .name("rstream-mcp-stdin".into())
        .spawn(move || read_loop(input, &in_tx, &answers, &reader_book))
        .expect("spawn the stdin reader");
    let writer = std::thread::Builder::new()
        .name("rstream-mcp-stdout".into())
        .spawn(move || write_loop(output, &out_rx))
        .expect("spawn the stdout writer");
    (StdioGate { inbound, outbound: outbound.clone(), book }, GateThreads { outbound, writer })
}

fn write_loop(mut output: impl Write, lines: &Receiver<String>) {
    while let Ok(line) = lines.recv_blocking() {
        let written =
            output.write_all(line.as_bytes()).and_then(|()| output.write_all(b"\n")).and_then(|()| output.flush());
        if written.is_err() {
            lines.close(); // the client is gone: later sends fail instead of piling up
            return;
        }
    }
}

fn read_loop(
    mut input: impl BufRead,
    inbound: &Sender<ClientJsonRpcMessage>,
    answers: &Sender<String>,
    book: &CallBook,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut input, &mut line) {
            Ok(Line::End) | Err(_) => return,
            Ok(Line::TooLong) => {
                let msg = format!("Invalid Request: message longer than {MCP_MAX_MESSAGE_LEN} bytes");
                if answers.send_blocking(error_line(&Value::Null, -32600, &msg)).is_err() {
                    return;
                }
            }
            Ok(Line::Message) => match admit(&line, book) {
                Verdict::Pass(message) => {
                    if inbound.send_blocking(*message).is_err() {
                        return;
                    }
                }
                Verdict::Answer(answer) => {
                    if answers.send_blocking(answer).is_err() {
                        return;
                    }
                }
                Verdict::Ignore => {}
            },
        }
    }
}

enum Line {
    Message,
    TooLong,
    End,
}

/// Reads one line (without its newline) into `buf`; a line over the limit is consumed and reported.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
    let limit = MCP_MAX_MESSAGE_LEN as u64 + 1;
    let n = io::Read::take(&mut *input, limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Message);
    }
    if buf.len() < limit as usize {
        return Ok(Line::Message); // the last line, without a newline
    }
    // Too long: drop the rest of it.
    loop {
        buf.clear();
        let n = io::Read::take(&mut *input, 64 * 1024).read_until(b'\n', buf)?;
        if n == 0 || buf.last() == Some(&b'\n') {
            buf.clear();
            return Ok(Line::TooLong);
        }
    }
}

/// What the gate does with one line.
enum Verdict {
    Pass(Box<ClientJsonRpcMessage>),
    Answer(String),
    Ignore,
}

fn error_line(id: &Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

fn admit(line: &[u8], book: &CallBook) -> Verdict {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Ignore;
    }
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return Verdict::Answer(error_line(&Value::Null, -32700, "Parse error"));
    };
    let invalid = |id: &Value| Verdict::Answer(error_line(id, -32600, "Invalid Request"));
    let Some(object) = value.as_object() else { return invalid(&Value::Null) };
    let id_value = object.get("id").cloned().unwrap_or(Value::Null);
    let request_id = match object.get("id") {
        None => None,
        Some(raw) => match serde_json::from_value::<RequestId>(raw.clone()) {
            Ok(id) => Some(id),
            Err(_) => return invalid(&Value::Null),
        },
    };
    let method = object.get("method").and_then(Value::as_str).filter(|m| !m.trim().is_empty()).map(str::to_owned);
    let params_ok = object.get("params").is_none_or(|p| p.is_object() || p.is_null());
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") || !params_ok {
        return invalid(&id_value);
    }
    let answers_us = object.contains_key("result") || object.contains_key("error");
    let params_valid = match method.as_deref() {
        Some("initialize") => initialize_params_valid(object.get("params")),
        Some("tools/call") => call_params_valid(object.get("params")),
        _ => true,
    };
    let Some(method) = method else {
        // A response to a request of ours (we send none) or junk.
        return match (request_id.is_some(), answers_us) {
            (true, true) => typed(value).map_or(Verdict::Ignore, |m| Verdict::Pass(Box::new(m))),
            _ => invalid(&id_value),
        };
    };
    let Some(request_id) = request_id else { return notification(&method, value, book) };
    if !params_valid {
        return Verdict::Answer(error_line(&id_value, -32602, "Invalid params"));
    }
    let Some(message) = typed(value) else {
        return Verdict::Answer(error_line(&id_value, -32602, "Invalid params"));
    };
    let kind = if method == "tools/call" { Kind::ToolCall } else { Kind::Other };
    match book.admit(IdKey::of(&request_id), kind) {
        Admission::Admitted => Verdict::Pass(Box::new(message)),
        Admission::Duplicate => Verdict::Answer(error_line(&id_value, -32600, "request id is already in progress")),
        Admission::Busy => Verdict::Answer(error_line(&id_value, -32000, "server is busy")),
    }
}

fn typed(value: Value) -> Option<ClientJsonRpcMessage> {
    serde_json::from_value(value).ok()
}

/// Notifications are never answered; a cancellation also ends a quick request in the book.
fn notification(method: &str, value: Value, book: &CallBook) -> Verdict {
    if method == "notifications/cancelled" {
        let id = value.pointer("/params/requestId").cloned().and_then(|v| serde_json::from_value::<RequestId>(v).ok());
        if let Some(id) = id {
            book.cancelled(&IdKey::of(&id));
        }
    }
    typed(value).map_or(Verdict::Ignore, |m| Verdict::Pass(Box::new(m)))
}

/// `tools/call` needs a tool name and, if any, an object of arguments.
fn call_params_valid(params: Option<&Value>) -> bool {
    let Some(p) = params.and_then(Value::as_object) else { return false };
    p.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty())
        && p.get("arguments").is_none_or(|a| a.is_object() || a.is_null())
}

/// Upstream's check: a non-empty protocolVersion, a capabilities object, clientInfo with name and version.
fn initialize_params_valid(params: Option<&Value>) -> bool {
    let Some(p) = params.and_then(Value::as_object) else { return false };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
    let info = p.get("clientInfo").and_then(Value::as_object);
    text(p.get("protocolVersion"))
        && p.get("capabilities").is_some_and(Value::is_object)
        && info.is_some_and(|i| text(i.get("name")) && text(i.get("version")))
}

impl Transport<RoleServer> for StdioGate {
    type Error = io::Error;

    fn name() -> Cow<'static, str> {
        "rstream-stdio-gate".into()
    }

    fn send(&mut self, item: ServerJsonRpcMessage) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        // The request is over once its answer is queued: end it first, so a client that reuses the id right
        // after reading the answer is not told it is still in progress.
        if let Some(id) = match &item {
            JsonRpcMessage::Response(r) => Some(&r.id),
            JsonRpcMessage::Error(e) => e.id.as_ref(),
            _ => None,
        } {
            self.book.finish(&IdKey::of(id));
        }
        let line = serde_json::to_string(&item);
        let outbound = self.outbound.clone();
        async move {
            let line = line.map_err(io::Error::other)?;
            outbound.send(line).await.map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "stdout closed"))
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        let inbound = self.inbound.clone();
        async move { inbound.recv().await.ok() }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inbound.close();
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(line: &str, book: &CallBook) -> Result<(), Value> {
        match admit(line.as_bytes(), book) {
            Verdict::Pass(_) | Verdict::Ignore => Ok(()),
            Verdict::Answer(a) => Err(serde_json::from_str(&a).unwrap()),
        }
    }

    fn code(line: &str, book: &CallBook) -> i64 {
        verdict(line, book).unwrap_err()["error"]["code"].as_i64().unwrap()
    }

    #[test]
    fn envelopes_are_checked_before_rmcp_sees_them() {
        let book = CallBook::new();
        assert_eq!(code("{oops", &book), -32700);
        assert_eq!(code("[]", &book), -32600);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, &book), -32600);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, &book), -32600);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#, &book), -32600);
        assert_eq!(code(r#"{"id":1,"method":"ping"}"#, &book), -32600);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#, &book), -32602);
        let bad_arguments = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":[]}}"#;
        assert_eq!(code(bad_arguments, &book), -32602);
        assert!(verdict("   ", &book).is_ok());
        assert!(book.is_empty(), "refused requests are not in flight");
    }

    #[test]
    fn initialize_needs_upstreams_params() {
        let ok =
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}});
        assert!(initialize_params_valid(Some(&ok)));
        for broken in ["protocolVersion", "capabilities", "clientInfo"] {
            let mut p = ok.clone();
            p.as_object_mut().unwrap().remove(broken);
            assert!(!initialize_params_valid(Some(&p)), "without {broken}");
        }
        let mut blank = ok.clone();
        blank["clientInfo"]["version"] = json!(" ");
        assert!(!initialize_params_valid(Some(&blank)));
        assert!(!initialize_params_valid(None));
    }

    #[test]
    fn a_cancelled_quick_request_leaves_the_book() {
        let book = CallBook::new();
        assert!(verdict(r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#, &book).is_ok());
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#, &book), -32600);
        assert!(verdict(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}}"#, &book)
            .is_ok());
        assert!(book.is_empty());
    }

    #[test]
    fn overlong_lines_are_dropped_whole() {
        let mut data = vec![b'x'; MCP_MAX_MESSAGE_LEN + 10];
        data.extend_from_slice(b"\n{\"a\":1}\n");
        let mut input = io::Cursor::new(data);
        let mut buf = Vec::new();
        assert!(matches!(read_line(&mut input, &mut buf).unwrap(), Line::TooLong));
        buf.clear();
        assert!(matches!(read_line(&mut input, &mut buf).unwrap(), Line::Message));
        assert_eq!(buf, b"{\"a\":1}");
        buf.clear();
        assert!(matches!(read_line(&mut input, &mut buf).unwrap(), Line::End));
    }
}
