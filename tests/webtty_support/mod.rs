//! Shared helpers for the WebTTY end-to-end tests: a temp dir, a local `rstream webtty server` on an ephemeral
//! loopback port (killed on drop), and `/proc` probes. Synchronisation is by polling with deadlines.

#![allow(dead_code)]

#[path = "../common/proc.rs"]
pub mod proc;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rstream");

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rstream-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 20 ms until it returns `Some` or `limit` passes.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running local WebTTY server.
pub struct LocalServer {
    pub child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub token: String,
    pub token_file: PathBuf,
    pub dir: TempDir,
    /// Server stderr lines after the listening line (`listening on ws://…` or, with TLS, `wss://…`).
    pub log: mpsc::Receiver<String>,
}

impl LocalServer {
    /// Starts `rstream webtty server --listen 127.0.0.1:0 --auth-token-file <tmp>` plus `extra`.
    pub fn start(extra: &[&str]) -> LocalServer {
        Self::start_with(extra, |_, _| {})
    }

    /// [`LocalServer::start`], letting `prepare` adjust the server command (environment, inherited
    /// descriptors) and fill the server's temp dir (passed as the second argument) before it starts.
    pub fn start_with(extra: &[&str], prepare: impl FnOnce(&mut Command, &Path)) -> LocalServer {
        let dir = TempDir::new("webtty");
        let token = format!("tok-{}", std::process::id());
        let token_file = dir.join("token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["webtty", "server", "--listen", "127.0.0.1:0", "--auth-token-file"])
            .arg(&token_file)
            .args(extra)
            .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        prepare(&mut cmd, &dir.0);
        let mut child = cmd.spawn().expect("spawn rstream webtty server");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("server did not report its address");
            let url = line.split("listening on ").nth(1);
            if let Some(rest) = url.and_then(|u| u.strip_prefix("ws://").or_else(|| u.strip_prefix("wss://"))) {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        LocalServer { child, addr, token, token_file, dir, log: rx }
    }

    /// `ws://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// A `rstream webtty exec` command against this server, with the token file.
    pub fn exec_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(["webtty", "exec", "--url", &self.url(), "--auth-token-file"])
            .arg(&self.token_file)
            .args(args)
            .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `rstream webtty exec … args` to completion.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.exec_cmd(args).output().expect("run rstream webtty exec")
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses the JSON printed by `webtty exec -o json`.
pub fn exec_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("bad exec json ({e}): {text:?}; stderr {:?}", String::from_utf8_lossy(&out.stderr)))
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// Pids (not zombies) whose process group or session is `id`.
pub fn group_or_session_members(id: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
            let Some(rest) = stat.rsplit(')').next() else { return false };
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.len() > 4 && f[0] != "Z" && (f[2] == id.to_string() || f[3] == id.to_string())
        })
        .collect()
}

/// Reads a pid a remote command wrote into `path` (polling until it appears).
pub fn read_pid(path: &Path) -> i32 {
    poll(Duration::from_secs(10), || std::fs::read_to_string(path).ok()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", path.display()))
}

/// Sends one HTTP/1.1 request (`Connection: close`, bearer `token` when given, `extra` header lines ending in
/// CRLF) and returns the whole response as text.
pub fn http_request(addr: &str, method: &str, path: &str, token: Option<&str>, extra: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = tcp.read_to_string(&mut resp);
    resp
}
