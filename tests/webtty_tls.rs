//! `rstream webtty server --listen … --tls-cert-file --tls-key-file`: exec over `wss://` and the WebDAV sidecar
//! over `https://` on one TLS port, trusted with `--tls-ca-file`, behind the same bearer token. A wrong CA, an IP
//! URL without a DNS name to verify, and plain HTTP to the TLS port all fail quickly with a clear message.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod webtty_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use webtty_support::*;

/// Longest any client command may take here (a hang is a failure, not a slow test).
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);

/// A CA (ECDSA P-256, rcgen's default: what embedded-tls verifies) and a `localhost` certificate it signed.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn issue(dir: &Path, tag: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, format!("{tag} CA"));
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    let pki = Pki {
        ca: dir.join(format!("{tag}-ca.pem")),
        cert: dir.join(format!("{tag}-cert.pem")),
        key: dir.join(format!("{tag}-key.pem")),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&pki.key, leaf_key.serialize_pem()).unwrap();
    pki
}

/// A TLS `--listen` server with a token and a WebDAV root, and the PKI it was started with.
struct TlsServer {
    server: LocalServer,
    pki: Pki,
    root: TempDir,
    certs: TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let certs = TempDir::new("webtty-tls-pki");
        let pki = issue(&certs.0, "device");
        let root = TempDir::new("webtty-tls-root");
        let server = LocalServer::start(&[
            "--tls-cert-file",
            pki.cert.to_str().unwrap(),
            "--tls-key-file",
            pki.key.to_str().unwrap(),
            "--fs-root",
            root.0.to_str().unwrap(),
        ]);
        TlsServer { server, pki, root, certs }
    }

    fn port(&self) -> &str {
        self.server.addr.rsplit(':').next().unwrap()
    }

    /// `scheme://localhost:PORT` (the name the certificate carries).
    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://localhost:{}", self.port())
    }

    /// `rstream webtty SUB --url URL --auth-token-file T [--tls-ca-file CA] args…`, with no config file around
    /// (so no context CA can stand in for the flag).
    fn cli(&self, sub: &str, url: &str, ca: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(["webtty", sub, "--url", url, "--auth-token-file"]).arg(&self.server.token_file);
        if let Some(ca) = ca {
            cmd.arg("--tls-ca-file").arg(ca);
        }
        cmd.args(args)
            .env("RSTREAM_CONFIG", self.certs.join("no-config.yaml"))
            .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
            .env_remove("RSTREAM_CONTEXT")
            .env_remove("RSTREAM_ENGINE")
            .env_remove("RSTREAM_AUTHENTICATION_TOKEN")
            .stdin(Stdio::null());
        cmd
    }
}

/// Runs `cmd` to completion within [`CLIENT_DEADLINE`] (killing it and failing otherwise), feeding `stdin`.
fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn rstream");
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    if poll(CLIENT_DEADLINE, || child.try_wait().unwrap()).is_none() {
        let _ = child.kill();
        panic!("client still running after {CLIENT_DEADLINE:?}: {cmd:?}");
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn exec_over_wss_returns_stdout_and_the_exit_code() {
    let s = TlsServer::start();
    let cmd = s.cli("exec", &format!("{}/", s.url("wss")), Some(&s.pki.ca), &["--", "sh", "-c", "echo hi; exit 3"]);
    let out = run(cmd, None);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["stdout"].as_str(), json["exit_code"].as_i64()), (Some("hi\n"), Some(3)), "{json}");
    assert_eq!(json["url"], format!("wss://localhost:{}/", s.port()));

    // An IP URL works once the name to verify is given.
    let ip_url = format!("wss://127.0.0.1:{}/", s.port());
    let named =
        s.cli("exec", &ip_url, Some(&s.pki.ca), &["--tls-server-name", "localhost", "-o", "text", "--", "true"]);
    let out = run(named, None);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

