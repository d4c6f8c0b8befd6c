//! `rstream webtty client` driven under a PTY this test opens: raw mode, window resizes reaching the remote
//! PTY (`stty size`), the remote exit code, and the local terminal restored on exit and on SIGTERM.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rstream::webtty::sys;
use webtty_support::*;

/// A `rstream webtty client` whose controlling terminal is a PTY held by the test.
struct DrivenClient {
    child: Child,
    master: File,
    slave: OwnedFd,
    screen: Arc<Mutex<String>>,
}

impl DrivenClient {
    fn start(server: &LocalServer, args: &[&str]) -> DrivenClient {
        let pty = sys::open_pty(24, 80).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["webtty", "client", "--url", &server.url(), "--auth-token-file"])
            .arg(&server.token_file)
            .args(args)
            .env("TERM", "xterm")
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
        sys::new_session_on_spawn(&mut cmd, true);
        let child = cmd.spawn().unwrap();
        let master = File::from(pty.master);
        let screen = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        DrivenClient { child, master, slave: pty.slave, screen }
    }

    fn type_line(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }

    fn wait_prompt(&self) {
        let seen = poll(Duration::from_secs(10), || self.screen_contains("ready> ").then_some(()));
        assert!(seen.is_some(), "no remote prompt; screen: {:?}", self.screen.lock().unwrap());
    }

    fn screen_contains(&self, needle: &str) -> bool {
        self.screen.lock().unwrap().contains(needle)
    }

    /// `stty -a` of the local terminal (the PTY slave), as the user's shell would see it.
    fn local_mode(&self) -> String {
        let out = Command::new("stty").arg("-a").stdin(Stdio::from(self.slave.try_clone().unwrap())).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_exit(&mut self) -> Option<i32> {
        poll(Duration::from_secs(10), || self.child.try_wait().unwrap()).expect("client exited").code()
    }
}

impl Drop for DrivenClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_raw(mode: &str) -> bool {
    mode.split_whitespace().any(|w| w == "-icanon") && mode.split_whitespace().any(|w| w == "-echo")
}

#[test]
fn terminal_resize_reaches_the_remote_pty_and_exit_code_returns() {
    let server = LocalServer::start(&[]);
    let mut client = DrivenClient::start(&server, &["-t", "-e", "PS1=ready> ", "--", "sh"]);
    // The shell prompt arrives once the session is up; the local terminal is raw by then.
    client.wait_prompt();
    assert!(is_raw(&client.local_mode()), "local terminal should be raw: {}", client.local_mode());

    client.type_line("stty size");
    poll(Duration::from_secs(10), || client.screen_contains("24 80").then_some(())).expect("initial size 24 80");

    sys::set_window_size(&client.master, 40, 120).unwrap(); // SIGWINCH to the client
    let resized = poll(Duration::from_secs(10), || {
        client.type_line("stty size");
        std::thread::sleep(Duration::from_millis(100));
        client.screen_contains("40 120").then_some(())
    });
    assert!(resized.is_some(), "remote PTY never saw 40x120: {}", client.screen.lock().unwrap());

    client.type_line("exit 7");
    assert_eq!(client.wait_exit(), Some(7));
    assert!(!is_raw(&client.local_mode()), "terminal not restored: {}", client.local_mode());
}

#[test]
fn sigterm_restores_the_terminal_and_ends_the_remote_session() {
    let server = LocalServer::start(&[]);
    let pidfile = server.dir.join("pid");
    let mut client = DrivenClient::start(&server, &["-t", "-e", "PS1=ready> ", "--", "sh"]);
    client.wait_prompt();
    client.type_line(&format!("echo $$ > {}", pidfile.display()));
    let pid = read_pid(&pidfile);
    assert!(is_raw(&client.local_mode()));

    let status = Command::new("kill").args(["-TERM", &client.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(client.wait_exit(), Some(128 + 15));
    assert!(!is_raw(&client.local_mode()), "terminal not restored after SIGTERM: {}", client.local_mode());
    let gone = poll(Duration::from_secs(5), || group_or_session_members(pid).is_empty().then_some(()));
    assert!(gone.is_some(), "remote shell survived: {:?}", group_or_session_members(pid));
}

#[test]
fn client_without_tty_streams_piped_stdin_and_output() {
    let server = LocalServer::start(&[]);
    let mut child = Command::new(BIN)
        .args(["webtty", "client", "--url", &server.url(), "--auth-token-file"])
        .arg(&server.token_file)
        .args(["--", "sh", "-c", "read x; echo got:$x; echo oops >&2; exit 5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"line\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:line\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
}
