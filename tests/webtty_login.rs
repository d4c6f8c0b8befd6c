//! Execution modes from the real binary, as root (the test run is root; as anyone else these tests FAIL, they do
//! not skip): a throwaway user made with `useradd` (removed afterwards) is what `webtty server --execution-mode
//! login --login-user` runs sessions as — `id -un`, its groups, `$HOME` and the working directory, its passwd
//! shell, its PTY — with none of the server's environment; a user the client asks for is refused without
//! `--allow-client-user` (spawn and login mode alike) and honoured with it; a `--login-user` that does not exist,
//! or that a server not running as root cannot switch to, stops the server at startup with exit 2.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use webtty_support::*;

/// How long a server that must refuse to start may take to exit.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
/// How long `useradd`/`userdel` retry while another process holds the passwd lock.
const PASSWD_LOCK_DEADLINE: Duration = Duration::from_secs(30);
/// A supplementary group the test user gets (Debian's `users`, gid 100).
const EXTRA_GROUP: &str = "users";
/// Server environment that must never reach a session.
const SERVER_SECRETS: [(&str, &str); 3] = [
    ("RSTREAM_TEST_SECRET", "server-secret-4711"),
    ("SSH_AUTH_SOCK", "/tmp/server-agent.sock"),
    ("AWS_SECRET_ACCESS_KEY", "server-aws-secret"),
];

/// A user made for one test with `useradd`, home directory in a temp dir; removed (`userdel`) on drop.
struct ThrowawayUser {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
    _dir: TempDir,
}

impl ThrowawayUser {
    /// `useradd -m -d <tmp>/home -s /bin/sh -G users rst<pid><tag>`. Panics (loudly) when not root.
    fn create(tag: &str) -> ThrowawayUser {
        let euid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap();
        assert_eq!(euid, 0, "tests/webtty_login.rs must run as root (it creates users with useradd); NOT skipped");
        let dir = TempDir::new("login-user");
        let name = format!("rst{}{tag}", std::process::id());
        let home = dir.join("home").to_str().unwrap().to_owned();
        let args = ["-m", "-d", &home, "-s", "/bin/sh", "-G", EXTRA_GROUP, &name];
        passwd_tool("useradd", &args);
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().expect("id of the new user")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        ThrowawayUser { name, uid, gid, home, _dir: dir }
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        // Processes of the user would make userdel fail; every session has ended by now.
        passwd_tool("userdel", &[&self.name]);
    }
}

/// Runs `useradd`/`userdel`, retrying while the passwd database is locked (exit 10 / 1 with "lock").
fn passwd_tool(tool: &str, args: &[&str]) {
    let done = poll(PASSWD_LOCK_DEADLINE, || {
        let out = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return Some(Ok(()));
        }
        if stderr.contains("lock") {
            return None;
        }
        Some(Err(format!("{tool} {args:?}: {stderr}")))
    });
    done.unwrap_or_else(|| Err(format!("{tool}: passwd database locked for {PASSWD_LOCK_DEADLINE:?}"))).unwrap();
}

/// A local server with `extra` flags and the [`SERVER_SECRETS`] in its environment.
fn server(extra: &[&str]) -> LocalServer {
    LocalServer::start_with(extra, |cmd, _| {
        for (key, value) in SERVER_SECRETS {
            cmd.env(key, value);
        }
    })
}

/// stdout of a successful `webtty exec -o text`.
fn stdout_of(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exec failed ({:?}): {stderr}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `exec -o text -- sh -c script` (plus `flags` before `--`) and returns its stdout.
fn run(server: &LocalServer, flags: &[&str], script: &str) -> String {
    let args = [flags, &["-o", "text", "--", "sh", "-c", script]].concat();
    stdout_of(&server.exec(&args))
}

/// Asserts that `exec --user USER` is refused by the server with `said` (exit 255, nothing run).
fn assert_user_refused(server: &LocalServer, user: &str, said: &str) {
    let out = server.exec(&["--user", user, "-o", "text", "--", "sh", "-c", "echo ran"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "--user {user} should be refused: {stderr}");
    assert!(stderr.contains(said), "--user {user}: refusal does not say {said:?}: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ran"));
}

/// Starts `rstream webtty server --listen … args` (as `as_user` when given) and returns its exit code and stderr
/// once it exits; panics when it is still running after [`STARTUP_DEADLINE`] (it accepted the flags).
fn startup(args: &[&str], as_user: Option<&ThrowawayUser>) -> (i32, String) {
    let dir = TempDir::new("login-startup");
    let stderr = dir.join("stderr");
    let mut cmd = Command::new(BIN);
    cmd.args(["webtty", "server", "--listen", "127.0.0.1:0", "--allow-unauthenticated"]).args(args);
    if let Some(user) = as_user {
        cmd.uid(user.uid).gid(user.gid).env("HOME", &user.home).current_dir(&user.home);
    }
    let file = std::fs::File::create(&stderr).unwrap();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file).spawn().unwrap();
    let status = poll(STARTUP_DEADLINE, || child.try_wait().unwrap());
    let text = std::fs::read_to_string(&stderr).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`webtty server {}` started; stderr:\n{text}", args.join(" "));
    };
    (status.code().unwrap_or(-1), text)
}

