//! The only place in the crate allowed `unsafe` (this module and its parts `fds` and `users`): thin wrappers
//! over libc for PTYs, process groups, the session supervisor that runs between fork and exec (and the
//! credential switch of login sessions), descriptor hygiene, terminal modes, the passwd and group databases and
//! signal delivery.
//!
//! Everything else in [`crate::webtty`] calls these safe functions. Each `unsafe` block states why it is sound
//! in a `// SAFETY:` comment; none of them hands out raw pointers or borrows beyond the call.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

mod fds;
mod users;

use fds::{close_all_but, close_on_exec_from};
use users::switch_credentials;
pub use users::{
    chown_fd, current_user, effective_ids, group_list, user_by_name, user_by_uid, CommandSwitch, Credentials, UserInfo,
};

/// Turns a libc `-1` return into the current `errno` as an [`io::Error`].
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A freshly opened pseudo-terminal pair. Both ends are close-on-exec; the child gets the slave through
/// `dup2` (which clears the flag on the copy).
pub struct PtyPair {
    /// The controlling side, kept by the server.
    pub master: OwnedFd,
    /// The terminal side, handed to the child as stdin/stdout/stderr.
    pub slave: OwnedFd,
}

/// Opens a PTY pair with the given initial size (rows, cols).
pub fn open_pty(rows: u16, cols: u16) -> io::Result<PtyPair> {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let size = winsize(rows, cols);
    // SAFETY: `openpty` writes two descriptors into the provided out-pointers, which point at live locals;
    // name, termios are NULL (allowed), and `size` is a valid winsize that openpty only reads.
    check(unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) })?;
    // SAFETY: openpty succeeded, so both descriptors are open and owned by nobody else.
    let pair = unsafe { PtyPair { master: OwnedFd::from_raw_fd(master), slave: OwnedFd::from_raw_fd(slave) } };
    set_cloexec(pair.master.as_raw_fd())?;
    set_cloexec(pair.slave.as_raw_fd())?;
    Ok(pair)
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; F_GETFD/F_SETFD take no pointers.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    Ok(())
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

/// Sets the window size of a terminal (the kernel then sends SIGWINCH to its foreground process group).
pub fn set_window_size(fd: &impl AsRawFd, rows: u16, cols: u16) -> io::Result<()> {
    let size = winsize(rows, cols);
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which points at a live local.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) })?;
    Ok(())
}

