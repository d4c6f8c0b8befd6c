//! The passwd and group databases (reentrant lookups, done before fork) and the credential switch a login
//! session's command makes between fork and exec.

use std::ffi::CStr;
use std::io;
use std::os::fd::AsRawFd;

use super::check;

/// An account from the passwd database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// Bytes of the buffer `getpwnam_r`/`getpwuid_r` store an entry's strings in.
const PASSWD_BUF_LEN: usize = 16 * 1024;

/// Looks up the current real user in the passwd database.
pub fn current_user() -> Option<UserInfo> {
    // SAFETY: getuid cannot fail and takes no arguments.
    user_by_uid(unsafe { libc::getuid() }).ok().flatten()
}

/// The passwd entry of user `name` (`Ok(None)`: no such user).
pub fn user_by_name(name: &str) -> io::Result<Option<UserInfo>> {
    let name = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a user name cannot hold a NUL byte"))?;
    lookup_passwd(|pwd, buf, len, result| {
        // SAFETY: `name` is a live NUL-terminated string; the other pointers come from `lookup_passwd`.
        unsafe { libc::getpwnam_r(name.as_ptr(), pwd, buf, len, result) }
    })
}

/// The passwd entry of uid `uid` (`Ok(None)`: no such user).
pub fn user_by_uid(uid: u32) -> io::Result<Option<UserInfo>> {
    lookup_passwd(|pwd, buf, len, result| {
        // SAFETY: the pointers come from `lookup_passwd` and are valid for the call.
        unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) }
    })
}

/// Runs one `getpw*_r` call with a local entry and buffer and copies the entry out.
fn lookup_passwd(
    call: impl FnOnce(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int,
) -> io::Result<Option<UserInfo>> {
    let mut buf = vec![0 as libc::c_char; PASSWD_BUF_LEN];
    // SAFETY: an all-zero passwd is a valid value for getpw*_r to overwrite.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // `pwd`, `buf` (of `buf.len()` bytes) and `result` are live locals; the strings getpw*_r stores in `pwd`
    // point into `buf`, which outlives their use below.
    let ret = call(&mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    if result.is_null() {
        return Ok(None);
    }
    let field = |p: *const libc::c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: non-null fields of a successful getpw*_r are NUL-terminated strings inside `buf`.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    Ok(Some(UserInfo {
        name: field(pwd.pw_name),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        home: field(pwd.pw_dir),
        shell: field(pwd.pw_shell),
    }))
}

/// Every group `user` belongs to (its primary group `gid` first), from the group database (`getgrouplist`);
/// at most `max` of them.
pub fn group_list(user: &str, gid: u32, max: usize) -> io::Result<Vec<u32>> {
    let name = std::ffi::CString::new(user)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a user name cannot hold a NUL byte"))?;
    let mut len: usize = 32;
    loop {
        let mut groups = vec![0 as libc::gid_t; len];
        let mut count = libc::c_int::try_from(len).unwrap_or(libc::c_int::MAX);
        // SAFETY: `name` is NUL-terminated; `groups` has room for `count` gids; `count` is a live local that
        // getgrouplist overwrites with the number of groups found.
        let ret = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        let found = usize::try_from(count).unwrap_or(0);
        if ret >= 0 {
            groups.truncate(found.min(len));
            return Ok(groups);
        }
        if found <= len || found > max {
            return Err(io::Error::other(format!("user {user:?} is in more than {max} groups")));
        }
        len = found;
    }
}

/// This process's effective user and group ids.
pub fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid cannot fail and take no arguments.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Gives the file behind `fd` to user `uid`, its group unchanged (a PTY slave for a session that runs as another
/// user, as login(1) does).
pub fn chown_fd(fd: &impl AsRawFd, uid: u32) -> io::Result<()> {
    // SAFETY: fchown takes integers only; a gid of -1 leaves the group as it is.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, libc::gid_t::MAX) })?;
    Ok(())
}

/// The identity a session's command switches to before exec (`setgroups`, `setgid`, `setuid`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// What the command of a session does before exec when it runs as another user: switch to `credentials`, then
/// enter `workdir` as that user. Resolved in the server before spawning, so the forked child only makes system
/// calls on this data.
#[derive(Clone, Debug)]
pub struct CommandSwitch {
    /// The target identity.
    pub credentials: Credentials,
    /// The session's working directory.
    pub workdir: std::ffi::CString,
}

/// setgroups + setgid + setuid, in that order (the first two need the privilege the last one drops), a check
/// that the privilege cannot be regained, then chdir as the new user. Async-signal-safe: for a forked child
/// before exec; it only reads `creds`.
pub(super) fn switch_credentials(switch: &CommandSwitch) -> io::Result<()> {
    let creds = &switch.credentials;
    // SAFETY: setgroups reads `groups.len()` gids from the live vector, chdir the live NUL-terminated workdir;
    // setgid and setuid take integers.
    unsafe {
        check(libc::setgroups(creds.groups.len() as _, creds.groups.as_ptr()))?;
        check(libc::setgid(creds.gid))?;
        check(libc::setuid(creds.uid))?;
        if creds.uid != 0 && libc::setuid(0) == 0 {
            return Err(io::Error::from_raw_os_error(libc::EPERM)); // the switch did not drop root
        }
        check(libc::chdir(switch.workdir.as_ptr()))?;
    }
    Ok(())
}
