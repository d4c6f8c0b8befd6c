//! The child process behind one WebTTY session: spawned with pipes (exec) or on a PTY (interactive), as the
//! session's OS user ([`super::execution`]: the server's own, or in login mode the configured one), with a
//! conservative environment and only descriptors 0–2.
//!
//! The environment is never the server's: `PATH`, `LANG`, `LANGUAGE`, the `LC_*` keys and `TZ` pass through
//! when set, `USER`, `LOGNAME`, `SHELL` and `HOME` are the session user's, `TERM` is set for PTY sessions, then
//! the client's values apply — except that in login mode the identity variables (and `XDG_RUNTIME_DIR` /
//! `DBUS_SESSION_BUS_ADDRESS` when the user has them) are forced. Tokens, SSH agent sockets and cloud
//! credentials in the server's environment never reach a session.
//!
//! Every session runs under a supervisor of its own (`sys::supervised_session_on_spawn`): a small forked
//! copy of the server (`webtty-session` in `ps`) that is a child subreaper, so whatever the command starts —
//! background jobs, `setsid` escapees, double-forked daemons, `nohup` — stays in the supervisor's subtree
//! instead of being re-parented to init. The command leads a session and process group of its own below it.
//! The supervisor reports the command's exit status through a pipe and exits once it has no child left.
//!
//! Ending a session ends that whole subtree and nothing else: [`SessionProcess::terminate`] sends SIGHUP,
//! SIGTERM and SIGCONT to every descendant of the supervisor, waits [`limits::WEBTTY_KILL_GRACE`], then sends
//! SIGKILL until the supervisor has reaped the last one and exited. Other sessions live in other subtrees and
//! are never touched. On a server started with `--allow-detach` ([`Orphanage::allows_detach`]), processes that
//! left the command's session (`setsid`) are spared: everything still in it is ended as above, then the
//! supervisor lingers, reaping the detached ones as they exit. If a command kills its supervisor, the server (when it adopts orphans, see
//! [`Orphanage`]) inherits the subtree and sweeps it when the session ends. No zombie is left: the supervisor
//! reaps its subtree, async-process reaps the supervisor, the sweep reaps strays.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_lock::OnceCell;
use async_process::{Child, ChildStderr, ChildStdin, ChildStdout};
use futures_lite::future;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::execution::SessionUser;
use super::orphans::Orphanage;
use super::proc_tree::ProcessTable;
use super::sys;
use crate::limits;

/// PATH given to children when the server itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// TERM for PTY sessions whose client did not send one.
const DEFAULT_TERM: &str = "xterm-256color";
/// Server environment variables passed through to children when set: locale (the 13 `LC_*` keys of glibc) and
/// time zone, as upstream.
const PASSED_THROUGH: [&str; 16] = [
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_ADDRESS",
    "LC_COLLATE",
    "LC_CTYPE",
    "LC_IDENTIFICATION",
    "LC_MEASUREMENT",
    "LC_MESSAGES",
    "LC_MONETARY",
    "LC_NAME",
    "LC_NUMERIC",
    "LC_PAPER",
    "LC_TELEPHONE",
    "LC_TIME",
    "TZ",
];
/// Set in every session's environment: `allowed` when processes may detach from the session
/// ([`Orphanage::allows_detach`]), else `denied` (scripts such as remote expose check it).
pub const DETACH_ENV: &str = "RSTREAM_WEBTTY_DETACH";
/// SIGKILL passes over the session's processes when a session is dropped before it ended.
const DROP_KILL_PASSES: usize = 50;

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
    /// Who the command runs as.
    pub user: SessionUser,
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

/// A running session: the supervisor (root of the session's process tree) and the command below it.
pub struct SessionProcess {
    supervisor: Child,
    /// The supervisor's pid.
    pid: i32,
    program: String,
    exit: Arc<ExitReport>,
    orphans: Orphanage,
    /// [`SessionProcess::terminate`] or [`SessionProcess::reap_leftovers`] ran to completion.
    ended: bool,
    /// Processes that left the command's session survive the session (the server allows detaching, and the
    /// supervisor lingers to reap them).
    spare_detached: bool,
}

/// What the supervisor reports on a pipe, [`sys::EXIT_REPORT_LEN`] bytes each, read once: the command's pid
/// (which is also its session id), then its exit status.
struct ExitReport {
    pipe: Async<File>,
    command: OnceCell<Option<i32>>,
    status: OnceCell<Option<ExitStatus>>,
}

