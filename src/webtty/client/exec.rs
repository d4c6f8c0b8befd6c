//! Run one command on a WebTTY server: a non-interactive session (no PTY) whose stdout and stderr are either
//! collected up to a cap ([`ExecOutput::Capture`]) or written to two local writers as they arrive
//! ([`ExecOutput::Stream`]), with an optional client-side timeout or cancellation that ends the session (the
//! server then kills the remote process group). [`exec_capturing`] also hands back what a session that broke had
//! captured until then. [`command_exit_code`] tells a command the server could not start (127 / 126, as a shell
//! reports it) from every other failure.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::error::WebttyError;
use super::connect::{connect, ClientWs, ConnectOptions};
use super::protocol::{self, ClientRx, ClientTx};
use super::resolve::resolve;
use super::target::Target;
use crate::limits;
use crate::proto::webtty::message::Payload;
use crate::proto::webtty::{data, Config, Data, DataType, Environment, Options, Username, Workdir};

/// Exit code reported when the client-side timeout ended the session (as `timeout(1)` does).
pub const TIMED_OUT_EXIT_CODE: i32 = 124;
/// Exit code reported when the session ended without one (cancelled, or broken after it opened).
pub const NO_EXIT_CODE: i32 = -1;

/// A future that completes when the caller wants the session ended (see [`ExecRequest::cancel`]).
pub type CancelSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What to run. Build with [`ExecRequest::command`] and adjust the public fields.
pub struct ExecRequest {
    /// argv (must not be empty).
    pub command: Vec<String>,
    /// Extra environment for the remote process.
    pub env: Vec<(String, String)>,
    /// Remote working directory (server default: the user's home).
    pub workdir: Option<String>,
    /// OS user (name or uid) to run as; the server refuses it unless it allows client-selected users.
    pub user: Option<String>,
    /// End the session after this long (remote group killed); the result then has `timed_out`.
    pub timeout: Option<Duration>,
    /// Bytes forwarded to the remote stdin, ended with `eos`; `None` gives the remote process `/dev/null`.
    pub stdin: Option<Box<dyn AsyncRead + Unpin + Send>>,
    /// Most stdout+stderr bytes kept with [`ExecOutput::Capture`]; the rest is dropped and `truncated` set.
    pub output_cap: usize,
    /// Where the remote output goes (default: captured into the result).
    pub output: ExecOutput,
    /// How to authenticate and the exec path.
    pub connect: ConnectOptions,
    /// Ends the session early when it completes (remote group killed); the result then has `cancelled`.
    pub cancel: Option<CancelSignal>,
}

/// A local writer remote output streams into.
pub type OutputWriter = Box<dyn AsyncWrite + Unpin + Send>;

/// Where an exec session's output goes.
#[derive(Default)]
pub enum ExecOutput {
    /// Into [`ExecResult::stdout`] / [`ExecResult::stderr`], up to [`ExecRequest::output_cap`].
    #[default]
    Capture,
    /// Written (and flushed) to these as it arrives, in order; the result's buffers stay empty. A failed write
    /// ends the session ([`WebttyError::OutputClosed`] when the reader went away).
    Stream {
        /// Receives remote stdout.
        stdout: OutputWriter,
        /// Receives remote stderr.
        stderr: OutputWriter,
    },
}

impl ExecRequest {
    /// A request for `command` with defaults: no env, no stdin, no timeout, cap [`limits::EXEC_OUTPUT_CAP`].
    pub fn command<I, S>(command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            command: command.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            workdir: None,
            user: None,
            timeout: None,
            stdin: None,
            output_cap: limits::EXEC_OUTPUT_CAP,
            output: ExecOutput::Capture,
            connect: ConnectOptions::default(),
            cancel: None,
        }
    }
}

/// The outcome of [`exec`]; serialises as upstream's `{url, command, exit_code, stdout, stderr, duration_ms}`
/// plus `timed_out` / `truncated` when set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecResult {
    /// The server URL (`rstrm://NAME/` or `ws://HOST:PORT/`).
    pub url: String,
    /// argv as run.
    pub command: Vec<String>,
    /// Remote exit code (128+signal when a signal ended it; [`TIMED_OUT_EXIT_CODE`] after a timeout).
    pub exit_code: i32,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// Wall time from dialing to the end of the session.
    pub duration_ms: u64,
    /// The client-side timeout ended the session.
    pub timed_out: bool,
    /// Output beyond the cap was dropped.
    pub truncated: bool,
    /// [`ExecRequest::cancel`] ended the session.
    pub cancelled: bool,
}

/// A session that failed, with what it had captured when the failure happened after it opened.
#[derive(Debug)]
pub struct ExecFailure {
    /// Why it failed.
    pub error: WebttyError,
    /// Output so far (exit code [`NO_EXIT_CODE`]); `None` when no session was opened.
    pub partial: Option<ExecResult>,
}

impl From<WebttyError> for ExecFailure {
    fn from(error: WebttyError) -> Self {
        ExecFailure { error, partial: None }
    }
}

