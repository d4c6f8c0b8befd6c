//! One WebTTY session on the server: the protocol over an established WebSocket.
//!
//! Order of events (our choices where upstream is silent):
//! 1. The client sends `Open` within [`limits::WEBTTY_OPEN_TIMEOUT`]; anything else first is answered with
//!    `Error` and the WebSocket is closed.
//! 2. A session slot is taken ([`super::policy::SessionSlots`]); when all are busy the client gets
//!    `Error{"webtty server is at its session limit (N sessions)"}` and running sessions are untouched.
//! 3. The process starts ([`SessionProcess::spawn`]); a failure (bad workdir, missing program) is an `Error`.
//!    Then `Ack`.
//! 4. Output flows as `Data` chunks of at most [`limits::EXEC_CHUNK_LEN`] bytes; the next chunk is read from the
//!    child only after the WebSocket accepted the previous one, so a client that stops reading stalls the child.
//!    Client `Data(stdin)` is written to the child, `Data(stdin, eos)` closes its stdin, `Parameter` resizes the
//!    PTY, `Heartbeat`s are accepted both ways (the server sends one every [`limits::HEARTBEAT_INTERVAL`] when
//!    the client asked with `send_heartbeat`).
//! 5. When the child exits, output is drained (until silent for [`limits::WEBTTY_EXIT_DRAIN_IDLE`]), both
//!    streams get `eos`, whatever the command left running (anything below its session supervisor) is killed,
//!    then `Close{return_code}` (exit code, or 128+signal) is sent and the WebSocket is closed.
//! 6. A client `Close`, a closed or failed connection, a protocol error, a client that sent heartbeats and went
//!    silent for [`limits::HEARTBEAT_DEAD_AFTER`], or the session outliving its maximum duration ends the
//!    session early: every process of the session (the supervisor's whole subtree) is killed and reaped.

use async_io::Timer;
use async_lock::Mutex;
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use futures_lite::{future, AsyncRead, AsyncWrite, AsyncWriteExt, StreamExt};

use super::policy::{Execution, SessionPolicy};
use super::process::{exit_code, ProcessIo, SessionProcess, SpawnSpec};
use super::pump::{pump_output, OutputStream, StdinSink};
use super::timeout;
use super::wire::{self, next_payload, payload_name};
use crate::limits;
use crate::proto::webtty::message::Payload;
use crate::proto::webtty::{data, parameter, Ack, Close, DataType, Error, Heartbeat, Open};

/// Initial PTY size until the client sends `Parameter.terminal_size`.
const DEFAULT_TTY_SIZE: (u16, u16) = (24, 80);

/// The writing half of a session's WebSocket, shared by the output pumps and heartbeats.
pub(crate) type SessionTx<S> = Mutex<WebSocketSender<S>>;

/// Sends one payload; waits until the WebSocket accepted it.
pub(crate) async fn send<S>(tx: &SessionTx<S>, payload: Payload) -> Result<(), ClientEnd>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tx.lock().await.send(wire::encode(payload)).await.map_err(|e| ClientEnd::SendFailed(e.to_string()))
}

/// Why the client side of a session ended before the process did.
#[derive(Debug)]
pub(crate) enum ClientEnd {
    /// Close frame or end of stream.
    Disconnected,
    /// The client sent a WebTTY `Close`.
    Closed,
    /// The client sent heartbeats, then nothing for [`limits::HEARTBEAT_DEAD_AFTER`].
    Silent,
    /// A message the protocol does not allow here (reported to the client in an `Error`).
    Protocol(String),
    /// The WebSocket refused a message.
    SendFailed(String),
}

impl std::fmt::Display for ClientEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientEnd::Disconnected => f.write_str("client disconnected"),
            ClientEnd::Closed => f.write_str("client closed the session"),
            ClientEnd::Silent => write!(f, "client silent for {} s", limits::HEARTBEAT_DEAD_AFTER.as_secs()),
            ClientEnd::Protocol(msg) => write!(f, "protocol error: {msg}"),
            ClientEnd::SendFailed(msg) => write!(f, "send failed: {msg}"),
        }
    }
}

/// How the running phase of a session ended.
enum End {
    /// The process exited with this code and its output is drained.
    Exited(i32),
    /// The client went away or misbehaved.
    Client(ClientEnd),
    /// The session outlived [`SessionPolicy::max_duration`].
    Expired,
    /// The server is shutting down.
    Shutdown,
}

