//! The child process behind one WebTTY session: spawned with pipes (exec) or on a PTY (interactive), as the
//! server's OS user, in a session and process group of its own, with a conservative environment.
//!
//! Ending a session ends everything the child started: [`SessionProcess::terminate`] sends SIGHUP and SIGTERM
//! to the child's process group and to every process still in its session (shells move jobs into groups of
//! their own, but they stay in the session), waits [`limits::WEBTTY_KILL_GRACE`], then sends SIGKILL and reaps
//! the child. No zombie is left behind: the child is reaped by async-process; its descendants are orphans that
//! init reaps.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_process::{Child, ChildStderr, ChildStdin, ChildStdout};
use futures_lite::future;
use futures_lite::{AsyncRead, AsyncWrite};

use super::sys;
use crate::limits;

/// PATH given to children when the server itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// TERM for PTY sessions whose client did not send one.
const DEFAULT_TERM: &str = "xterm-256color";
/// Server environment variables passed through to children when set (locale and time zone).
const PASSED_THROUGH: [&str; 4] = ["LANG", "LC_ALL", "LC_CTYPE", "TZ"];
/// How often [`SessionProcess::terminate`] checks whether the group is gone during the grace period.
const KILL_POLL: Duration = Duration::from_millis(20);

/// What to run and how, validated from a WebTTY `Open`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpawnSpec {
    /// argv; empty runs the user's login shell (`$SHELL -l`).
    pub argv: Vec<String>,
    /// Client environment values, applied over the conservative base environment.
    pub env: Vec<(String, String)>,
    /// Working directory; `None` is the user's home directory.
    pub workdir: Option<String>,
    /// Run on a PTY of this initial size (rows, cols) instead of pipes.
    pub tty: Option<(u16, u16)>,
    /// Give the child a stdin pipe (otherwise `/dev/null`); PTY sessions always have input.
    pub stdin: bool,
}

/// Why a session's process could not start; the message goes to the client in an `Error`.
#[derive(Debug)]
pub struct SpawnError(pub String);

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpawnError {}

/// The controlling side of a session's PTY, shared by the output pump, the stdin writer and resizes.
#[derive(Clone)]
pub struct PtyMaster(Arc<Async<File>>);

impl PtyMaster {
    /// Resizes the terminal (the child gets SIGWINCH).
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        sys::set_window_size(self.0.get_ref(), rows, cols)
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        // Linux reports EIO once every slave descriptor is closed: that is the PTY's end of file.
        match Pin::new(&mut &*self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::EIO) => Poll::Ready(Ok(0)),
            other => other,
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The child's standard streams as the session sees them.
pub enum ProcessIo {
    /// Exec: separate pipes (`stdin` is `None` when the client sends no input).
    Pipes {
        /// Input pipe.
        stdin: Option<ChildStdin>,
        /// Output pipe.
        stdout: ChildStdout,
        /// Error pipe.
        stderr: ChildStderr,
    },
    /// Interactive: one PTY carries input and output.
    Pty(PtyMaster),
}

/// A running session child: leader of its own session and process group (pgid = sid = pid).
pub struct SessionProcess {
    child: Child,
    pid: i32,
    program: String,
    /// [`SessionProcess::terminate`] or [`SessionProcess::reap_leftovers`] ran to completion.
    ended: bool,
}

impl SessionProcess {
    /// Spawns `spec` and returns the process and its streams.
    pub fn spawn(spec: &SpawnSpec) -> Result<(SessionProcess, ProcessIo), SpawnError> {
        let user = sys::current_user().unwrap_or_default();
        let shell = non_empty(&user.shell).or_else(|| std::env::var("SHELL").ok()).unwrap_or_else(|| "/bin/sh".into());
        let home = non_empty(&user.home).or_else(|| std::env::var("HOME").ok()).unwrap_or_else(|| "/".into());
        let argv = if spec.argv.is_empty() { vec![shell.clone(), "-l".into()] } else { spec.argv.clone() };
        let workdir = spec.workdir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| home.clone());
        match std::fs::metadata(&workdir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(SpawnError(format!("workdir {workdir:?}: not a directory"))),
            Err(e) => return Err(SpawnError(format!("workdir {workdir:?}: {e}"))),
        }

        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(&workdir).env_clear();
        for (key, value) in base_environment(&user, &shell, &home, spec.tty.is_some()) {
            cmd.env(key, value);
        }
        for (key, value) in &spec.env {
            validate_env(key, value)?;
            cmd.env(key, value);
        }
        sys::new_session_on_spawn(&mut cmd, spec.tty.is_some());

