//! The device image built for another CPU, run under qemu-user next to host-built peers on loopback.
//!
//! `make test-cross` (cross/test-cross.sh) builds the static device image for each architecture and runs these
//! tests with:
//! - `RSTREAM_CROSS_BIN`: the image (e.g. built for `aarch64-unknown-linux-musl`, `--features device`);
//! - `RSTREAM_CROSS_RUNNER`: how to start it, e.g. `qemu-aarch64-static` or `qemu-arm-static -cpu cortex-a7`
//!   (binfmt_misc is not registered on the build machines, so qemu is always named explicitly);
//! - `RSTREAM_CROSS_ARCH`: the `std::env::consts::ARCH` the image was built for (`aarch64`, `arm`).
//!
//! The host binary under test (`CARGO_BIN_EXE_rstream`, all features) plays the engine and the operator. Plain
//! `cargo test` has no image, so the tests are ignored there. Under qemu-user only the agent itself is emulated:
//! programs it spawns run natively on the host.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long an emulated server may take to report its address (qemu start-up on a loaded 2-core machine).
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The cross-built device image and the emulator that runs it.
struct CrossDevice {
    bin: PathBuf,
    runner: Vec<String>,
    arch: String,
}

impl CrossDevice {
    /// Reads the image description from the environment `make test-cross` sets.
    fn from_env() -> CrossDevice {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run `make test-cross`"));
        let bin = PathBuf::from(var("RSTREAM_CROSS_BIN"));
        assert!(bin.is_file(), "RSTREAM_CROSS_BIN does not name a file: {}", bin.display());
        let runner: Vec<String> = var("RSTREAM_CROSS_RUNNER").split_whitespace().map(str::to_owned).collect();
        assert!(!runner.is_empty(), "RSTREAM_CROSS_RUNNER is empty");
        CrossDevice { bin, runner, arch: var("RSTREAM_CROSS_ARCH") }
    }

    /// `rstream <args>` on the emulated CPU, with `RSTREAM_CONFIG=config`.
    fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.runner[0]);
        cmd.args(&self.runner[1..]).arg(&self.bin).args(args);
        isolate(&mut cmd, config);
        cmd
    }
}

/// `rstream <args>` built for this host, with `RSTREAM_CONFIG=config`.
fn host(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rstream"));
    cmd.args(args);
    isolate(&mut cmd, config);
    cmd
}

fn isolate(cmd: &mut Command, config: &Path) {
    cmd.env("RSTREAM_CONFIG", config)
        .env_remove("RSTREAM_CONTEXT")
        .env_remove("RSTREAM_ENGINE")
        .env_remove("RSTREAM_AUTHENTICATION_TOKEN");
}

