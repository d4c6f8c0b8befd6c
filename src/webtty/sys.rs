//! The only place in the crate allowed `unsafe`: thin wrappers over libc for PTYs, process groups, terminal
//! modes, the passwd database and signal delivery.
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

/// Makes the spawned child a session leader (so it leads a fresh process group whose id is its pid) and,
/// when `controlling_tty` is set, makes its stdin (the PTY slave) its controlling terminal. On Linux the child
/// also gets SIGHUP should the server die without ending the session (a shell passes it on to its jobs).
pub fn new_session_on_spawn(cmd: &mut Command, controlling_tty: bool) {
    let hook = move || -> io::Result<()> {
        // SAFETY: setsid, ioctl and prctl are async-signal-safe and take no pointers (the TIOCSCTTY and
        // PR_SET_PDEATHSIG arguments are integers); this closure runs in the forked child before exec and
        // touches no shared state.
        unsafe {
            check(libc::setsid())?;
            if controlling_tty {
                check(libc::ioctl(0, libc::TIOCSCTTY as _, 0))?;
            }
            #[cfg(any(target_os = "linux", target_os = "android"))]
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGHUP as libc::c_ulong))?;
        }
        Ok(())
    };
    // SAFETY: the hook above only performs async-signal-safe system calls and does not allocate.
    unsafe {
        cmd.pre_exec(hook);
    }
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

/// The server's OS user from the passwd database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// Looks up the current real user in the passwd database.
pub fn current_user() -> Option<UserInfo> {
    // SAFETY: getuid cannot fail and takes no arguments.
    let uid = unsafe { libc::getuid() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to overwrite.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local (`pwd`, `buf` of `buf.len()` bytes, `result`); the strings
    // getpwuid_r stores in `pwd` point into `buf`, which outlives their use below.
    let ret = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if ret != 0 || result.is_null() {
        return None;
    }
    let field = |p: *const libc::c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: non-null fields of a successful getpwuid_r are NUL-terminated strings inside `buf`.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    Some(UserInfo { name: field(pwd.pw_name), home: field(pwd.pw_dir), shell: field(pwd.pw_shell) })
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
