//! Who a WebTTY session runs as: the server's execution mode (`webtty server --execution-mode spawn|login`),
//! `--login-user NAME|UID` and `--allow-client-user`, and what a client's `Open.config.username` may change.
//!
//! - *spawn* (the default): sessions run as the server's own user. A client-requested user other than that one
//!   is refused unless `--allow-client-user`, which honours it when the server can switch to it (root).
//! - *login*: sessions run as `--login-user`, resolved and checked when the server starts
//!   ([`Execution::new`]); another client-requested user only with `--allow-client-user`. The identity
//!   variables (`USER`, `LOGNAME`, `SHELL`, `HOME`) are the target's and the client cannot override them.
//!
//! Upstream's error texts are kept ("client-selected OS users are disabled in login execution mode", "login
//! execution mode requires a configured default user or explicitly allowed client user"). Switching users needs
//! root (we do not look at capabilities): the passwd entry and the group list are resolved here, in the server;
//! the forked command then only calls setgroups + setgid + setuid ([`sys::CommandSwitch`]), and its session
//! supervisor keeps the server's identity, so what the user starts can neither kill nor trace it.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::sys::{self, Credentials, UserInfo};
use crate::limits;
use crate::proto::webtty::username::Name;

/// How a server runs its sessions (`--execution-mode`, label `rstream.webtty.execution.mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutionMode {
    /// As the server's own user (children of the server).
    #[default]
    Spawn,
    /// As a configured (or allowed client-requested) OS user, in its home, with its shell.
    Login,
}

impl ExecutionMode {
    /// The flag and label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Spawn => "spawn",
            ExecutionMode::Login => "login",
        }
    }
}

impl std::str::FromStr for ExecutionMode {
    type Err = String;

    /// `spawn`, `login`; empty is spawn (as upstream).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "spawn" => Ok(ExecutionMode::Spawn),
            "login" => Ok(ExecutionMode::Login),
            other => Err(format!("execution mode {other:?} is not known: expected spawn or login")),
        }
    }
}

/// The server's rules for session users, checked at startup.
#[derive(Clone, Debug, Default)]
pub struct Execution {
    mode: ExecutionMode,
    /// `--login-user`, resolved (login mode only).
    login_user: Option<UserInfo>,
    allow_client_user: bool,
}

/// The user one session runs as. The default is the server's own user, as in spawn mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUser {
    /// Its passwd entry.
    pub account: UserInfo,
    /// The credentials the command switches to; `None` when it is the server's own identity.
    pub switch: Option<Credentials>,
    /// Login mode: identity variables are forced, the login environment extras apply ([`Self::login_env`]).
    pub login: bool,
}

impl Execution {
    /// Checks the flags: in login mode `--login-user` must exist and be a user this server can switch to, or
    /// `--allow-client-user` must be given. The error is for the operator, at startup.
    pub fn new(mode: ExecutionMode, login_user: Option<&str>, allow_client_user: bool) -> Result<Execution, String> {
        let login_user = match (mode, login_user) {
            (ExecutionMode::Spawn, Some(_)) => {
                return Err("--login-user requires --execution-mode login (spawn runs sessions as the server's \
                            own user)"
                    .into())
            }
            (ExecutionMode::Login, None) if !allow_client_user => {
                return Err("login execution mode requires a configured default user or explicitly allowed client \
                            user: give --login-user NAME|UID or --allow-client-user"
                    .into())
            }
            (_, None) => None,
            (ExecutionMode::Login, Some(spec)) => {
                let user = resolve_user(spec).map_err(|e| format!("--login-user: {e}"))?;
                credentials_for(&user).map_err(|e| format!("--login-user: {e}"))?;
                Some(user)
            }
        };
        Ok(Execution { mode, login_user, allow_client_user })
    }

    /// The mode.
    pub fn mode(&self) -> ExecutionMode {
        self.mode
    }

    /// The user a session runs as, given the client's request. The error goes to the client.
    pub fn session_user(&self, requested: Option<&Name>) -> Result<SessionUser, String> {
        let login = self.mode == ExecutionMode::Login;
        let default = self.login_user.clone().unwrap_or_else(own_account);
        let user = match requested {
            None if login && self.login_user.is_none() => {
                return Err("login execution mode requires a configured default user or explicitly allowed client \
                            user: this server has no --login-user, so the client must name one"
                    .into())
            }
            None => default,
            Some(name) if names(name, &default) => default,
            Some(name) if !self.allow_client_user => {
                return Err(format!(
                    "client-selected OS users are disabled in {} execution mode: this server runs sessions as \
                     {:?} and refuses user {}; start it with --allow-client-user to allow that",
                    self.mode.as_str(),
                    default.name,
                    display(name)
                ))
            }
            Some(name) => resolve_requested(name)?,
        };
        let switch = credentials_for(&user)?;
        Ok(SessionUser { account: user, switch, login })
    }
}

impl Default for SessionUser {
    fn default() -> Self {
        SessionUser { account: own_account(), switch: None, login: false }
    }
}

impl SessionUser {
    /// Linux login sessions: `XDG_RUNTIME_DIR=/run/user/<uid>` when that is a 0700 directory the user owns, and
    /// `DBUS_SESSION_BUS_ADDRESS` when its `bus` socket is the user's (as upstream).
    pub fn login_env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if !self.login || !cfg!(target_os = "linux") {
            return env;
        }
        let uid = self.account.uid;
        let dir = format!("/run/user/{uid}");
        let owned = |m: &std::fs::Metadata| m.uid() == uid;
        if std::fs::metadata(&dir).is_ok_and(|m| m.is_dir() && owned(&m) && m.permissions().mode() & 0o777 == 0o700) {
            let bus = format!("{dir}/bus");
            if std::fs::metadata(&bus).is_ok_and(|m| m.file_type().is_socket() && owned(&m)) {
                env.push(("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={bus}")));
            }
            env.push(("XDG_RUNTIME_DIR", dir));
        }
        env
    }
}