/// The window size (rows, cols) of the terminal on `fd`, if it is one.
pub fn window_size(fd: &impl AsRawFd) -> Option<(u16, u16)> {
    let mut size = winsize(0, 0);
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointer, which points at a live local.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (ret == 0 && size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// Bytes of each of the two reports the supervisor of a session writes to its report pipe, native endian: the
/// command's pid (at once), then its raw wait status (when it exits).
pub const EXIT_REPORT_LEN: usize = 4;

/// `comm` of a session supervisor (what `ps -o comm` shows for it).
const SUPERVISOR_NAME: &CStr = c"webtty-session";

/// Signals a session supervisor ignores: it must outlive everything the session starts, and only SIGKILL (or
/// the server ending the session) should end it early.
const SUPERVISOR_IGNORES: [libc::c_int; 11] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGPIPE,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// Makes `cmd` start under a session supervisor: the process std forks (the supervisor) leaves the server's
/// session, becomes a child subreaper (Linux; not under qemu-user) so every orphan of the session is re-parented to it instead of
/// escaping, forks the command and then only reaps: it writes the command's pid and, later, its wait status to
/// `report` (see [`EXIT_REPORT_LEN`]) and exits once it has no children left, that is once the whole session
/// (detached processes included, see [`super::orphans`]) is gone.
///
/// The command itself (the process that goes on to exec) leads a session and process group of its own, gets
/// its stdin (the PTY slave) as controlling terminal when `controlling_tty` is set, receives SIGHUP should the
/// supervisor die, and keeps only descriptors 0–2 across exec (every other one is marked close-on-exec, so
/// std can still report a failed exec through its own pipe). The supervisor gets SIGKILL should the server die.
///
/// With `switch`, the command (and only the command) takes those credentials before anything else
/// ([`CommandSwitch`]); the supervisor keeps the server's, so the session's processes can neither signal nor trace
/// it, and it still reaps and reports whatever they do. A failed switch fails the spawn (std's error pipe).
pub fn supervised_session_on_spawn(
    cmd: &mut Command,
    controlling_tty: bool,
    report: &OwnedFd,
    switch: Option<CommandSwitch>,
) {
    let report = report.as_raw_fd();
    // SAFETY: getpid cannot fail and takes no arguments.
    let server = unsafe { libc::getpid() };
    let hook = move || -> io::Result<()> {
        // SAFETY: this runs in the child std forked, before exec. Every call is an async-signal-safe system call
        // taking integers (or the static string of `supervise`, or the group list resolved before the fork,
        // only read); nothing allocates, locks or unwinds.
        unsafe {
            check(libc::setsid())?;
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                // EINVAL: a kernel or emulator without subreapers (qemu-user); the server warned at start that
                // orphans which leave the session then escape (`adopt_orphans`). Any other error is fatal.
                if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) != 0
                    && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
                {
                    return Err(io::Error::last_os_error());
                }
                check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong))?;
                if libc::getppid() != server {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH)); // the server died before prctl
                }
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let _ = server;
            let command = check(libc::fork())?;
            if command == 0 {
                return start_command_session(controlling_tty, switch.as_ref());
            }
            supervise(command, report)
        }
    };
    // SAFETY: the hook above only performs async-signal-safe system calls and does not allocate.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// In the command, between its fork and exec: the credential switch (first: it clears the parent-death signal
/// that [`lead_new_session`] sets), [`lead_new_session`], and descriptors above 2 closed at exec.
///
/// # Safety
/// Only for the forked command process of [`supervised_session_on_spawn`].
unsafe fn start_command_session(controlling_tty: bool, switch: Option<&CommandSwitch>) -> io::Result<()> {
    if let Some(switch) = switch {
        switch_credentials(switch)?;
    }
    lead_new_session(controlling_tty)?;
    close_on_exec_from(3);
    Ok(())
}

/// Makes the spawned child a session leader (so it leads a fresh process group whose id is its pid) and,
/// when `controlling_tty` is set, makes its stdin (the PTY slave) its controlling terminal. On Linux the child
/// also gets SIGHUP should its parent die without ending the session (a shell passes it on to its jobs).
pub fn new_session_on_spawn(cmd: &mut Command, controlling_tty: bool) {
    // SAFETY: the hook only performs async-signal-safe system calls (see `lead_new_session`), no allocation.
    unsafe {
        cmd.pre_exec(move || lead_new_session(controlling_tty));
    }
}

/// setsid, TIOCSCTTY on stdin when `controlling_tty`, SIGHUP on the parent's death. Async-signal-safe: for a
/// forked child before exec.
fn lead_new_session(controlling_tty: bool) -> io::Result<()> {
    // SAFETY: setsid, ioctl and prctl take no pointers (the TIOCSCTTY and PR_SET_PDEATHSIG arguments are
    // integers) and touch no shared state.
    unsafe {
        check(libc::setsid())?;
        if controlling_tty {
            check(libc::ioctl(0, libc::TIOCSCTTY as _, 0))?;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGHUP as libc::c_ulong))?;
    }
    Ok(())
}