impl ExitReport {
    async fn read_one(&self) -> Option<i32> {
        let mut buf = [0u8; sys::EXIT_REPORT_LEN];
        let mut got = 0;
        while got < buf.len() {
            match (&self.pipe).read(&mut buf[got..]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got += n,
            }
        }
        Some(i32::from_ne_bytes(buf))
    }

    /// The command's pid; `None` if the supervisor ended before reporting it.
    async fn command(&self) -> Option<i32> {
        *self.command.get_or_init(|| self.read_one()).await
    }

    /// The command's status once it exited; `None` if the supervisor ended without reporting one (killed).
    async fn status(&self) -> Option<ExitStatus> {
        self.command().await?;
        *self.status.get_or_init(|| async { self.read_one().await.map(ExitStatus::from_raw) }).await
    }
}

impl SessionProcess {
    /// Spawns `spec` under a supervisor (registered with `orphans`) and returns the process and its streams.
    pub fn spawn(spec: &SpawnSpec, orphans: &Orphanage) -> Result<(SessionProcess, ProcessIo), SpawnError> {
        let user = &spec.user.account;
        let shell = non_empty(&user.shell).unwrap_or_else(|| "/bin/sh".into());
        let home = non_empty(&user.home).unwrap_or_else(|| "/".into());
        let argv = if spec.argv.is_empty() { vec![shell.clone(), "-l".into()] } else { spec.argv.clone() };
        // A home that does not exist (`nobody`'s /nonexistent) is no reason to refuse: `/`, as login(1) does.
        let default_dir = if Path::new(&home).is_dir() { home.clone() } else { "/".into() };
        let workdir = spec.workdir.clone().filter(|w| !w.is_empty()).unwrap_or(default_dir);
        match std::fs::metadata(&workdir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(SpawnError(format!("workdir {workdir:?}: not a directory"))),
            Err(e) => return Err(SpawnError(format!("workdir {workdir:?}: {e}"))),
        }
        let switch = match &spec.user.switch {
            None => None,
            Some(credentials) => Some(sys::CommandSwitch {
                credentials: credentials.clone(),
                workdir: std::ffi::CString::new(workdir.clone())
                    .map_err(|_| SpawnError(format!("workdir {workdir:?}: holds a NUL byte")))?,
            }),
        };

        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(&workdir).env_clear();
        let identity = identity_environment(user, &shell, &home);
        for (key, value) in base_environment(spec.tty.is_some()).into_iter().chain(identity.clone()) {
            cmd.env(key, value);
        }
        for (key, value) in &spec.env {
            validate_env(key, value)?;
            cmd.env(key, value);
        }
        if spec.user.login {
            for (key, value) in
                identity.into_iter().chain(spec.user.login_env().into_iter().map(|(k, v)| (k, v.into())))
            {
                cmd.env(key, value);
            }
        }
        // After the client's values: the server's word on detaching is the one a script sees.
        cmd.env(DETACH_ENV, if orphans.allows_detach() { "allowed" } else { "denied" });
        let (report, report_tx) = sys::pipe().map_err(|e| SpawnError(format!("exit report pipe: {e}")))?;
        sys::supervised_session_on_spawn(&mut cmd, spec.tty.is_some(), &report_tx, switch);
        let report = Async::new(report).map_err(|e| SpawnError(format!("exit report pipe: {e}")))?;

        let program = argv[0].clone();
        let (supervisor, io, pid) = orphans.register(|| {
            let (child, io) = spawn_with_io(async_process::Command::from(cmd), spec, &program)?;
            let pid = i32::try_from(child.id()).map_err(|_| SpawnError("spawn: pid out of range".into()))?;
            Ok(((child, io, pid), pid))
        })?;
        // Our copy of the write end closes here: the pipe reaches end of file when the supervisor is gone.
        drop(report_tx);
        let exit = Arc::new(ExitReport { pipe: report, command: OnceCell::new(), status: OnceCell::new() });
        let spare_detached = orphans.allows_detach();
        let process =
            SessionProcess { supervisor, pid, program, exit, orphans: orphans.clone(), ended: false, spare_detached };
        Ok((process, io))
    }

