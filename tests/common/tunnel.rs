//! Tunnel-plane fixtures: local origin servers (HTTP, echo, endless), `rstream forward` and `webtty server
//! --rstream` children with their output, `curl` against published tunnels, and client processes whose output is
//! checked byte for byte as it streams ([`PatternClient`]). Origins are plain `std::net` servers on 127.0.0.1:0,
//! one thread per connection; they live as long as the test process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::{wait_until, ChildGuard, Engine, TempDir, BIN};

/// Body served at `/` by [`http_origin`].
pub const HELLO: &str = "hello from the origin\n";
/// Size of the body served at `/big`.
pub const BIG_LEN: usize = 10 << 20;

/// The deterministic 10 MiB body served at `/big`: the first [`BIG_LEN`] bytes of [`Pattern`].
pub fn big_body() -> Vec<u8> {
    let mut body = vec![0; BIG_LEN];
    Pattern::default().fill(&mut body);
    body
}

/// An endless deterministic byte stream (xorshift), so misplaced or corrupted chunks are caught; the endless
/// origins send it and clients check what they got against a fresh one.
#[derive(Clone)]
pub struct Pattern(u32);

impl Default for Pattern {
    fn default() -> Self {
        Pattern(0x9e37_79b9)
    }
}

impl Pattern {
    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            *b = self.0 as u8;
        }
    }

    /// Whether `got` is what the stream yields next (and consumes it).
    pub fn matches(&mut self, got: &[u8]) -> bool {
        let mut want = vec![0; got.len()];
        self.fill(&mut want);
        want == got
    }
}

/// Writes [`Pattern`] to `conn` until the peer goes away.
fn send_pattern_forever(conn: &mut TcpStream) {
    let (mut pattern, mut chunk) = (Pattern::default(), vec![0; 64 * 1024]);
    loop {
        pattern.fill(&mut chunk);
        if conn.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// A local server: its port.
pub struct Origin {
    /// Port on 127.0.0.1.
    pub port: u16,
}

impl Origin {
    /// `127.0.0.1:<port>`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn serve(handler: impl Fn(TcpStream) + Clone + Send + 'static) -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let handler = handler.clone();
            std::thread::spawn(move || handler(conn));
        }
    });
    Origin { port }
}

/// Greets every connection with `banner` and closes it: tells which device a dial reached.
pub fn banner_origin(banner: &'static str) -> Origin {
    serve(move |mut conn| {
        let _ = conn.write_all(banner.as_bytes());
    })
}

/// An HTTP/1.1 origin: `/` → [`HELLO`], `/big` → [`big_body`], `/endless` → [`Pattern`] until the client goes
/// away (announced as 1 TiB), anything else 404; one request per connection.
pub fn http_origin() -> Origin {
    serve(|conn| {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let mut conn = conn;
        if path == "/endless" {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 1u64 << 40);
            if conn.write_all(head.as_bytes()).is_ok() {
                send_pattern_forever(&mut conn);
            }
            return;
        }
        let (status, body) = match path {
            "/" => ("200 OK", HELLO.as_bytes().to_vec()),
            "/big" => ("200 OK", big_body()),
            _ => ("404 Not Found", b"no such page\n".to_vec()),
        };
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(&body));
        let _ = conn.shutdown(Shutdown::Write);
    })
}

/// Echoes every byte back as it arrives; half-closes when the client does.
pub fn echo_origin() -> Origin {
    serve(|conn| {
        let mut reader = conn.try_clone().expect("clone");
        let mut writer = conn;
        let _ = std::io::copy(&mut reader, &mut writer);
        let _ = writer.shutdown(Shutdown::Write);
    })
}

/// Sends [`Pattern`] from the moment a client connects until it goes away (ignores what the client sends).
pub fn endless_origin() -> Origin {
    serve(|mut conn| send_pattern_forever(&mut conn))
}

/// Reads everything until the client's EOF, then answers `got <n> bytes` (needs a working half-close).
pub fn count_after_eof_origin() -> Origin {
    serve(|mut conn| {
        let mut all = Vec::new();
        let _ = conn.read_to_end(&mut all);
        let _ = conn.write_all(format!("got {} bytes", all.len()).as_bytes());
        let _ = conn.shutdown(Shutdown::Write);
    })
}