/// The supervisor's life after forking the command: ignore signals, drop every descriptor but `report`, reap
/// every child (the command and the orphans re-parented to it), report the command's status, exit when no
/// child is left.
///
/// # Safety
/// Only for the forked supervisor process of [`supervised_session_on_spawn`].
unsafe fn supervise(command: libc::pid_t, report: RawFd) -> ! {
    // SAFETY: prctl reads the static NUL-terminated name; signal takes integers.
    unsafe {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        libc::prctl(libc::PR_SET_NAME, SUPERVISOR_NAME.as_ptr() as libc::c_ulong);
        for signal in SUPERVISOR_IGNORES {
            libc::signal(signal, libc::SIG_IGN);
        }
        // A handler inherited from the server (a SIGCHLD reaper) would write to a descriptor closed below.
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    close_all_but(report);
    let pid = command.to_ne_bytes();
    // SAFETY: write reads EXIT_REPORT_LEN bytes from a live local array (a pipe takes them atomically).
    unsafe {
        libc::write(report, pid.as_ptr().cast(), pid.len());
    }
    let mut report = report;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into a live local.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == command && report >= 0 {
            let bytes = status.to_ne_bytes();
            // SAFETY: write reads EXIT_REPORT_LEN bytes from a live local array (a pipe takes them atomically).
            unsafe {
                libc::write(report, bytes.as_ptr().cast(), bytes.len());
                libc::close(report);
            }
            report = -1;
        } else if pid == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break; // ECHILD: every process of the session is gone
        }
    }
    // SAFETY: _exit ends the process without running the server's atexit handlers or destructors.
    unsafe { libc::_exit(0) }
}

/// Makes this process a child subreaper (Linux): orphaned descendants are re-parented to it instead of init,
/// so the server can find and reap what a killed session supervisor left behind.
pub fn become_child_subreaper() -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: prctl with integer arguments only.
        check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) })?;
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    Err(io::Error::new(io::ErrorKind::Unsupported, "a child subreaper needs Linux"))
}

/// Reaps `pid` if it is a child of this process that has exited (a zombie); `true` when it was reaped.
pub fn reap_if_exited(pid: i32) -> bool {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes the status into a live local; WNOHANG never blocks.
    pid > 1 && unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(File, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into a live local array of two ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded; both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `signal` to every process in the process group `pgid`. A group that no longer exists is not an error.
pub fn signal_group(pgid: i32, signal: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing to signal process group {pgid}")));
    }
    // SAFETY: kill takes no pointers; a negative pid addresses the process group.
    match check(unsafe { libc::kill(-pgid, signal) }) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(drop),
    }
}

/// Sends `signal` to one process. A process that no longer exists is not an error.
pub fn signal_process(pid: i32, signal: i32) -> io::Result<()> {
    if pid <= 1 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing to signal process {pid}")));
    }
    // SAFETY: kill takes no pointers.
    match check(unsafe { libc::kill(pid, signal) }) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(drop),
    }
}

/// Whether any process is still a member of process group `pgid` (zombies included).
pub fn group_exists(pgid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence/permission; no pointers.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

/// Facts from `uname(2)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uname {
    /// Kernel name (`Linux`, `Darwin`).
    pub sysname: String,
    /// Host name.
    pub nodename: String,
    /// Kernel release.
    pub release: String,
    /// Machine (`x86_64`, `aarch64`).
    pub machine: String,
}

/// Calls `uname(2)`.
pub fn uname() -> Option<Uname> {
    // SAFETY: an all-zero utsname is valid; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer refers to a live local utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(Uname {
        sysname: field(&u.sysname),
        nodename: field(&u.nodename),
        release: field(&u.release),
        machine: field(&u.machine),
    })
}

/// A terminal switched to raw mode; the previous mode is restored on drop, by [`RawTerminal::restore`], and by
/// a panic hook (installed on first use), so no exit path leaves the user's terminal raw.
pub struct RawTerminal {
    fd: RawFd,
    saved: libc::termios,
}

/// The mode to restore if the process panics while a [`RawTerminal`] is active.
static PANIC_RESTORE: std::sync::Mutex<Option<(RawFd, libc::termios)>> = std::sync::Mutex::new(None);

fn restore_mode(fd: RawFd, saved: &libc::termios) {
    // SAFETY: tcsetattr reads `saved`, a valid termios obtained from tcgetattr.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, saved) };
}

