//! The device image built for another CPU, alone under qemu-user: it runs with the right architecture and
//! features, shares its config file with the host, and its local WebTTY server (`--listen`) serves a host
//! operator's exec sessions and WebDAV reads. Run by `make test-cross`; see `cross_support` for the setup.

#![cfg(feature = "operator")]

mod cross_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use cross_support::{host, json_output, success, CrossDevice, EmulatedProcess, Scratch, EMULATED_START};

/// The bearer token the emulated local server requires.
const TOKEN: &str = "cross-token";

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_image_reports_its_target_arch_and_only_the_device_role() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("version");
    let out = success(device.command(&scratch.join("config.yaml"), &["version", "-o", "json"]));
    let version: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let target = version["target"].as_str().unwrap_or_default();
    assert!(target.starts_with(&device.arch), "image does not report arch {}: {out}", device.arch);
    assert_eq!(version["features"], serde_json::json!(["device"]), "image is not a device-only build: {out}");
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_device_and_host_share_one_config_file() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("config");
    let config = scratch.join("etc").join("config.yaml");
    let token = scratch.join("token");
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

/// `rstream webtty server --listen 127.0.0.1:0` on the emulated CPU, with a bearer token.
struct LocalServer {
    _process: EmulatedProcess,
    addr: String,
    token_file: std::path::PathBuf,
}

impl LocalServer {
    fn start(device: &CrossDevice, scratch: &Scratch, extra: &[&str]) -> LocalServer {
        let token_file = scratch.join("webtty-token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let mut cmd = device.command(&scratch.join("config.yaml"), &["webtty", "server", "--listen", "127.0.0.1:0"]);
        cmd.arg("--auth-token-file").arg(&token_file).args(extra);
        let mut process = EmulatedProcess::spawn(cmd);
        let addr = process.wait_line("its listen address", |l| {
            Some(l.split("listening on ws://").nth(1)?.split('/').next()?.to_owned())
        });
        LocalServer { _process: process, addr, token_file }
    }

    /// `rstream webtty exec --url ws://… -o json -- argv` from the host operator.
    fn exec(&self, config: &Path, argv: &[&str]) -> serde_json::Value {
        let mut cmd = host(config, &["webtty", "exec", "--url", &format!("ws://{}", self.addr), "-o", "json"]);
        cmd.arg("--auth-token-file").arg(&self.token_file).arg("--").args(argv);
        json_output(cmd)
    }

    /// `GET <path>` with the bearer token; returns (status line, body).
    fn http_get(&self, path: &str) -> (String, String) {
        let mut conn = TcpStream::connect(&self.addr).expect("connect to the emulated server");
        conn.set_read_timeout(Some(EMULATED_START)).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        conn.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("read the HTTP response");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
    }
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_webtty_server_runs_host_operator_exec_with_output_and_exit_code() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("exec");
    let server = LocalServer::start(&device, &scratch, &[]);

    // qemu-user emulates the server only; the command it spawns is a native host program whose parent is qemu.
    let script = "printf out; printf err >&2; readlink /proc/$PPID/exe; exit 7";
    let result = server.exec(&scratch.join("config.yaml"), &["sh", "-c", script]);
    assert_eq!(result["exit_code"], 7, "{result}");
    assert_eq!(result["stderr"], "err", "{result}");
    let stdout = result["stdout"].as_str().unwrap_or_default();
    let emulator = device.emulator();
    assert!(
        stdout.starts_with("out") && stdout.trim_end().ends_with(emulator),
        "not served under {emulator}: {result}"
    );
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_webtty_server_serves_its_fs_root_and_confines_paths() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("fs");
    let root = scratch.join("files");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::write(root.join("logs").join("boot.txt"), "booted on an emulated cpu\n").unwrap();
    let server = LocalServer::start(&device, &scratch, &["--fs-root", root.to_str().unwrap(), "--fs-read-only"]);

    let (status, body) = server.http_get("/fs/logs/boot.txt");
    assert!(status.contains(" 200 "), "GET /fs/logs/boot.txt: {status}");
    assert_eq!(body, "booted on an emulated cpu\n");
    let (status, _) = server.http_get("/fs/../../etc/passwd");
    assert!(!status.contains(" 200 "), "a path outside the root was served: {status}");
}