/// The server's own account; where the passwd database does not know it (containers), `$HOME`/`$SHELL`/`$USER`
/// fill in.
fn own_account() -> UserInfo {
    let (uid, gid) = sys::effective_ids();
    let mut user = sys::user_by_uid(uid).ok().flatten().unwrap_or(UserInfo { uid, gid, ..UserInfo::default() });
    let fill = |field: &mut String, var: &str| {
        if field.is_empty() {
            *field = std::env::var(var).unwrap_or_default();
        }
    };
    fill(&mut user.name, "USER");
    fill(&mut user.home, "HOME");
    fill(&mut user.shell, "SHELL");
    user
}

/// Resolves `NAME|UID`: a user name first, then (all digits) a uid.
pub fn resolve_user(spec: &str) -> Result<UserInfo, String> {
    if spec.is_empty() {
        return Err("empty user name".into());
    }
    let lookup = |e: std::io::Error| format!("looking up user {spec:?}: {e}");
    if let Some(user) = sys::user_by_name(spec).map_err(lookup)? {
        return Ok(user);
    }
    let by_uid = match spec.parse::<u32>() {
        Ok(uid) => sys::user_by_uid(uid).map_err(lookup)?,
        Err(_) => None,
    };
    by_uid.ok_or_else(|| format!("no such user {spec:?} in the passwd database"))
}

fn resolve_requested(name: &Name) -> Result<UserInfo, String> {
    match name {
        Name::Name(name) => resolve_user(name),
        Name::Id(uid) => sys::user_by_uid(*uid)
            .map_err(|e| format!("looking up uid {uid}: {e}"))?
            .ok_or_else(|| format!("no such user with uid {uid} in the passwd database")),
    }
}

/// Whether the request names `user` (by name, or by uid).
fn names(name: &Name, user: &UserInfo) -> bool {
    match name {
        Name::Name(name) => *name == user.name || name.parse::<u32>().is_ok_and(|uid| uid == user.uid),
        Name::Id(uid) => *uid == user.uid,
    }
}

fn display(name: &Name) -> String {
    match name {
        Name::Name(name) => format!("{name:?}"),
        Name::Id(uid) => format!("with uid {uid}"),
    }
}

/// What the command must switch to for `user`: nothing when it is this process's own identity; otherwise the
/// uid, primary gid and supplementary groups, which needs root.
fn credentials_for(user: &UserInfo) -> Result<Option<Credentials>, String> {
    let (uid, gid) = sys::effective_ids();
    if user.uid == uid && user.gid == gid {
        return Ok(None);
    }
    if uid != 0 {
        return Err(format!(
            "this server runs as uid {uid} and cannot switch to user {:?} (uid {}): running sessions as another \
             user needs a server started as root",
            user.name, user.uid
        ));
    }
    let groups = sys::group_list(&user.name, user.gid, limits::MAX_SESSION_GROUPS)
        .map_err(|e| format!("group list of user {:?}: {e}", user.name))?;
    Ok(Some(Credentials { uid: user.uid, gid: user.gid, groups }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_upstream() {
        assert_eq!("".parse::<ExecutionMode>(), Ok(ExecutionMode::Spawn));
        assert_eq!("login".parse::<ExecutionMode>().map(ExecutionMode::as_str), Ok("login"));
        assert!("sudo".parse::<ExecutionMode>().unwrap_err().contains("spawn or login"));
    }

    #[test]
    fn login_mode_needs_a_user_or_the_client_permission() {
        let err = Execution::new(ExecutionMode::Login, None, false).unwrap_err();
        assert!(err.contains("requires a configured default user"), "{err}");
        assert!(Execution::new(ExecutionMode::Spawn, Some("root"), false).unwrap_err().contains("--execution-mode"));
        let err = Execution::new(ExecutionMode::Login, Some("no-such-user-rstream"), false).unwrap_err();
        assert!(err.contains("no such user"), "{err}");
    }

    #[test]
    fn spawn_mode_refuses_another_user_unless_allowed() {
        let me = own_account();
        let spawn = Execution::default();
        let mine = spawn.session_user(Some(&Name::Id(me.uid))).unwrap();
        assert!(mine.switch.is_none() && !mine.login);
        let other = Name::Name("no-such-user-rstream".into());
        let err = spawn.session_user(Some(&other)).unwrap_err();
        assert!(err.contains("client-selected OS users are disabled in spawn") && err.contains("--allow-client-user"));
        let allowed = Execution::new(ExecutionMode::Spawn, None, true).unwrap();
        assert!(allowed.session_user(Some(&other)).unwrap_err().contains("no such user"));
    }

    #[test]
    fn the_own_user_needs_no_switch() {
        let me = own_account();
        let login = Execution::new(ExecutionMode::Login, Some(&me.uid.to_string()), false).unwrap();
        let user = login.session_user(None).unwrap();
        assert!(user.login && user.switch.is_none());
        assert_eq!(user.account.uid, me.uid);
        let err = login.session_user(Some(&Name::Name("no-such-user-rstream".into()))).unwrap_err();
        assert!(err.starts_with("client-selected OS users are disabled in login execution mode"), "{err}");
    }
}