/// Waits until the engine has written its `local` context (it prints its listen address first).
pub fn wait_for_context(engine: &Engine) {
    wait_until(Duration::from_secs(20), "the engine to write its context", || {
        std::fs::read_to_string(engine.config_path()).ok().filter(|c| c.contains("name: local")).map(|_| ())
    });
}

/// A running `rstream forward` with its output collected line by line.
pub struct Forward {
    child: ChildGuard,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Forward {
    /// Starts `rstream forward <target> <args…>` against `engine`'s config; `envs` are added to the environment.
    pub fn start(engine: &Engine, target: &str, args: &[&str], envs: &[(&str, &str)]) -> Forward {
        wait_for_context(engine);
        let mut cmd = Command::new(BIN);
        cmd.arg("forward").arg(target).args(args).env("RSTREAM_CONFIG", engine.config_path());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let text = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                text.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Forward { child: ChildGuard(child), stdout, stderr }
    }

    /// Process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// JSON status objects (`-o json`) printed so far.
    pub fn statuses(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("status").is_some())
            .collect()
    }

    /// Waits until `-o json` output reports `online` for the `nth` time (1-based); returns that status.
    pub fn wait_online(&self, nth: usize, deadline: Duration) -> serde_json::Value {
        let end = Instant::now() + deadline;
        loop {
            let online: Vec<_> = self.statuses().into_iter().filter(|s| s["status"] == "online").collect();
            if let Some(status) = online.get(nth - 1) {
                return status.clone();
            }
            if Instant::now() >= end {
                panic!(
                    "forward not online (#{nth}) after {deadline:?}\nstdout: {:#?}\nstderr:\n{}",
                    self.lines(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit; returns its code.
    pub fn wait_exit(&mut self, deadline: Duration) -> i32 {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.0.try_wait().expect("try_wait") {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "forward still running after {deadline:?}; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

/// A `rstream webtty server --rstream` child (the device side of a WebTTY tunnel) with its stderr collected.
pub struct WebttyAgent {
    child: ChildGuard,
    log: Arc<Mutex<String>>,
    online: mpsc::Receiver<()>,
}

impl WebttyAgent {
    /// Starts `rstream webtty server --rstream --retry-interval 200 <args…>` against `engine`'s config and waits
    /// until it is online.
    pub fn start(engine: &Engine, args: &[&str]) -> WebttyAgent {
        wait_for_context(engine);
        let mut cmd = Command::new(BIN);
        cmd.args(["webtty", "server", "--rstream", "--retry-interval", "200"])
            .args(args)
            .env("RSTREAM_CONFIG", engine.config_path());
        WebttyAgent::spawn(cmd)
    }

    /// Runs `cmd` — a `webtty server --rstream`, possibly wrapped (e.g. in `ip netns exec`) — and waits until it
    /// is online.
    pub fn spawn(mut cmd: Command) -> WebttyAgent {
        cmd.env_remove("RSTREAM_WEBTTY_AUTH_TOKEN").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn webtty server --rstream");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, online) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("webtty server online as rstrm://") {
                    let _ = tx.send(());
                }
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let agent = WebttyAgent { child: ChildGuard(child), log, online };
        agent.wait_online();
        agent
    }

    /// Waits (30 s at most) for the next "online" report.
    pub fn wait_online(&self) {
        if self.online.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!("webtty server never came online:\n{}", self.log());
        }
    }

    /// Everything the server printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// Sends `signal` (e.g. "STOP", "CONT") to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("kill");
    assert!(ok.success(), "kill -{signal} {pid} failed");
}

/// `GET https://<host>:<engine port><path>` through curl trusting the engine CA, with `<host>` resolved to
/// 127.0.0.1; returns (HTTP status, body). Status 0 means curl could not get a response.
pub fn https_get(engine: &Engine, host: &str, path: &str) -> (u16, Vec<u8>) {
    let dir = TempDir::new("curl");
    let body = dir.path().join("body");
    let port = engine.port();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(engine.ca_path())
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1"), "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", &format!("https://{host}:{port}{path}")])
        .output()
        .expect("run curl (is it installed?)");
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    (status, std::fs::read(&body).unwrap_or_default())
}

/// What a [`PatternClient`] sends on its stdin.
#[derive(Clone, Copy, Debug)]
pub enum Feed {
    /// Nothing; stdin stays open (the remote side does the talking).
    Silent,
    /// [`Pattern`] at about this many bytes per second, until the process stops reading (for an echo origin).
    Paced(u64),
}

/// A client process (`rstream dial`, curl…) whose stdout must be [`Pattern`]: a thread checks every byte as it
/// arrives, so a test can watch progress, kill things mid-transfer and still know the data was intact.
pub struct PatternClient {
    child: ChildGuard,
    received: Arc<AtomicU64>,
    intact: Arc<AtomicBool>,
    stderr: Arc<Mutex<String>>,
    _stdin: Option<std::process::ChildStdin>,
}

impl PatternClient {
    /// Spawns `cmd` with piped stdio and starts checking its stdout.
    pub fn spawn(mut cmd: Command, feed: Feed) -> PatternClient {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let (mut stdout, stderr_pipe) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let stdin = child.stdin.take().unwrap();
        let received = Arc::new(AtomicU64::new(0));
        let intact = Arc::new(AtomicBool::new(true));
        let (count, ok) = (Arc::clone(&received), Arc::clone(&intact));
        std::thread::spawn(move || {
            let (mut pattern, mut buf) = (Pattern::default(), vec![0; 64 * 1024]);
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if !pattern.matches(&buf[..n]) {
                    ok.store(false, Ordering::Relaxed);
                }
                count.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let text = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr_pipe).read_to_string(&mut s);
            text.lock().unwrap().push_str(&s);
        });
        let stdin = match feed {
            Feed::Silent => Some(stdin),
            Feed::Paced(rate) => {
                std::thread::spawn(move || feed_pattern(stdin, rate));
                None
            }
        };
        PatternClient { child: ChildGuard(child), received, intact, stderr, _stdin: stdin }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Whether every byte received so far was the pattern's.
    pub fn intact(&self) -> bool {
        self.intact.load(Ordering::Relaxed)
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit; `None` if it is still running after `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        self.child.wait_exit(deadline)
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

/// Writes [`Pattern`] to `stdin` at about `rate` bytes per second (in 16 KiB steps) until the reader goes away.
fn feed_pattern(mut stdin: std::process::ChildStdin, rate: u64) {
    const STEP: usize = 16 * 1024;
    let (mut pattern, mut chunk, started) = (Pattern::default(), vec![0; STEP], Instant::now());
    for sent in (0u64..).step_by(STEP) {
        // Pacing the load (not synchronising): stay about on schedule.
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        pattern.fill(&mut chunk);
        if stdin.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// An `rstream dial <target>` command against `engine`'s config.
pub fn dial_command(engine: &Engine, target: &str) -> Command {
    wait_for_context(engine);
    let mut cmd = Command::new(BIN);
    cmd.args(["dial", target]).env("RSTREAM_CONFIG", engine.config_path());
    cmd
}

/// A curl command for `https://<host>:<engine port><path>` trusting the engine CA, `<host>` resolved to
/// 127.0.0.1, the body on stdout, no overall time limit (the caller bounds it).
pub fn curl_command(engine: &Engine, host: &str, path: &str) -> Command {
    let port = engine.port();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--cacert"]).arg(engine.ca_path()).args([
        "--resolve",
        &format!("{host}:{port}:127.0.0.1"),
        &format!("https://{host}:{port}{path}"),
    ]);
    cmd
}

/// Runs `rstream dial <target>` with `input` on stdin against `engine`'s config (plus `envs`);
/// returns (exit code, stdout bytes, stderr).
pub fn dial(engine: &Engine, target: &str, input: &[u8], envs: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    wait_for_context(engine);
    dial_with_config(&engine.config_path(), target, input, envs)
}

/// [`dial`] with the engine's config file only (usable from another thread while the engine restarts).
pub fn dial_with_config(config: &Path, target: &str, input: &[u8], envs: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["dial", target]).env("RSTREAM_CONFIG", config);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("dial");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let guard = ChildGuard(child);
    let out = wait_output(guard, Duration::from_secs(30));
    let _ = writer.join();
    out
}

/// Waits (with a deadline) for a child to finish and collects its output.
fn wait_output(mut guard: ChildGuard, deadline: Duration) -> (i32, Vec<u8>, String) {
    let mut stdout = guard.0.stdout.take().unwrap();
    let mut stderr = guard.0.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let code = wait_until(deadline, "rstream dial to exit", || guard.0.try_wait().expect("try_wait"));
    (code.code().unwrap_or(-1), out.join().unwrap(), err.join().unwrap())
}