/// Serves one WebTTY session on `ws` and returns when it is over: every process of the session is gone and the
/// WebSocket is closed.
pub async fn serve_session<S>(ws: WebSocketStream<S>, policy: &SessionPolicy)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (tx, mut rx) = ws.split();
    let tx = Mutex::new(tx);
    let open = match read_open(&mut rx).await {
        Ok(open) => open,
        Err(Some(msg)) => return refuse(&tx, &mut rx, msg).await,
        Err(None) => return,
    };
    let Some(_slot) = policy.slots.try_acquire() else {
        let msg = format!("webtty server is at its session limit ({} sessions)", policy.slots.max());
        return refuse(&tx, &mut rx, msg).await;
    };
    let (spec, heartbeat) = match spawn_spec(open, &policy.execution) {
        Ok(v) => v,
        Err(msg) => return refuse(&tx, &mut rx, msg).await,
    };
    let (mut process, io) = match SessionProcess::spawn(&spec, &policy.orphans) {
        Ok(v) => v,
        Err(e) => return refuse(&tx, &mut rx, e.to_string()).await,
    };
    log_debug!("webtty session: started {:?} (supervisor pid {})", process.program(), process.pid());
    if send(&tx, Payload::Ack(Ack {})).await.is_err() {
        process.terminate().await;
        return;
    }
    match run(&tx, &mut rx, &mut process, io, heartbeat, policy).await {
        End::Exited(code) => {
            process.reap_leftovers().await;
            log_debug!("webtty session: pid {} exited with code {code}", process.pid());
            let _ = send(&tx, Payload::Close(Close { return_code: code })).await;
        }
        End::Expired => {
            let code = process.terminate().await;
            let msg = format!("session exceeded the server's maximum duration of {} s", policy.max_duration.as_secs());
            log_info!("webtty session: pid {}: {msg}", process.pid());
            let _ = send(&tx, Payload::Error(Error { msg })).await;
            let _ = send(&tx, Payload::Close(Close { return_code: code })).await;
        }
        End::Shutdown => {
            let code = process.terminate().await;
            let msg = "webtty server is shutting down".to_string();
            let _ = send(&tx, Payload::Error(Error { msg })).await;
            let _ = send(&tx, Payload::Close(Close { return_code: code })).await;
        }
        End::Client(reason) => {
            let code = process.terminate().await;
            log_debug!("webtty session: {reason}; pid {} killed, code {code}", process.pid());
            if let ClientEnd::Protocol(msg) = reason {
                let _ = send(&tx, Payload::Error(Error { msg })).await;
            }
        }
    }
    close_websocket(&tx, &mut rx).await;
}

/// Waits for the client's `Open`. `Err(Some(msg))` is worth telling the client; `Err(None)` means it is gone.
async fn read_open<S>(rx: &mut WebSocketReceiver<S>) -> Result<Open, Option<String>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match timeout(limits::WEBTTY_OPEN_TIMEOUT, next_payload(rx)).await {
        None => Err(Some(format!("no Open within {} s", limits::WEBTTY_OPEN_TIMEOUT.as_secs()))),
        Some(Ok(Some(Payload::Open(open)))) => Ok(open),
        Some(Ok(Some(other))) => Err(Some(format!("expected Open as the first message, got {}", payload_name(&other)))),
        Some(Ok(None)) => Err(None),
        Some(Err(e)) => Err(Some(e.to_string())),
    }
}

/// Validates an `Open` into what to spawn (as the user `execution` allows), plus whether the client wants
/// heartbeats.
fn spawn_spec(open: Open, execution: &Execution) -> Result<(SpawnSpec, bool), String> {
    let config = open.config.unwrap_or_default();
    let options = config.options.unwrap_or_default();
    let user = execution.session_user(config.username.and_then(|u| u.name).as_ref())?;
    let spec = SpawnSpec {
        argv: config.cmd_args,
        env: config.env_vars.into_iter().map(|e| (e.key, e.value)).collect(),
        workdir: config.workdir.map(|w| w.value),
        tty: options.allocate_tty.then_some(DEFAULT_TTY_SIZE),
        stdin: options.interactive,
        user,
    };
    Ok((spec, options.send_heartbeat))
}

/// Runs the session until the process exits (output drained), the client ends it, or it expires.
async fn run<S>(
    tx: &SessionTx<S>,
    rx: &mut WebSocketReceiver<S>,
    process: &mut SessionProcess,
    io: ProcessIo,
    heartbeat: bool,
    policy: &SessionPolicy,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (stdin, pty, stdout, stderr): (Option<StdinSink>, _, OutputStream, OutputStream) = match io {
        ProcessIo::Pipes { stdin, stdout, stderr } => {
            (stdin.map(|s| Box::new(s) as StdinSink), None, Box::new(stdout), Box::new(stderr))
        }
        ProcessIo::Pty(master) => (
            Some(Box::new(master.clone())),
            Some(master.clone()),
            Box::new(master),
            Box::new(futures_lite::io::empty()),
        ),
    };
    let exit = process.exit();
    let (exited_tx, exited_rx) = async_channel::bounded::<()>(1);
    let output = async {
        let waiter = async move {
            let status = exit.await;
            drop(exited_tx); // wakes the pumps: drain, then stop when idle
            Ok(status)
        };
        let pumps = future::try_zip(
            pump_output(tx, stdout, DataType::Stdout, &exited_rx),
            pump_output(tx, stderr, DataType::Stderr, &exited_rx),
        );
        match future::try_zip(waiter, pumps).await {
            Ok((status, _)) => End::Exited(status.as_ref().map(exit_code).unwrap_or(255)),
            Err(end) => End::Client(end),
        }
    };
    let inbound = async { End::Client(inbound(rx, stdin, pty).await) };
    let heartbeats = async {
        if !heartbeat {
            return future::pending().await;
        }
        loop {
            Timer::after(limits::HEARTBEAT_INTERVAL).await;
            if let Err(e) = send(tx, Payload::Heartbeat(Heartbeat {})).await {
                return End::Client(e);
            }
        }
    };
    let expiry = async {
        Timer::after(policy.max_duration).await;
        End::Expired
    };
    let shutdown = async {
        policy.shutdown.wait().await;
        End::Shutdown
    };
    future::or(output, future::or(inbound, future::or(heartbeats, future::or(expiry, shutdown)))).await
}