#[test]
fn fs_over_https_writes_reads_and_lists() {
    let s = TlsServer::start();
    let fs = |args: &[&str]| s.cli("fs", &s.url("https"), Some(&s.pki.ca), args);
    let out = run(fs(&["write", "/hello.txt"]), Some(b"hello over tls\n"));
    assert!(out.status.success(), "write: {}", stderr(&out));
    assert_eq!(std::fs::read_to_string(s.root.join("hello.txt")).unwrap(), "hello over tls\n");

    let out = run(fs(&["read", "/hello.txt"]), None);
    assert!(out.status.success(), "read: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello over tls\n");

    let out = run(fs(&["ls", "/", "-o", "json"]), None);
    assert!(out.status.success(), "ls: {}", stderr(&out));
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = entries.as_array().unwrap().iter().find(|e| e["path"] == "/hello.txt").expect("hello.txt listed");
    assert_eq!(entry["size"], 15, "{entries}");

    // wss:// names the same server for fs.
    let out = run(s.cli("fs", &s.url("wss"), Some(&s.pki.ca), &["stat", "/hello.txt"]), None);
    assert!(out.status.success(), "stat over wss://: {}", stderr(&out));
}

#[test]
fn a_certificate_from_another_ca_is_refused_clearly() {
    let s = TlsServer::start();
    let other = issue(&s.certs.0, "other");
    let out = run(s.cli("exec", &s.url("wss"), Some(&other.ca), &["--", "true"]), None);
    assert_eq!(out.status.code(), Some(255));
    let err = stderr(&out);
    assert!(err.contains("certificate is not signed by the trusted CA") && err.contains("--tls-ca-file"), "{err}");

    let out = run(s.cli("fs", &s.url("https"), Some(&other.ca), &["ls", "/"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("certificate is not signed by the trusted CA"), "{}", stderr(&out));
}

#[test]
fn tls_clients_need_a_ca_and_a_dns_name_before_dialing() {
    let s = TlsServer::start();
    let out = run(s.cli("fs", &s.url("https"), None, &["ls", "/"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pass --tls-ca-file FILE"), "{}", stderr(&out));

    let ip_url = format!("wss://127.0.0.1:{}", s.port());
    let out = run(s.cli("exec", &ip_url, Some(&s.pki.ca), &["--", "true"]), None);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("not IP addresses") && stderr(&out).contains("--tls-server-name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_bearer_token_is_still_required_over_tls() {
    let s = TlsServer::start();
    let mut cmd = Command::new(BIN);
    cmd.args(["webtty", "exec", "--url", &s.url("wss"), "--tls-ca-file"])
        .arg(&s.pki.ca)
        .args(["--", "true"])
        .env("RSTREAM_CONFIG", s.certs.join("no-config.yaml"))
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null());
    let out = run(cmd, None);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
}

#[test]
fn plain_http_to_the_tls_port_fails_fast_and_says_why() {
    let s = TlsServer::start();
    let out = run(s.cli("fs", &s.url("http"), None, &["ls", "/"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("this port serves TLS"), "fs over http://: {}", stderr(&out));

    let out = run(s.cli("exec", &s.url("ws"), None, &["--", "true"]), None);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("HTTP 400"), "exec over ws://: {}", stderr(&out));

    // The server is unharmed.
    let out = run(s.cli("exec", &s.url("wss"), Some(&s.pki.ca), &["-o", "text", "--", "echo", "ok"]), None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", stderr(&out));
}

#[test]
fn wss_to_a_plain_server_fails_fast() {
    let plain = LocalServer::start(&[]);
    let certs = TempDir::new("webtty-tls-plain");
    let pki = issue(&certs.0, "device");
    let port = plain.addr.rsplit(':').next().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["webtty", "exec", "--url", &format!("wss://localhost:{port}"), "--auth-token-file"])
        .arg(&plain.token_file)
        .arg("--tls-ca-file")
        .arg(&pki.ca)
        .args(["--", "true"])
        .env("RSTREAM_CONFIG", certs.join("no-config.yaml"))
        .stdin(Stdio::null());
    let out = run(cmd, None);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("TLS"), "{}", stderr(&out));
}

#[test]
fn tls_flags_are_checked_together_and_only_for_listen() {
    let server = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["webtty", "server", "--listen", "127.0.0.1:0", "--allow-unauthenticated"]).args(args);
        run(cmd, None)
    };
    let out = server(&["--tls-cert-file", "c.pem"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--tls-cert-file and --tls-key-file go together"), "{}", stderr(&out));

    let out = server(&["--tls-cert-file", "/nonexistent/c.pem", "--tls-key-file", "/nonexistent/k.pem"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--tls-cert-file \"/nonexistent/c.pem\""), "{}", stderr(&out));

    let mut cmd = Command::new(BIN);
    cmd.args(["webtty", "server", "--rstream", "--tls-cert-file", "c.pem", "--tls-key-file", "k.pem"]);
    let out = run(cmd, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("with --rstream the engine terminates TLS"), "{}", stderr(&out));
}