/// Runs `req` on the WebTTY server at `url` (`ws://`, `wss://` or `rstrm://`).
pub async fn exec(url: &str, req: ExecRequest) -> Result<ExecResult, WebttyError> {
    exec_capturing(url, req).await.map_err(|f| f.error)
}

/// [`exec`], keeping the output of a session that broke after it opened.
pub async fn exec_capturing(url: &str, mut req: ExecRequest) -> Result<ExecResult, ExecFailure> {
    let started = Instant::now();
    let mut cancel = req.cancel.take();
    let cancelled = async {
        match cancel.as_mut() {
            Some(signal) => signal.await,
            None => future::pending().await,
        }
        Err(WebttyError::Local("cancelled while connecting".into()))
    };
    let target = resolve(Target::parse(url, req.connect.exec_path.as_deref())?, &req.connect).await?;
    let deadline = req.timeout.map(|t| started + t);
    let connecting = future::or(connect(&target, &req.connect), async {
        match deadline {
            Some(at) => Timer::at(at).await,
            None => future::pending().await,
        };
        Err(WebttyError::Connect(format!("{}: timed out while connecting", target.display_url())))
    });
    let ws = future::or(connecting, cancelled).await?;
    req.cancel = cancel;
    session(ws, target.display_url(), req, started).await
}

/// Runs `req` over an established WebSocket (`url` is only reported); `started` is when dialing began.
pub async fn exec_on(ws: ClientWs, url: String, req: ExecRequest, started: Instant) -> Result<ExecResult, WebttyError> {
    session(ws, url, req, started).await.map_err(|f| f.error)
}

async fn session(ws: ClientWs, url: String, req: ExecRequest, started: Instant) -> Result<ExecResult, ExecFailure> {
    if req.command.is_empty() {
        return Err(WebttyError::BadTarget("exec needs a command".into()).into());
    }
    let deadline = req.timeout.map(|t| started + t);
    let config = Config {
        options: Some(Options { interactive: req.stdin.is_some(), allocate_tty: false, send_heartbeat: true }),
        cmd_args: req.command.clone(),
        env_vars: req.env.iter().map(|(key, value)| Environment { key: key.clone(), value: value.clone() }).collect(),
        workdir: req.workdir.clone().map(|value| Workdir { value }),
        username: req.user.as_deref().map(Username::parse),
    };
    let mut result = ExecResult {
        url,
        command: req.command.clone(),
        exit_code: 0,
        stdout: Vec::new(),
        stderr: Vec::new(),
        duration_ms: 0,
        timed_out: false,
        truncated: false,
        cancelled: false,
    };
    let (tx, mut rx) = match deadline {
        None => protocol::open(ws, config).await?,
        Some(at) => {
            future::or(protocol::open(ws, config), async {
                Timer::at(at).await;
                Err(WebttyError::Protocol("timed out waiting for the session to open".into()))
            })
            .await?
        }
    };

    let finish = {
        let receive = receive_output(&mut rx, &mut result, req.output_cap, req.output);
        let stdin = forward_stdin(&tx, req.stdin);
        let heartbeats = async { Finish::Failed(protocol::heartbeats(&tx).await) };
        let expiry = async {
            match deadline {
                Some(at) => Timer::at(at).await,
                None => future::pending().await,
            };
            Finish::TimedOut
        };
        let cancelled = async {
            match req.cancel {
                Some(signal) => signal.await,
                None => future::pending().await,
            }
            Finish::Cancelled
        };
        future::or(receive, future::or(stdin, future::or(heartbeats, future::or(expiry, cancelled)))).await
    };
    match finish {
        Finish::Closed(code) => {
            protocol::close(&tx, &mut rx).await;
            result.exit_code = code;
        }
        Finish::TimedOut => {
            protocol::abandon(&tx, &mut rx).await;
            result.exit_code = TIMED_OUT_EXIT_CODE;
            result.timed_out = true;
        }
        Finish::Cancelled => {
            protocol::abandon(&tx, &mut rx).await;
            result.exit_code = NO_EXIT_CODE;
            result.cancelled = true;
        }
        Finish::OutputFailed(e) => {
            protocol::abandon(&tx, &mut rx).await;
            return Err(e.into());
        }
        Finish::Failed(error) => {
            result.exit_code = NO_EXIT_CODE;
            result.duration_ms = elapsed_ms(started);
            return Err(ExecFailure { error, partial: Some(result) });
        }
    }
    result.duration_ms = elapsed_ms(started);
    Ok(result)
}

fn elapsed_ms(started: Instant) -> u64 {
    started.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
}

/// How the exec session ended.
enum Finish {
    Closed(i32),
    TimedOut,
    Cancelled,
    /// Writing streamed output locally failed: the session is abandoned (the remote group killed).
    OutputFailed(WebttyError),
    Failed(WebttyError),
}