        let program = argv[0].clone();
        let spawn_error = |e: io::Error| SpawnError(format!("spawn {program:?}: {e}"));
        let mut cmd = async_process::Command::from(cmd);
        let (child, io) = match spec.tty {
            Some((rows, cols)) => {
                let pty = sys::open_pty(rows.max(1), cols.max(1)).map_err(|e| SpawnError(format!("open pty: {e}")))?;
                let slave = |fd: &OwnedFd| fd.try_clone().map(Stdio::from).map_err(|e| SpawnError(format!("pty: {e}")));
                cmd.stdin(slave(&pty.slave)?).stdout(slave(&pty.slave)?).stderr(slave(&pty.slave)?);
                let child = cmd.spawn().map_err(spawn_error)?;
                // Our copies of the slave close here (with `cmd` and `pty.slave`), so the master reads EOF
                // (EIO) once the child and its descendants have closed theirs.
                drop(cmd);
                drop(pty.slave);
                let master = Async::new(File::from(pty.master)).map_err(|e| SpawnError(format!("pty: {e}")))?;
                (child, ProcessIo::Pty(PtyMaster(Arc::new(master))))
            }
            None => {
                let stdin = if spec.stdin { Stdio::piped() } else { Stdio::null() };
                cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
                let mut child = cmd.spawn().map_err(spawn_error)?;
                let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
                    return Err(SpawnError("spawn: output pipes missing".into()));
                };
                let stdin = child.stdin.take();
                (child, ProcessIo::Pipes { stdin, stdout, stderr })
            }
        };
        let pid = i32::try_from(child.id()).map_err(|_| SpawnError("spawn: pid out of range".into()))?;
        Ok((SessionProcess { child, pid, program: argv[0].clone(), ended: false }, io))
    }

    /// The child's pid (also its process group and session id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The program that was started (argv\[0\]).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Resolves when the child exits (it is reaped then). Does not borrow the process, so it can race other
    /// futures that do.
    pub fn exit(&mut self) -> impl std::future::Future<Output = io::Result<ExitStatus>> + Send + 'static {
        self.child.status()
    }

    /// Ends whatever is left of the session after the child exited on its own: background jobs that still
    /// hold the group or session get SIGHUP/SIGTERM, then SIGKILL after the grace period.
    pub async fn reap_leftovers(&mut self) {
        if self.members_alive() {
            self.signal_all(&[libc::SIGHUP, libc::SIGTERM, libc::SIGCONT]);
            self.wait_members_gone(Instant::now() + limits::WEBTTY_KILL_GRACE).await;
        }
        if self.members_alive() {
            self.signal_all(&[libc::SIGKILL]);
        }
        self.ended = true;
    }

    /// Ends the session: SIGHUP + SIGTERM to the group and session, SIGKILL after
    /// [`limits::WEBTTY_KILL_GRACE`], then reaps the child. Returns its exit code (128+signal when killed).
    pub async fn terminate(&mut self) -> i32 {
        self.signal_all(&[libc::SIGHUP, libc::SIGTERM, libc::SIGCONT]);
        let deadline = Instant::now() + limits::WEBTTY_KILL_GRACE;
        let exit = self.exit();
        let status = future::or(async { Some(exit.await) }, async {
            Timer::at(deadline).await;
            None
        })
        .await;
        let status = match status {
            Some(status) => {
                self.wait_members_gone(deadline).await;
                status
            }
            None => {
                self.signal_all(&[libc::SIGKILL]);
                self.exit().await
            }
        };
        if self.members_alive() {
            self.signal_all(&[libc::SIGKILL]);
        }
        self.ended = true;
        status.map(|s| exit_code(&s)).unwrap_or(128 + libc::SIGKILL)
    }

    fn signal_all(&self, signals: &[i32]) {
        let members = session_members(self.pid);
        for &signal in signals {
            let _ = sys::signal_group(self.pid, signal);
            for &pid in &members {
                let _ = sys::signal_process(pid, signal);
            }
        }
    }

    fn members_alive(&self) -> bool {
        sys::group_exists(self.pid) || !session_members(self.pid).is_empty()
    }

    async fn wait_members_gone(&self, deadline: Instant) {
        while self.members_alive() && Instant::now() < deadline {
            Timer::after(KILL_POLL).await;
        }
    }
}

impl Drop for SessionProcess {
    /// A session dropped before it ended (its task was cancelled, e.g. at server shutdown) still takes its
    /// process group and session down: SIGKILL now; async-process reaps the child.
    fn drop(&mut self) {
        if !self.ended {
            self.signal_all(&[libc::SIGKILL]);
        }
    }
}

/// The exit code a session reports: the process's code, or 128 + signal number when a signal ended it.
pub fn exit_code(status: &ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(255)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The environment every child starts from: identity, PATH, locale and time zone — not the server's own.
fn base_environment(user: &sys::UserInfo, shell: &str, home: &str, tty: bool) -> Vec<(&'static str, OsString)> {
    let mut env = vec![
        ("PATH", std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into())),
        ("HOME", home.into()),
        ("SHELL", shell.into()),
    ];
    let name = non_empty(&user.name).or_else(|| std::env::var("USER").ok());
    if let Some(name) = name {
        env.push(("USER", name.clone().into()));
        env.push(("LOGNAME", name.into()));
    }
    for key in PASSED_THROUGH {
        if let Some(value) = std::env::var_os(key) {
            env.push((key, value));
        }
    }
    if tty {
        env.push(("TERM", DEFAULT_TERM.into()));
    }
    env
}

