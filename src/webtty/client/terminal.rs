//! The interactive client: attach the local terminal (or plain stdin/stdout) to a remote session.
//!
//! With a PTY and a local terminal, the local terminal goes raw (keys such as Ctrl-C travel to the remote side),
//! its size is sent after `Ack` and again on every SIGWINCH (delivered through a self-pipe), and the mode is
//! restored on every exit path: normal end, errors, SIGTERM/SIGHUP/SIGQUIT/SIGINT (which also end the session
//! and exit with 128+signal), and panics. Without a PTY it streams stdin/stdout/stderr like a live `exec`.

use std::io::{IsTerminal, Write};

use async_io::Async;
use futures_lite::{future, AsyncReadExt};

use super::super::error::WebttyError;
use super::super::sys::{self, RawTerminal, SignalPipe};
use super::connect::{connect, ConnectOptions};
use super::protocol::{self, ClientRx, ClientTx};
use super::resolve::resolve;
use super::target::Target;
use crate::limits;
use crate::proto::webtty::message::Payload;
use crate::proto::webtty::{data, parameter, Config, Data, DataType, Environment, Options, Parameter, TerminalSize};
use crate::proto::webtty::{Username, Workdir};

/// What to run interactively.
#[derive(Clone, Debug, Default)]
pub struct TerminalRequest {
    /// argv; empty = the remote user's login shell.
    pub command: Vec<String>,
    /// Extra remote environment (`TERM` is added from the local one for PTY sessions).
    pub env: Vec<(String, String)>,
    /// Remote working directory.
    pub workdir: Option<String>,
    /// OS user (name or uid) to run as; the server refuses it unless it allows client-selected users.
    pub user: Option<String>,
    /// Forward stdin.
    pub interactive: bool,
    /// Ask for a remote PTY.
    pub tty: bool,
    /// How to authenticate and the exec path.
    pub connect: ConnectOptions,
}

/// How an interactive session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalEnd {
    /// The remote process exited with this code.
    Exited(i32),
    /// A local signal ended the session (the remote group is killed).
    Signal(i32),
}

/// Runs an interactive session on the server at `url`, wired to this process's stdin/stdout/stderr.
pub async fn run_terminal(url: &str, req: TerminalRequest) -> Result<TerminalEnd, WebttyError> {
    let target = resolve(Target::parse(url, req.connect.exec_path.as_deref())?, &req.connect).await?;
    let stdin = std::io::stdin();
    let local_tty = req.tty && stdin.is_terminal();
    let mut signals = SignalPipe::install(&[libc::SIGWINCH, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGINT])
        .map_err(|e| WebttyError::Local(format!("signal handlers: {e}")))?;
    let signal_reader = signals.reader().ok_or_else(|| WebttyError::Local("signal pipe already taken".into()))?;
    let mut signal_reader = Async::new(signal_reader).map_err(|e| WebttyError::Local(format!("signal pipe: {e}")))?;

    let ws = connect(&target, &req.connect).await?;
    let mut env = req.env.clone();
    if req.tty && !env.iter().any(|(k, _)| k == "TERM") {
        if let Ok(term) = std::env::var("TERM") {
            env.push(("TERM".into(), term));
        }
    }
    let config = Config {
        options: Some(Options { interactive: req.interactive, allocate_tty: req.tty, send_heartbeat: true }),
        cmd_args: req.command.clone(),
        env_vars: env.into_iter().map(|(key, value)| Environment { key, value }).collect(),
        workdir: req.workdir.clone().map(|value| Workdir { value }),
        username: req.user.as_deref().map(Username::parse),
    };
    let (tx, mut rx) = protocol::open(ws, config).await?;
    let raw = if local_tty {
        Some(RawTerminal::enter(&stdin).map_err(|e| WebttyError::Local(format!("terminal raw mode: {e}")))?)
    } else {
        None
    };
    if local_tty {
        send_window_size(&tx).await?;
    }

    let end = {
        let receive = receive(&mut rx);
        let input = forward_input(&tx, req.interactive);
        let signals = async {
            let mut byte = [0u8; 1];
            loop {
                match signal_reader.read(&mut byte).await {
                    Ok(1) if i32::from(byte[0]) == libc::SIGWINCH => {
                        if local_tty {
                            send_window_size(&tx).await?;
                        }
                    }
                    Ok(1) => return Ok(TerminalEnd::Signal(i32::from(byte[0]))),
                    _ => return future::pending().await,
                }
            }
        };
        let heartbeats = async { Err(protocol::heartbeats(&tx).await) };
        future::or(receive, future::or(signals, future::or(input, heartbeats))).await
    };
    drop(raw);
    match end {
        Ok(TerminalEnd::Exited(code)) => {
            protocol::close(&tx, &mut rx).await;
            Ok(TerminalEnd::Exited(code))
        }
        Ok(TerminalEnd::Signal(sig)) => {
            protocol::abandon(&tx, &mut rx).await;
            Ok(TerminalEnd::Signal(sig))
        }
        Err(e) => Err(e),
    }
}

/// Sends the local terminal's size as `Parameter.terminal_size`.
async fn send_window_size(tx: &ClientTx) -> Result<(), WebttyError> {
    let Some((row, col)) = sys::window_size(&std::io::stdin()) else { return Ok(()) };
    let size = TerminalSize { row: row.into(), col: col.into(), xpixel: 0, ypixel: 0 };
    let param = Parameter { kind: Some(parameter::Kind::TerminalSize(size)) };
    protocol::send(tx, Payload::Parameter(param)).await
}

/// Writes remote output locally until `Close`.
async fn receive(rx: &mut ClientRx) -> Result<TerminalEnd, WebttyError> {
    let mut server_error = None;
    loop {
        match protocol::next(rx, true).await? {
            Some(Payload::Data(Data { r#type, payload: Some(data::Payload::Data(bytes)) })) => {
                if r#type == DataType::Stderr as i32 {
                    let mut err = std::io::stderr().lock();
                    err.write_all(&bytes).and_then(|()| err.flush()).map_err(|e| WebttyError::output("stderr", e))?;
                } else {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes).and_then(|()| out.flush()).map_err(|e| WebttyError::output("stdout", e))?;
                }
            }
            Some(Payload::Error(e)) => server_error = Some(e.msg),
            Some(Payload::Close(close)) => {
                return match server_error {
                    Some(msg) => Err(WebttyError::Refused(msg)),
                    None => Ok(TerminalEnd::Exited(close.return_code)),
                };
            }
            Some(_) => {}
            None => {
                return Err(match server_error {
                    Some(msg) => WebttyError::Refused(msg),
                    None => WebttyError::Disconnected("server closed the connection before Close".into()),
                });
            }
        }
    }
}

/// Forwards local stdin (when `interactive`) as `Data(stdin)`, `eos` at end of file; then waits forever.
async fn forward_input(tx: &ClientTx, interactive: bool) -> Result<TerminalEnd, WebttyError> {
    if interactive {
        let mut stdin = smol::Unblock::new(std::io::stdin());
        let mut buf = vec![0u8; limits::EXEC_CHUNK_LEN];
        loop {
            let n = stdin.read(&mut buf).await.map_err(|e| WebttyError::Local(format!("reading stdin: {e}")))?;
            let data =
                if n == 0 { Data::eos(DataType::Stdin) } else { Data::bytes(DataType::Stdin, buf[..n].to_vec()) };
            protocol::send(tx, Payload::Data(data)).await?;
            if n == 0 {
                break;
            }
        }
    }
    future::pending().await
}