/// Collects or streams `Data` until `Close`. An `Error` from the server is remembered and wins over a later
/// disconnect.
async fn receive_output(rx: &mut ClientRx, result: &mut ExecResult, cap: usize, mut output: ExecOutput) -> Finish {
    let mut server_error: Option<String> = None;
    loop {
        let payload = match protocol::next(rx, true).await {
            Ok(Some(payload)) => payload,
            Ok(None) => {
                return Finish::Failed(match server_error {
                    Some(msg) => WebttyError::Refused(msg),
                    None => WebttyError::Disconnected("server closed the connection before Close".into()),
                });
            }
            Err(e) => return Finish::Failed(e),
        };
        match payload {
            Payload::Data(Data { r#type, payload: Some(data::Payload::Data(bytes)) }) => {
                let is_stderr = r#type == DataType::Stderr as i32;
                if let ExecOutput::Stream { stdout, stderr } = &mut output {
                    let writer = if is_stderr { stderr } else { stdout };
                    if let Err(e) = write_through(writer, &bytes).await {
                        return Finish::OutputFailed(WebttyError::output(
                            if is_stderr { "stderr" } else { "stdout" },
                            e,
                        ));
                    }
                    continue;
                }
                let room = cap.saturating_sub(result.stdout.len() + result.stderr.len());
                if bytes.len() > room {
                    result.truncated = true;
                }
                let kept = &bytes[..bytes.len().min(room)];
                if is_stderr {
                    result.stderr.extend_from_slice(kept);
                } else {
                    result.stdout.extend_from_slice(kept);
                }
            }
            Payload::Data(_) | Payload::Heartbeat(_) | Payload::Parameter(_) => {}
            Payload::Error(e) => server_error = Some(e.msg),
            Payload::Close(close) => {
                return match server_error {
                    Some(msg) => Finish::Failed(WebttyError::Refused(msg)),
                    None => Finish::Closed(close.return_code),
                };
            }
            Payload::Open(_) | Payload::Ack(_) => {
                return Finish::Failed(WebttyError::Protocol("unexpected Open/Ack from the server".into()));
            }
        }
    }
}

/// Writes and flushes one chunk of streamed output.
async fn write_through(writer: &mut OutputWriter, bytes: &[u8]) -> io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// The exit code a shell would give for a command the server could not start: 127 when the program was not found,
/// 126 when it is not executable; `None` for every other failure. Matches the server's refusal, in this server's
/// words (`spawn "x": No such file or directory`) and upstream's (`exec: "x": executable file not found in $PATH`,
/// `fork/exec /x: permission denied`).
pub fn command_exit_code(error: &WebttyError) -> Option<i32> {
    let WebttyError::Refused(msg) = error else { return None };
    let msg = msg.to_ascii_lowercase();
    if !["spawn ", "exec: ", "fork/exec "].iter().any(|prefix| msg.starts_with(prefix)) {
        return None;
    }
    if msg.contains("not found") || msg.contains("no such file or directory") {
        Some(COMMAND_NOT_FOUND_EXIT_CODE)
    } else if msg.contains("permission denied") {
        Some(NOT_EXECUTABLE_EXIT_CODE)
    } else {
        None
    }
}

/// Exit code for a command the server could not find (as a shell gives it).
pub const COMMAND_NOT_FOUND_EXIT_CODE: i32 = 127;
/// Exit code for a command the server found but could not execute (as a shell gives it).
pub const NOT_EXECUTABLE_EXIT_CODE: i32 = 126;

/// Forwards local stdin as `Data(stdin)` chunks and `eos` at end of file; then waits forever (the session
/// ends through the other branches). A local read error ends the session.
async fn forward_stdin(tx: &ClientTx, stdin: Option<Box<dyn AsyncRead + Unpin + Send>>) -> Finish {
    if let Some(mut stdin) = stdin {
        let mut buf = vec![0u8; limits::EXEC_CHUNK_LEN];
        loop {
            let n = match stdin.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => return Finish::Failed(WebttyError::Local(format!("reading stdin: {e}"))),
            };
            let data =
                if n == 0 { Data::eos(DataType::Stdin) } else { Data::bytes(DataType::Stdin, buf[..n].to_vec()) };
            if protocol::send(tx, Payload::Data(data)).await.is_err() || n == 0 {
                break; // a send failure surfaces in `receive_output` as a lost connection
            }
        }
    }
    future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_refusals_map_to_shell_exit_codes() {
        let code = |msg: &str| command_exit_code(&WebttyError::Refused(msg.into()));
        assert_eq!(code("spawn \"nope\": No such file or directory (os error 2)"), Some(127));
        assert_eq!(code("exec: \"nope\": executable file not found in $PATH"), Some(127));
        assert_eq!(code("spawn \"/tmp/x.sh\": Permission denied (os error 13)"), Some(126));
        assert_eq!(code("fork/exec /tmp/x.sh: permission denied"), Some(126));
        assert_eq!(code("workdir \"/nope\": No such file or directory (os error 2)"), None);
        assert_eq!(code("webtty server is at its session limit (1 sessions)"), None);
        assert_eq!(command_exit_code(&WebttyError::Connect("spawn x: not found".into())), None);
    }
}
