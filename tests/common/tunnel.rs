//! Tunnel-plane fixtures: local origin servers (HTTP, echo), `rstream forward` children with their output,
//! and `curl` against published tunnels. Origins are plain `std::net` servers on 127.0.0.1:0, one thread per
//! connection; they live as long as the test process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{wait_until, ChildGuard, Engine, TempDir, BIN};

/// Body served at `/` by [`http_origin`].
pub const HELLO: &str = "hello from the origin\n";
/// Size of the body served at `/big`.
pub const BIG_LEN: usize = 10 << 20;

/// The deterministic 10 MiB body served at `/big` (a xorshift stream, so misplaced chunks are caught).
pub fn big_body() -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..BIG_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
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

fn serve(handler: fn(TcpStream)) -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || handler(conn));
        }
    });
    Origin { port }
}

/// An HTTP/1.1 origin: `/` → [`HELLO`], `/big` → [`big_body`], anything else 404; one request per connection.
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
        let (status, body) = match path {
            "/" => ("200 OK", HELLO.as_bytes().to_vec()),
            "/big" => ("200 OK", big_body()),
            _ => ("404 Not Found", b"no such page\n".to_vec()),
        };
        let mut conn = conn;
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

/// Runs `rstream dial <target>` with `input` on stdin against `engine`'s config (plus `envs`);
/// returns (exit code, stdout bytes, stderr).
pub fn dial(engine: &Engine, target: &str, input: &[u8], envs: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    wait_for_context(engine);
    let mut cmd = Command::new(BIN);
    cmd.args(["dial", target]).env("RSTREAM_CONFIG", engine.config_path());
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