/// Runs `cmd` and returns its stdout, failing the test with both streams if it did not succeed.
fn success(mut cmd: Command) -> String {
    let out: Output = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}\n{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("rstream-cross-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_image_reports_its_target_arch_and_only_the_device_role() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("version");
    let out = success(device.command(&scratch.0.join("config.yaml"), &["version"]));
    assert!(out.contains(&format!("({})", device.arch)), "image does not report arch {}: {out}", device.arch);
    assert!(out.trim_end().ends_with("features: device"), "image is not a device-only build: {out}");
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_device_and_host_share_one_config_file() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("config");
    let config = scratch.0.join("etc").join("config.yaml");
    let token = scratch.0.join("token");
    std::fs::write(&token, "device-token-value\n").unwrap();
    let t = token.to_str().unwrap();

    // Written on the host, read and extended on the emulated device, read back on the host.
    success(host(&config, &["context", "create", "lab", "--engine", "127.0.0.1:8443", "--token-file", t]));
    let listed = success(device.command(&config, &["context", "list", "-o", "json"]));
    assert!(listed.contains(r#""name":"lab","default":true,"engine":"127.0.0.1:8443""#), "{listed}");
    assert!(!listed.contains("device-token-value"), "the token leaked: {listed}");

    let args = ["context", "create", "pi", "--engine", "relay.example:443", "--token-file", t, "--default"];
    success(device.command(&config, &args));
    let shown = success(host(&config, &["context", "show", "-o", "json"]));
    assert!(shown.contains(r#""name":"pi","default":true,"engine":"relay.example:443""#), "{shown}");

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the emulated device wrote the config with mode {mode:o}");
}

/// `rstream webtty server --listen 127.0.0.1:0` running on the emulated CPU; killed on drop.
struct EmulatedServer {
    child: Child,
    addr: String,
    token_file: PathBuf,
}

impl EmulatedServer {
    /// Starts the image's WebTTY server with a bearer token and `extra` flags; waits for its address.
    fn start(device: &CrossDevice, dir: &Path, extra: &[&str]) -> EmulatedServer {
        let token_file = dir.join("webtty-token");
        std::fs::write(&token_file, "cross-token\n").unwrap();
        let mut cmd = device.command(&dir.join("config.yaml"), &["webtty", "server", "--listen", "127.0.0.1:0"]);
        cmd.arg("--auth-token-file").arg(&token_file).args(extra);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_DEADLINE;
        let mut seen = String::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("emulated server gave no address: {seen}"));
            if let Some(rest) = line.split("listening on ws://").nth(1) {
                break rest.split('/').next().unwrap().to_owned();
            }
            seen.push_str(&line);
            seen.push('\n');
        };
        EmulatedServer { child, addr, token_file }
    }

    /// `rstream webtty exec --url ws://… -o json -- argv` from the host operator; returns the parsed result.
    fn exec(&self, config: &Path, argv: &[&str]) -> serde_json::Value {
        let mut cmd = host(config, &["webtty", "exec", "--url", &format!("ws://{}", self.addr), "-o", "json"]);
        cmd.arg("--auth-token-file").arg(&self.token_file).arg("--").args(argv);
        cmd.env_remove("RSTREAM_WEBTTY_AUTH_TOKEN").stdin(Stdio::null());
        let out = cmd.output().expect("run webtty exec");
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("bad exec json ({e}): {text:?}; stderr {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// `GET <path>` on the server's HTTP port with the bearer token; returns (status line, body).
    fn http_get(&self, path: &str) -> (String, String) {
        let mut conn = TcpStream::connect(&self.addr).expect("connect to the emulated server");
        conn.set_read_timeout(Some(START_DEADLINE)).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer cross-token\r\nConnection: close\r\n\r\n",
            self.addr
        );
        conn.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("read the HTTP response");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
    }
}

impl Drop for EmulatedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_webtty_server_runs_host_operator_exec_with_output_and_exit_code() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("exec");
    let server = EmulatedServer::start(&device, &scratch.0, &[]);
    let config = scratch.0.join("config.yaml");

    // qemu-user emulates the server only; the command it spawns is a native host program whose parent is qemu.
    let script = "printf out; printf err >&2; readlink /proc/$PPID/exe; exit 7";
    let result = server.exec(&config, &["sh", "-c", script]);
    assert_eq!(result["exit_code"], 7, "{result}");
    assert_eq!(result["stderr"], "err", "{result}");
    let stdout = result["stdout"].as_str().unwrap_or_default();
    let emulator = Path::new(&device.runner[0]).file_name().unwrap().to_str().unwrap();
    assert!(stdout.starts_with("out") && stdout.trim_end().ends_with(emulator), "not served under {emulator}: {result}");
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_webtty_server_serves_its_fs_root_and_confines_paths() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("fs");
    let root = scratch.0.join("files");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::write(root.join("logs").join("boot.txt"), "booted on an emulated cpu\n").unwrap();
    let server = EmulatedServer::start(&device, &scratch.0, &["--fs-root", root.to_str().unwrap(), "--fs-read-only"]);

    let (status, body) = server.http_get("/fs/logs/boot.txt");
    assert!(status.contains(" 200 "), "GET /fs/logs/boot.txt: {status}");
    assert_eq!(body, "booted on an emulated cpu\n");
    let (status, _) = server.http_get("/fs/../../etc/passwd");
    assert!(!status.contains(" 200 "), "a path outside the root was served: {status}");
}
