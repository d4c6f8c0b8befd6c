//! Shared end-to-end harness: temp dirs, child-process guards, a deadline poller, and a real engine.
//!
//! ```ignore
//! mod common;
//! let engine = common::Engine::start();               // `rstream engine serve --listen 127.0.0.1:0 …`
//! let token = engine.token(&["tunnels.tunnels.create-delete"], None);
//! common::wait_until(Duration::from_secs(5), "tunnel listed", || probe());
//! ```
//! Everything runs on loopback with ephemeral ports; children are killed when their guard drops; nothing
//! sleeps for a fixed time — waits poll with a deadline and fail with a message saying what never happened.

#![allow(dead_code)]

pub mod fake_agent;
pub mod fake_engine;
pub mod proc;
pub mod raw;
pub mod tls;
pub mod tokens;
pub mod tunnel;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `rstream` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rstream");

/// Every engine permission (what the operator context token carries).
pub const ALL: [&str; 3] =
    ["tunnels.tunnels.create-delete", "tunnels.resources.read-only", "tunnels.streams.create-delete"];
/// A device token: register tunnels only.
pub const DEVICE: [&str; 1] = ["tunnels.tunnels.create-delete"];
/// An operator token: list and dial, not register.
pub const OPERATOR: [&str; 2] = ["tunnels.resources.read-only", "tunnels.streams.create-delete"];

/// How long an engine may take to come up.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// Polls `probe` every 20 ms until it returns `Some`, or panics after `deadline` naming `what`.
pub fn wait_until<T>(deadline: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    wait_until_or(deadline, || what.to_owned(), probe)
}