fn validate_env(key: &str, value: &str) -> Result<(), SpawnError> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Err(SpawnError(format!("invalid environment variable name {key:?}")));
    }
    if value.contains('\0') {
        return Err(SpawnError(format!("environment variable {key:?} holds a NUL byte")));
    }
    Ok(())
}

/// Pids of the processes in session `sid` (Linux `/proc`; empty elsewhere). The session leader itself is
/// included while it lives.
pub fn session_members(sid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| proc_stat_ids(pid).is_some_and(|(_, session)| session == sid))
        .collect()
}

/// (process group, session) of `pid` from `/proc/<pid>/stat`, skipping zombies (they are already dead).
fn proc_stat_ids(pid: i32) -> Option<(i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp session ..." — comm may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    (state != "Z").then_some((pgrp, session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    fn spec(argv: &[&str]) -> SpawnSpec {
        SpawnSpec { argv: argv.iter().map(|s| s.to_string()).collect(), ..SpawnSpec::default() }
    }

    #[test]
    fn pipes_carry_stdout_stderr_and_the_exit_code() {
        future::block_on(async {
            let (mut p, io) = SessionProcess::spawn(&spec(&["sh", "-c", "echo out; echo err >&2; exit 3"])).unwrap();
            let ProcessIo::Pipes { stdin, mut stdout, mut stderr } = io else { panic!("pipes expected") };
            assert!(stdin.is_none());
            let (mut out, mut err) = (String::new(), String::new());
            stdout.read_to_string(&mut out).await.unwrap();
            stderr.read_to_string(&mut err).await.unwrap();
            assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
            assert_eq!(exit_code(&p.exit().await.unwrap()), 3);
        });
    }

    #[test]
    fn environment_is_conservative_plus_client_values() {
        std::env::set_var("RSTREAM_TEST_SECRET", "leak");
        future::block_on(async {
            let mut s = spec(&["env"]);
            s.env = vec![("GREETING".into(), "hi".into())];
            s.workdir = Some("/".into());
            let (mut p, io) = SessionProcess::spawn(&s).unwrap();
            let ProcessIo::Pipes { mut stdout, .. } = io else { panic!("pipes expected") };
            let mut out = String::new();
            stdout.read_to_string(&mut out).await.unwrap();
            p.exit().await.unwrap();
            assert!(out.contains("GREETING=hi\n"), "{out}");
            assert!(out.contains("PATH="), "{out}");
            assert!(!out.contains("RSTREAM_TEST_SECRET"), "server environment leaked: {out}");
        });
    }

    #[test]
    fn bad_workdir_and_env_names_are_refused_with_the_value() {
        let mut s = spec(&["true"]);
        s.workdir = Some("/nonexistent/dir".into());
        let err = SessionProcess::spawn(&s).err().unwrap().to_string();
        assert!(err.contains("\"/nonexistent/dir\""), "{err}");
        let mut s = spec(&["true"]);
        s.env = vec![("A=B".into(), "x".into())];
        assert!(SessionProcess::spawn(&s).err().unwrap().to_string().contains("\"A=B\""));
        let err = SessionProcess::spawn(&spec(&["/no/such/program"])).err().unwrap().to_string();
        assert!(err.contains("/no/such/program"), "{err}");
    }

    #[test]
    fn pty_child_sees_a_terminal_of_the_requested_size() {
        future::block_on(async {
            let mut s = spec(&["sh", "-c", "stty size; tty -s && echo tty"]);
            s.tty = Some((33, 101));
            let (mut p, io) = SessionProcess::spawn(&s).unwrap();
            let ProcessIo::Pty(mut master) = io else { panic!("pty expected") };
            let mut out = String::new();
            master.read_to_string(&mut out).await.unwrap();
            assert!(out.contains("33 101"), "{out:?}");
            assert!(out.contains("tty"), "{out:?}");
            assert_eq!(exit_code(&p.exit().await.unwrap()), 0);
            master.write_all(b"").await.unwrap();
        });
    }

    #[test]
    fn dropping_a_running_session_kills_its_group() {
        let (p, _io) = SessionProcess::spawn(&spec(&["sh", "-c", "sleep 30 & wait"])).unwrap();
        let pid = p.pid();
        let deadline = Instant::now() + Duration::from_secs(5);
        while session_members(pid).len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(p);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !session_members(pid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(session_members(pid).is_empty(), "left: {:?}", session_members(pid));
    }

    #[test]
    fn terminate_kills_the_whole_group_and_session() {
        future::block_on(async {
            let (mut p, _io) = SessionProcess::spawn(&spec(&["sh", "-c", "sleep 30 & sleep 30 & wait"])).unwrap();
            let pid = p.pid();
            let deadline = Instant::now() + Duration::from_secs(5);
            while session_members(pid).len() < 3 && Instant::now() < deadline {
                Timer::after(Duration::from_millis(10)).await;
            }
            assert_eq!(session_members(pid).len(), 3, "sh and two sleeps");
            let code = p.terminate().await;
            assert!(code > 128, "killed by a signal: {code}");
            assert!(session_members(pid).is_empty(), "left: {:?}", session_members(pid));
            assert!(!sys::group_exists(pid));
        });
    }
}