#[test]
fn login_mode_runs_sessions_as_the_login_user_in_its_home_without_the_server_environment() {
    let user = ThrowawayUser::create("a");
    let server = server(&["--execution-mode", "login", "--login-user", &user.name]);
    let out = run(&server, &[], "id -un; id -Gn; echo \"$HOME\"; pwd; echo \"$SHELL\" \"$USER\" \"$LOGNAME\"");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], user.name, "{out}");
    let groups: Vec<&str> = lines[1].split_whitespace().collect();
    assert!(groups.contains(&EXTRA_GROUP), "supplementary groups: {out}");
    assert!(!groups.contains(&"root"), "the server's groups leaked: {out}");
    assert_eq!(&lines[2..4], [user.home.as_str(), user.home.as_str()], "{out}");
    assert_eq!(lines[4], format!("/bin/sh {0} {0}", user.name));

    // Only the command switched: its session supervisor keeps the server's identity, out of the user's reach.
    let supervisor = run(&server, &[], "ps -o user= -p $PPID; kill -KILL $PPID 2>/dev/null; echo kill=$?");
    assert_eq!(supervisor.split_whitespace().collect::<Vec<_>>(), ["root", "kill=1"], "{supervisor}");

    let env = run(&server, &["-e", "HOME=/root", "-e", "GREETING=hi"], "env");
    for (key, value) in SERVER_SECRETS {
        assert!(!env.contains(key) && !env.contains(value), "server variable {key} reached the session:\n{env}");
    }
    assert!(env.lines().any(|l| l == format!("HOME={}", user.home)), "login mode forces HOME:\n{env}");
    assert!(env.lines().any(|l| l == "GREETING=hi"), "client variables still apply:\n{env}");
    let keys: Vec<&str> = env.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k).collect();
    let allowed = |k: &&str| {
        matches!(*k, "PATH" | "LANG" | "LANGUAGE" | "TZ" | "TERM" | "USER" | "LOGNAME" | "SHELL" | "HOME")
            || k.starts_with("LC_")
            || matches!(*k, "GREETING" | "RSTREAM_WEBTTY_DETACH" | "XDG_RUNTIME_DIR" | "DBUS_SESSION_BUS_ADDRESS")
            || matches!(*k, "PWD" | "OLDPWD" | "SHLVL" | "_") // set by sh itself
    };
    assert!(keys.iter().all(allowed), "unexpected variables in the session: {keys:?}");

    // The default command is the user's passwd shell (/bin/sh here, root's is /bin/bash), as a login shell, on
    // a PTY the user owns.
    let mut client = Command::new(BIN);
    client.args(["webtty", "client", "--url", &server.url(), "--auth-token-file"]).arg(&server.token_file);
    let script = "echo shell=$0; stat -c owner=%U \"$(tty)\"; exit 7\n";
    let out = pipe_stdin(client.arg("-t"), script);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("shell=/bin/sh"), "{text}");
    assert!(text.contains(&format!("owner={}", user.name)), "the PTY should belong to the user: {text}");
    drop(server);
}

/// Runs `cmd` with `input` on its stdin and returns its output.
fn pipe_stdin(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_client_requested_user_is_refused_unless_the_server_allows_it() {
    let user = ThrowawayUser::create("b");
    let spawn = server(&[]);
    assert_user_refused(&spawn, &user.name, "client-selected OS users are disabled in spawn execution mode");
    assert_eq!(run(&spawn, &["--user", "root"], "id -un").trim(), "root", "its own user is no switch");
    drop(spawn);

    let login = server(&["--execution-mode", "login", "--login-user", &user.name]);
    assert_user_refused(&login, "root", "client-selected OS users are disabled in login execution mode");
    assert_eq!(run(&login, &["--user", &user.name], "id -un").trim(), user.name);
    drop(login);

    let allowing = server(&["--allow-client-user"]);
    assert_eq!(run(&allowing, &[], "id -un").trim(), "root", "spawn mode still defaults to the server's user");
    assert_eq!(run(&allowing, &["--user", &user.name], "id -un; pwd").trim(), format!("{}\n{}", user.name, user.home));
    assert_eq!(run(&allowing, &["-u", &user.uid.to_string()], "id -u").trim(), user.uid.to_string(), "by uid");
    assert_user_refused(&allowing, "no-such-user-rstream", "no such user \"no-such-user-rstream\"");
    // A user whose home does not exist (Debian's nobody: /nonexistent) starts in /, as login(1) does.
    assert_eq!(run(&allowing, &["--user", "nobody"], "id -un; pwd").trim(), "nobody\n/");
    drop(allowing);

    let any = server(&["--execution-mode", "login", "--allow-client-user"]);
    assert_eq!(run(&any, &["--user", &user.name], "id -un").trim(), user.name);
    let out = any.exec(&["-o", "text", "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("requires a configured default user"), "no user named, none configured: {stderr}");
}

#[test]
fn a_login_user_that_cannot_be_used_stops_the_server_at_startup_with_exit_2() {
    let (code, stderr) = startup(&["--execution-mode", "login", "--login-user", "no-such-user-rstream"], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--login-user") && stderr.contains("no such user \"no-such-user-rstream\""), "{stderr}");

    let (code, stderr) = startup(&["--execution-mode", "login"], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("login execution mode requires a configured default user"), "{stderr}");

    // A server that is not root cannot switch to another user: refused before it listens.
    let user = ThrowawayUser::create("c");
    let (code, stderr) = startup(&["--execution-mode", "login", "--login-user", "root"], Some(&user));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("needs a server started as root"), "{stderr}");
}