    /// The supervisor's pid (the root of the session's process tree; `ps` shows it as `webtty-session`).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The program that was started (argv\[0\]).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Resolves when the command exits. Does not borrow the process, so it can race other futures that do. An
    /// error means the supervisor was killed before the command exited.
    pub fn exit(&self) -> impl std::future::Future<Output = io::Result<ExitStatus>> + Send + 'static {
        let report = self.exit.clone();
        async move {
            report.status().await.ok_or_else(|| {
                io::Error::other("the session supervisor ended without reporting the command's exit status")
            })
        }
    }

    /// Ends whatever is left of the session after the command exited on its own: background jobs, daemons and
    /// anything else below the supervisor get SIGHUP/SIGTERM, then SIGKILL after the grace period.
    pub async fn reap_leftovers(&mut self) {
        let _ = self.exit.command().await;
        if !self.supervisor_gone() && !self.members().is_empty() {
            self.signal_members(&[libc::SIGHUP, libc::SIGTERM, libc::SIGCONT]);
            self.wait_members(Instant::now() + limits::WEBTTY_KILL_GRACE).await;
        }
        self.kill_the_rest().await;
    }

    /// Ends the session: SIGHUP + SIGTERM + SIGCONT to every process of the session, SIGKILL after
    /// [`limits::WEBTTY_KILL_GRACE`] to whatever is left, until the supervisor reaped the last one. Returns the
    /// command's exit code (128+signal when a signal ended it).
    pub async fn terminate(&mut self) -> i32 {
        let _ = self.exit.command().await;
        self.signal_members(&[libc::SIGHUP, libc::SIGTERM, libc::SIGCONT]);
        let deadline = Instant::now() + limits::WEBTTY_KILL_GRACE;
        let exit = self.exit();
        let exited = future::or(async { Some(exit.await) }, async {
            Timer::at(deadline).await;
            None
        })
        .await;
        if exited.is_some() {
            self.wait_members(deadline).await; // the rest of the session gets the same grace
        }
        self.kill_the_rest().await;
        // The supervisor is gone, so the report is there or never comes: this resolves at once.
        self.exit().await.map(|s| exit_code(&s)).unwrap_or(128 + libc::SIGKILL)
    }

    /// SIGKILL to every process of the session until the supervisor exits (it does once it has no child left;
    /// after [`limits::WEBTTY_KILL_DEADLINE`] it is killed too), then a sweep of strays.
    async fn kill_the_rest(&mut self) {
        let deadline = Instant::now() + limits::WEBTTY_KILL_DEADLINE;
        while !self.supervisor_gone() {
            if Instant::now() >= deadline {
                log_warn!("webtty session: supervisor {} still has children after SIGKILL; killing it", self.pid);
                let _ = sys::signal_process(self.pid, libc::SIGKILL);
                break;
            }
            let members = self.members();
            if members.is_empty() {
                let detached = self.detached();
                if detached > 0 && self.orphans.linger(self.pid) {
                    // The supervisor stays, reaping them as they exit; sweeps leave its subtree alone.
                    log_info!("webtty session: {detached} detached process(es) keep running (--allow-detach)");
                    self.ended = true;
                    return;
                }
                if detached > 0 {
                    log_warn!("webtty session: too many detached sessions are running; ending this one's too");
                    self.spare_detached = false;
                }
                // Only zombies left (or none): a stopped supervisor would never reap them.
                let _ = sys::signal_process(self.pid, libc::SIGCONT);
            }
            for pid in members {
                let _ = sys::signal_process(pid, libc::SIGKILL);
            }
            self.wait_supervisor(Instant::now() + limits::WEBTTY_KILL_POLL).await;
        }
        let _ = self.supervisor.status().await;
        self.orphans.sweep().await;
        self.ended = true;
    }

    /// The live processes of the session: every descendant of the supervisor that has not exited — except, on a
    /// server that allows detaching, those that left the command's session ([`Orphanage::allows_detach`]).
    fn members(&self) -> Vec<i32> {
        let command_session = self.spared_outside();
        ProcessTable::read()
            .descendants(self.pid)
            .into_iter()
            .filter(|e| !e.zombie && command_session.is_none_or(|sid| e.session == sid))
            .map(|e| e.pid)
            .collect()
    }

    /// The command's session when processes outside it are spared (`None`: every descendant is a member).
    fn spared_outside(&self) -> Option<i32> {
        self.spare_detached.then(|| self.exit.command.get().copied().flatten()).flatten()
    }

    /// Live descendants outside the command's session (none unless detaching is allowed).
    fn detached(&self) -> usize {
        let Some(sid) = self.spared_outside() else { return 0 };
        ProcessTable::read().descendants(self.pid).iter().filter(|e| !e.zombie && e.session != sid).count()
    }

    fn signal_members(&self, signals: &[i32]) {
        let members = self.members();
        for &signal in signals {
            for &pid in &members {
                let _ = sys::signal_process(pid, signal);
            }
        }
    }

    /// Whether the supervisor has exited (and was reaped).
    fn supervisor_gone(&mut self) -> bool {
        !matches!(self.supervisor.try_status(), Ok(None))
    }

    /// Waits until the session's processes are gone or `deadline` passes: until the supervisor exits, or, while
    /// detached processes are spared (the supervisor stays for them), until no member is left.
    async fn wait_members(&mut self, deadline: Instant) {
        if self.spared_outside().is_none() {
            return self.wait_supervisor(deadline).await;
        }
        while !self.supervisor_gone() && !self.members().is_empty() && Instant::now() < deadline {
            self.wait_supervisor(deadline.min(Instant::now() + limits::WEBTTY_KILL_POLL)).await;
        }
    }

    /// Waits until the supervisor exits or `deadline` passes.
    async fn wait_supervisor(&mut self, deadline: Instant) {
        let status = self.supervisor.status();
        future::or(
            async {
                let _ = status.await;
            },
            async {
                Timer::at(deadline).await;
            },
        )
        .await;
    }
}