/// Handles client messages until the client ends the session.
async fn inbound<S>(
    rx: &mut WebSocketReceiver<S>,
    mut stdin: Option<StdinSink>,
    pty: Option<super::process::PtyMaster>,
) -> ClientEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut heard_heartbeat = false;
    loop {
        let next = if heard_heartbeat {
            match timeout(limits::HEARTBEAT_DEAD_AFTER, next_payload(rx)).await {
                Some(next) => next,
                None => return ClientEnd::Silent,
            }
        } else {
            next_payload(rx).await
        };
        let payload = match next {
            Ok(Some(payload)) => payload,
            Ok(None) => return ClientEnd::Disconnected,
            Err(e) => return ClientEnd::Protocol(e.to_string()),
        };
        match payload {
            Payload::Data(d) if d.r#type == DataType::Stdin as i32 => match d.payload {
                Some(data::Payload::Data(bytes)) => {
                    if let Some(sink) = stdin.as_mut() {
                        let written = async {
                            sink.write_all(&bytes).await?;
                            sink.flush().await
                        };
                        if written.await.is_err() {
                            stdin = None; // the child closed its stdin; further input is dropped
                        }
                    }
                }
                // Dropping the pipe gives the child end of file; a PTY has no separate end of input.
                Some(data::Payload::Eos(_)) if pty.is_none() => stdin = None,
                _ => {}
            },
            Payload::Parameter(p) => {
                if let (Some(parameter::Kind::TerminalSize(size)), Some(master)) = (p.kind, pty.as_ref()) {
                    let clamp = |v: u32| v.clamp(1, u16::MAX.into()) as u16;
                    if let Err(e) = master.resize(clamp(size.row), clamp(size.col)) {
                        log_debug!("webtty session: resize failed: {e}");
                    }
                }
            }
            Payload::Heartbeat(_) => heard_heartbeat = true,
            Payload::Close(_) => return ClientEnd::Closed,
            other => return ClientEnd::Protocol(format!("unexpected {} from the client", payload_name(&other))),
        }
    }
}

/// Refuses a session with an `Error` and closes the WebSocket.
async fn refuse<S>(tx: &SessionTx<S>, rx: &mut WebSocketReceiver<S>, msg: String)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    log_debug!("webtty session refused: {msg}");
    let _ = send(tx, Payload::Error(Error { msg })).await;
    close_websocket(tx, rx).await;
}

/// The WebSocket closing handshake, bounded by [`limits::WS_CLOSE_TIMEOUT`].
async fn close_websocket<S>(tx: &SessionTx<S>, rx: &mut WebSocketReceiver<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    timeout(limits::WS_CLOSE_TIMEOUT, async {
        let _ = tx.lock().await.close(None).await;
        while let Some(Ok(_)) = rx.next().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_maps_to_a_spawn_spec() {
        use crate::proto::webtty::{Config, Environment, Options, Workdir};
        let open = Open {
            config: Some(Config {
                options: Some(Options { interactive: true, allocate_tty: true, send_heartbeat: true }),
                cmd_args: vec!["sh".into()],
                env_vars: vec![Environment { key: "A".into(), value: "1".into() }],
                workdir: Some(Workdir { value: "/tmp".into() }),
                username: None,
            }),
        };
        let (spec, heartbeat) = spawn_spec(open, &Execution::default()).unwrap();
        assert!(heartbeat && spec.stdin);
        assert_eq!(spec.tty, Some(DEFAULT_TTY_SIZE));
        assert_eq!(spec.env, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(spec.workdir.as_deref(), Some("/tmp"));
        let (spec, heartbeat) = spawn_spec(Open::default(), &Execution::default()).unwrap();
        assert!(!heartbeat && spec.tty.is_none() && spec.argv.is_empty());
    }
}
