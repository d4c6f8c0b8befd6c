//! Descriptor hygiene between fork and exec: marking descriptors close-on-exec and closing all but one, with
//! `close_range` where the kernel has it and a `/proc/self/fd` walk (allocation-free) where it does not.

use std::os::fd::RawFd;

/// Marks every descriptor from `first` up close-on-exec (`close_range` with `CLOSE_RANGE_CLOEXEC`, Linux 5.11;
/// else one `fcntl` per open descriptor). Async-signal-safe.
pub(super) fn close_on_exec_from(first: libc::c_int) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: close_range takes integers only.
        let ret = unsafe {
            libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC)
        };
        if ret == 0 {
            return;
        }
    }
    for_each_open_fd(first, |fd| {
        // SAFETY: fcntl on an integer descriptor; F_SETFD takes an integer flag.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    });
}

/// Closes every descriptor except `keep` (`close_range`, Linux 5.9; else one `close` per open descriptor).
/// Async-signal-safe.
pub(super) fn close_all_but(keep: RawFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let close_range = |first: libc::c_int, last: libc::c_uint| {
            // SAFETY: close_range takes integers only.
            unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, last, 0 as libc::c_uint) == 0 }
        };
        let below = keep <= 0 || close_range(0, (keep - 1) as libc::c_uint);
        if below && close_range(keep + 1, libc::c_uint::MAX) {
            return;
        }
    }
    for_each_open_fd(0, |fd| {
        if fd != keep {
            // SAFETY: close on an integer descriptor.
            unsafe { libc::close(fd) };
        }
    });
}

/// Calls `f` with every open descriptor from `first` up: the entries of `/proc/self/fd` read with `getdents64`
/// into a stack buffer, or, without `/proc`, every number below the descriptor limit. Async-signal-safe as long
/// as `f` is; `f` may close the descriptor it is given.
fn for_each_open_fd(first: libc::c_int, mut f: impl FnMut(libc::c_int)) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: open reads a static NUL-terminated path.
        let dir =
            unsafe { libc::open(c"/proc/self/fd".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if dir >= 0 {
            let mut buf = [0u8; 1024];
            loop {
                // SAFETY: getdents64 writes at most `buf.len()` bytes into the live local buffer.
                let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
                let Ok(n) = usize::try_from(n) else { break };
                if n == 0 {
                    break;
                }
                for fd in dirent_numbers(&buf[..n.min(buf.len())]) {
                    if fd >= first && fd != dir {
                        f(fd);
                    }
                }
            }
            // SAFETY: closes the directory descriptor opened above.
            unsafe { libc::close(dir) };
            return;
        }
    }
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into a live local.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        libc::c_int::try_from(limit.rlim_cur).unwrap_or(libc::c_int::MAX)
    } else {
        1024
    };
    for fd in first.max(0)..max {
        f(fd);
    }
}

/// The numeric names in a buffer of `linux_dirent64` records (d_ino u64, d_off i64, d_reclen u16, d_type u8,
/// NUL-terminated d_name). Allocation-free, so usable between fork and exec.
fn dirent_numbers(records: &[u8]) -> impl Iterator<Item = libc::c_int> + '_ {
    const NAME_AT: usize = 19;
    let mut at = 0usize;
    std::iter::from_fn(move || loop {
        let record = records.get(at..)?;
        let reclen = usize::from(u16::from_ne_bytes([*record.get(16)?, *record.get(17)?]));
        let name = record.get(NAME_AT..reclen)?;
        at += reclen;
        let mut fd: libc::c_int = 0;
        let mut digits = 0;
        for &b in name.iter().take_while(|&&b| b != 0) {
            if !b.is_ascii_digit() || digits >= 9 {
                digits = 0;
                break;
            }
            fd = fd * 10 + libc::c_int::from(b - b'0');
            digits += 1;
        }
        if digits > 0 {
            return Some(fd);
        }
    })
}