/// [`wait_until`], describing what never happened (and the state it was in) only when the deadline passes.
pub fn wait_until_or<T>(deadline: Duration, what: impl Fn() -> String, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for: {}", what());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("rstream-{tag}-{}-{nanos}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) when dropped.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Kills and reaps the child now.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Polls until the child exits or `deadline` passes; `None` means it is still running.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `rstream <args>` to completion with `envs`; returns (exit code, stdout, stderr).
pub fn run(args: &[&str], envs: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run rstream");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A running `rstream engine serve` on 127.0.0.1 with its own state dir and config file.
pub struct Engine {
    dir: TempDir,
    child: Option<ChildGuard>,
    port: u16,
    http_port: Arc<Mutex<Option<u16>>>,
    extra: Vec<String>,
    logs: Arc<Mutex<String>>,
    operator: OnceLock<String>,
    verbose: bool,
    /// `RLIMIT_NOFILE` (soft, hard) the engine starts with, when set.
    nofile: Option<(u64, u64)>,
}

impl Engine {
    /// Starts an engine on an ephemeral port and waits until it accepts connections.
    pub fn start() -> Engine {
        Engine::start_with(&[])
    }

    /// Starts an engine with extra `engine serve` flags (e.g. `["--host", "relay.test"]`).
    pub fn start_with(extra: &[&str]) -> Engine {
        Engine::start_limited(extra, None)
    }

    /// Starts an engine whose `RLIMIT_NOFILE` starts at (soft, hard) — what a service manager may hand it.
    pub fn start_with_fd_limit(soft: u64, hard: u64, extra: &[&str]) -> Engine {
        Engine::start_limited(extra, Some((soft, hard)))
    }

    fn start_limited(extra: &[&str], nofile: Option<(u64, u64)>) -> Engine {
        let mut engine = Engine {
            dir: TempDir::new("engine"),
            child: None,
            port: 0,
            http_port: Arc::default(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            logs: Arc::default(),
            operator: OnceLock::new(),
            verbose: false,
            nofile,
        };
        engine.spawn("127.0.0.1:0");
        engine
    }

    /// [`Engine::start_with`], run as `rstream -v engine serve …` (debug logging in [`Engine::logs`]).
    pub fn start_verbose(extra: &[&str]) -> Engine {
        let mut engine = Engine::start_with(extra);
        engine.verbose = true;
        engine.restart();
        engine
    }

    fn spawn(&mut self, listen: &str) {
        let mut cmd = Command::new(BIN);
        if self.verbose {
            cmd.arg("-v");
        }
        cmd.args(["engine", "serve", "--listen", listen, "--state-dir"])
            .arg(self.state_dir())
            .args(&self.extra)
            .env("RSTREAM_CONFIG", self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((soft, hard)) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the struct passed to it.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                    match libc::setrlimit(libc::RLIMIT_NOFILE, &lim) {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn rstream engine serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let guard = ChildGuard(child);
        let (tx, rx) = mpsc::channel();
        let logs = Arc::clone(&self.logs);
        let http_port = Arc::clone(&self.http_port);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                logs.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(addr) = line.trim().strip_prefix("http:") {
                    let port = addr.split_whitespace().next().and_then(|a| a.rsplit(':').next()?.parse().ok());
                    *http_port.lock().unwrap() = port;
                }
                if let Some(addr) = line.trim().strip_prefix("listen:") {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let logs = Arc::clone(&self.logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                logs.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let addr = rx
            .recv_timeout(START_DEADLINE)
            .unwrap_or_else(|_| panic!("engine did not report its listen address; output:\n{}", self.logs()));
        self.port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("listen line has a port");
        self.child = Some(guard);
    }

    /// Kills the engine and starts it again on the same port with the same state and config.
    pub fn restart(&mut self) {
        self.kill();
        let listen = format!("127.0.0.1:{}", self.port);
        // The port is free again once the old process is reaped; retry briefly in case of a racing bind.
        let end = Instant::now() + START_DEADLINE;
        loop {
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn(&listen)));
            match attempt {
                Ok(()) => return,
                Err(e) if Instant::now() >= end => std::panic::resume_unwind(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Kills the engine (it can be restarted).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// The engine's process id (panics while it is down).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("engine is running").0.id()
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The plain-HTTP port (when started with `--http-listen`).
    pub fn http_port(&self) -> Option<u16> {
        *self.http_port.lock().unwrap()
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temp dir holding state and config.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The engine's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The generated CA certificate clients must trust.
    pub fn ca_path(&self) -> PathBuf {
        self.state_dir().join("ca.pem")
    }

    /// The config file the engine wrote its `local` context into (`RSTREAM_CONFIG`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// Everything the engine printed so far (stdout and stderr).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// A token with every permission (minted once; it stays valid across restarts, the secret is kept).
    pub fn operator_token(&self) -> String {
        self.operator.get_or_init(|| self.token(&ALL, None)).clone()
    }

    /// Mints a token with `permissions` and an optional `--ttl` through `rstream engine token`.
    pub fn token(&self, permissions: &[&str], ttl: Option<&str>) -> String {
        let state = self.state_dir();
        let perms = permissions.join(",");
        let mut args = vec!["engine", "token", "--state-dir", state.to_str().unwrap(), "--permissions", &perms];
        if let Some(ttl) = ttl {
            args.extend(["--ttl", ttl]);
        }
        let (code, out, err) = run(&args, &[]);
        assert_eq!(code, 0, "engine token failed: {err}");
        out.trim().to_owned()
    }
}

/// An HTTP answer captured by [`curl`].
#[derive(Debug)]
pub struct HttpReply {
    /// Status code (0 if curl failed before a response).
    pub status: u16,
    /// The raw response head (status line and fields).
    pub head: String,
    /// The body as text.
    pub body: String,
}

impl HttpReply {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// Runs `curl -sS -i <args>` (10 s cap) and splits the answer into status, head and body.
pub fn curl(args: &[&str]) -> HttpReply {
    let out = Command::new("curl").args(["-sS", "-i", "--max-time", "10"]).args(args).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    if status == 0 {
        eprintln!("curl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    HttpReply { status, head: head.to_owned(), body: body.to_owned() }
}

impl Engine {
    /// `curl` against `https://<host>:<port><path>` trusting the engine's CA, `host` resolving to 127.0.0.1,
    /// with an optional bearer token and extra curl arguments.
    pub fn curl_host(&self, host: &str, path: &str, token: Option<&str>, extra: &[&str]) -> HttpReply {
        let url = format!("https://{host}:{}{path}", self.port);
        let resolve = format!("{host}:{}:127.0.0.1", self.port);
        let ca = self.ca_path();
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut args = vec!["--resolve", &resolve, "--cacert", ca.to_str().unwrap()];
        if let Some(auth) = &auth {
            args.extend(["-H", auth.as_str()]);
        }
        args.extend(extra);
        args.push(&url);
        curl(&args)
    }

    /// `GET https://localhost:<port><path>` with an optional bearer token.
    pub fn api(&self, path: &str, token: Option<&str>) -> HttpReply {
        self.curl_host("localhost", path, token, &[])
    }

    /// `GET /api/tunnels` with the operator token: the JSON array of tunnels.
    pub fn tunnels(&self) -> Vec<serde_json::Value> {
        let reply = self.api("/api/tunnels", Some(&self.operator_token()));
        assert_eq!(reply.status, 200, "GET /api/tunnels: {reply:?}");
        reply.json().as_array().expect("a JSON array").clone()
    }

    /// Names of the tunnels in `GET /api/tunnels`.
    pub fn tunnel_names(&self) -> Vec<String> {
        self.tunnels().iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
    }

    /// The value of metric `name` in `GET /metrics` (None if the engine did not answer or lacks it).
    pub fn metric(&self, name: &str) -> Option<u64> {
        let reply = self.api("/metrics", Some(&self.operator_token()));
        reply.body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.kill();
    }
}
