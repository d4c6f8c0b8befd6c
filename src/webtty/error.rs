//! The error type of the WebTTY client boundary (what `webtty exec`, `webtty client` and the MCP tools see).

use std::fmt;

/// Why a WebTTY client operation failed. Each variant carries the offending value or the peer's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebttyError {
    /// The target URL or exec path is not usable (`--url "ftp://x": unsupported scheme`).
    BadTarget(String),
    /// Dialing, TLS, the tunnel or the WebSocket handshake failed.
    Connect(String),
    /// The server answered the `Open` with `Error{msg}`, or ended the session with one.
    Refused(String),
    /// The server broke the protocol (unexpected or malformed message).
    Protocol(String),
    /// The connection ended before the server sent `Close`.
    Disconnected(String),
    /// A local I/O failure (stdin, terminal, writing output).
    Local(String),
    /// The local reader of the remote output went away (a closed pipe: `… | head -1`).
    OutputClosed(String),
}

impl WebttyError {
    /// A failed local write of remote output to `stream` (`stdout`, `stderr`): [`WebttyError::OutputClosed`] for
    /// a closed pipe, [`WebttyError::Local`] otherwise.
    pub fn output(stream: &str, e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe => WebttyError::OutputClosed(format!("{stream}: {e}")),
            _ => WebttyError::Local(format!("writing to {stream}: {e}")),
        }
    }
}

impl fmt::Display for WebttyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebttyError::BadTarget(msg) => write!(f, "bad webtty target: {msg}"),
            WebttyError::Connect(msg) => write!(f, "{msg}"),
            WebttyError::Refused(msg) => write!(f, "webtty server error: {msg}"),
            WebttyError::Protocol(msg) => write!(f, "webtty protocol error: {msg}"),
            WebttyError::Disconnected(msg) => write!(f, "webtty connection lost: {msg}"),
            WebttyError::Local(msg) | WebttyError::OutputClosed(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for WebttyError {}