impl RawTerminal {
    /// Puts the terminal on `fd` into raw mode (no echo, no line discipline, no signal keys).
    pub fn enter(fd: &impl AsRawFd) -> io::Result<RawTerminal> {
        let fd = fd.as_raw_fd();
        // SAFETY: an all-zero termios is a valid value for tcgetattr to overwrite.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: the pointer refers to a live local termios.
        check(unsafe { libc::tcgetattr(fd, &mut saved) })?;
        let mut raw = saved;
        // SAFETY: cfmakeraw only modifies the termios it is given, a live local.
        unsafe { libc::cfmakeraw(&mut raw) };
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if let Ok(Some((fd, saved))) = PANIC_RESTORE.lock().map(|g| *g) {
                    restore_mode(fd, &saved);
                }
                previous(info);
            }));
        });
        *PANIC_RESTORE.lock().unwrap_or_else(|e| e.into_inner()) = Some((fd, saved));
        // SAFETY: tcsetattr reads the live local termios.
        check(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) })?;
        Ok(RawTerminal { fd, saved })
    }

    /// Restores the saved terminal mode (idempotent; also done on drop).
    pub fn restore(&self) {
        restore_mode(self.fd, &self.saved);
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        self.restore();
        *PANIC_RESTORE.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The write end of the signal self-pipe (−1 when no [`SignalPipe`] is installed).
static SIGNAL_PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write is async-signal-safe; the pointer refers to a one-byte local. A full pipe drops the
        // byte (the descriptor is non-blocking), which is fine: one pending byte per signal kind suffices.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// Signals delivered as bytes on a pipe (the self-pipe trick): the handler writes the signal number, the
/// async side reads it from [`SignalPipe::reader`]. One per process; dropping it restores default handlers.
pub struct SignalPipe {
    reader: Option<File>,
    /// Kept open for the handler (which finds it through `SIGNAL_PIPE_WRITE`); closed on drop.
    _write: OwnedFd,
    signals: Vec<i32>,
}

impl SignalPipe {
    /// Installs handlers for `signals` that write to a fresh non-blocking pipe.
    pub fn install(signals: &[i32]) -> io::Result<SignalPipe> {
        let mut fds = [-1 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into a live local array of two ints.
        check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        // SAFETY: pipe2 succeeded; both descriptors are fresh and owned by nobody else.
        let (read, write) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        if SIGNAL_PIPE_WRITE.compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Err(io::Error::other("a signal pipe is already installed in this process"));
        }
        for &signal in signals {
            // SAFETY: an all-zero sigaction is valid to fill; sa_sigaction holds our extern "C" handler, which
            // only calls async-signal-safe functions.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            // SAFETY: sigaction reads the live local `action`; the old action pointer is NULL (allowed).
            check(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) })?;
        }
        Ok(SignalPipe { reader: Some(read), _write: write, signals: signals.to_vec() })
    }

    /// Takes the read end (non-blocking): each byte is one delivered signal number.
    pub fn reader(&mut self) -> Option<File> {
        self.reader.take()
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for &signal in &self.signals {
            // SAFETY: restoring the default disposition; `signal` takes no pointers.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        SIGNAL_PIPE_WRITE.store(-1, Ordering::SeqCst);
        // `self._write` closes after this, once no handler can find it any more.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pty_reports_the_size_it_was_given() {
        let pair = open_pty(24, 80).unwrap();
        assert_eq!(window_size(&pair.slave), Some((24, 80)));
        set_window_size(&pair.master, 40, 132).unwrap();
        assert_eq!(window_size(&pair.slave), Some((40, 132)));
    }

    #[test]
    fn signalling_a_missing_group_is_not_an_error() {
        // Process group ids are pids; this one is far above any pid_max default.
        assert!(signal_group(0x3fff_fff0, 0).is_ok());
        assert!(!group_exists(0x3fff_fff0));
        assert!(signal_group(1, libc::SIGTERM).is_err(), "init must never be signalled");
    }

    #[test]
    fn uname_and_user_are_known() {
        let u = uname().unwrap();
        assert!(!u.sysname.is_empty() && !u.release.is_empty());
        assert!(current_user().is_some_and(|u| !u.name.is_empty()));
    }
}