/// Spawns the supervisor with the session's standard streams: a PTY or pipes.
fn spawn_with_io(
    mut cmd: async_process::Command,
    spec: &SpawnSpec,
    program: &str,
) -> Result<(Child, ProcessIo), SpawnError> {
    let spawn_error = |e: io::Error| SpawnError(format!("spawn {program:?}: {e}"));
    match spec.tty {
        Some((rows, cols)) => {
            let pty = sys::open_pty(rows.max(1), cols.max(1)).map_err(|e| SpawnError(format!("open pty: {e}")))?;
            if let Some(credentials) = &spec.user.switch {
                // The session user's terminal, as login(1) leaves it: programs that reopen it by name work.
                sys::chown_fd(&pty.slave, credentials.uid).map_err(|e| SpawnError(format!("pty owner: {e}")))?;
            }
            let slave = |fd: &OwnedFd| fd.try_clone().map(Stdio::from).map_err(|e| SpawnError(format!("pty: {e}")));
            cmd.stdin(slave(&pty.slave)?).stdout(slave(&pty.slave)?).stderr(slave(&pty.slave)?);
            let child = cmd.spawn().map_err(spawn_error)?;
            // Our copies of the slave close here (with `cmd` and `pty.slave`), so the master reads EOF (EIO)
            // once the command and its descendants have closed theirs (the supervisor closes its own at once).
            drop(cmd);
            drop(pty.slave);
            let master = Async::new(File::from(pty.master)).map_err(|e| SpawnError(format!("pty: {e}")))?;
            Ok((child, ProcessIo::Pty(PtyMaster(Arc::new(master)))))
        }
        None => {
            let stdin = if spec.stdin { Stdio::piped() } else { Stdio::null() };
            cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = cmd.spawn().map_err(spawn_error)?;
            let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
                return Err(SpawnError("spawn: output pipes missing".into()));
            };
            let stdin = child.stdin.take();
            Ok((child, ProcessIo::Pipes { stdin, stdout, stderr }))
        }
    }
}

impl Drop for SessionProcess {
    /// A session dropped before it ended (its task was cancelled, e.g. at server shutdown) still takes its
    /// processes down: SIGKILL to the whole subtree, a few passes to catch processes forked meanwhile; the
    /// supervisor then reaps them and exits, and async-process reaps it.
    fn drop(&mut self) {
        if !self.ended {
            for _ in 0..DROP_KILL_PASSES {
                let members = self.members();
                if members.is_empty() {
                    break;
                }
                for pid in members {
                    let _ = sys::signal_process(pid, libc::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = sys::signal_process(self.pid, libc::SIGCONT);
            self.orphans.sweep_once();
        }
        self.orphans.release(self.pid);
    }
}

/// The exit code a session reports: the process's code, or 128 + signal number when a signal ended it.
pub fn exit_code(status: &ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(255)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The environment every child starts from: PATH, locale, time zone and (PTY) TERM — not the server's own.
fn base_environment(tty: bool) -> Vec<(&'static str, OsString)> {
    let mut env = vec![("PATH", std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()))];
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

/// `HOME`, `SHELL`, `USER` and `LOGNAME` of the session user.
fn identity_environment(user: &sys::UserInfo, shell: &str, home: &str) -> Vec<(&'static str, OsString)> {
    let mut env = vec![("HOME", home.into()), ("SHELL", shell.into())];
    if !user.name.is_empty() {
        env.push(("USER", user.name.clone().into()));
        env.push(("LOGNAME", user.name.clone().into()));
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

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
