//! The test process and its children as the kernel sees them: resident memory from `/proc`, the descriptor limit.
//! Shared by `common` and `webtty_support` (included by path).

#![allow(dead_code)]

/// Peak and current resident memory of process `pid` in KiB (`VmHWM`, `VmRSS` of `/proc/<pid>/status`).
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Raises this process's soft `RLIMIT_NOFILE` to at least `want` (up to the hard limit); children inherit it.
/// Returns the soft limit now in force.
pub fn raise_nofile_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0, "getrlimit");
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "setrlimit");
        }
    }
    lim.rlim_cur
}
