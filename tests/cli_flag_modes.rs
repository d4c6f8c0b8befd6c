//! A flag that does nothing in the mode it is given in is refused, from the real binary: before anything is
//! started or dialed, with a message that names the flag and the mode it belongs to, and rstream's usage exit code
//! (1; 255 for `webtty exec` and `webtty client`, whose other codes are the remote command's). Without the
//! refusal each of these command lines would run — a server listening, an agent dialing — as if the flag had been
//! honoured.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ChildGuard, TempDir, BIN};

/// How long a refused command line may take; one still running by then accepted the flag.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(10);

/// The exit code of a refused command line.
const USAGE: i32 = 1;
/// The exit code of `webtty exec` and `webtty client` when rstream itself failed (arguments included).
const RSTREAM_FAILED: i32 = 255;

/// Runs `rstream args…` with nothing configured (an empty home, a config file that does not exist) and returns
/// its exit code and stderr; panics when it is still running after [`REFUSAL_DEADLINE`].
fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("HOME", &home).env("RSTREAM_CONFIG", dir.join("absent.yaml")).env("PATH", dir);
    for k in ["RSTREAM_CONTEXT", "RSTREAM_ENGINE", "RSTREAM_AUTHENTICATION_TOKEN", "RSTREAM_WEBTTY_AUTH_TOKEN"] {
        cmd.env_remove(k);
    }
    cmd.env_remove("CODEX_HOME").env_remove("XDG_CONFIG_HOME").env_remove("XDG_STATE_HOME");
    let stderr = dir.join("stderr");
    let file = std::fs::File::create(&stderr).unwrap();
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file).spawn().expect("spawn rstream");
    let mut child = ChildGuard(child);
    let status = child.wait_exit(REFUSAL_DEADLINE);
    let text = std::fs::read_to_string(&stderr).unwrap_or_default();
    let Some(status) = status else {
        child.kill();
        panic!("`rstream {}` was accepted and kept running; stderr:\n{text}", args.join(" "));
    };
    (status.code().unwrap_or(-1), text)
}

/// Asserts that `args` is refused with `code` and a message naming every one of `said`.
fn assert_refused(args: &[&str], code: i32, said: &[&str]) {
    let dir = TempDir::new("flag-modes");
    let (got, stderr) = run(dir.path(), args);
    let line = args.join(" ");
    assert_eq!(got, code, "`rstream {line}`: exit code; stderr:\n{stderr}");
    assert!(stderr.starts_with("error: "), "`rstream {line}`: {stderr}");
    for word in said {
        assert!(stderr.contains(word), "`rstream {line}`: the refusal does not say {word:?}:\n{stderr}");
    }
}

/// A loopback port nothing listens on (where a command that got past its flags would fail to connect).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const LOCAL_SERVER: [&str; 5] = ["webtty", "server", "--listen", "127.0.0.1:0", "--allow-unauthenticated"];

#[test]
fn a_local_webtty_server_refuses_the_tunnel_flags() {
    for (extra, flag) in [
        (&["--label", "role=codex"][..], "--label"),
        (&["--retry"], "--retry"),
        (&["--no-retry"], "--no-retry"),
        (&["--retry-interval", "100"], "--retry-interval"),
    ] {
        let args = [&LOCAL_SERVER[..], extra].concat();
        assert_refused(&args, USAGE, &[flag, "--rstream"]);
    }
    assert_refused(&["webtty", "server", "--label", "role=codex", "--allow-unauthenticated"], USAGE, &["--label"]);
}

#[test]
fn a_local_webtty_server_with_a_token_file_refuses_to_be_called_unauthenticated() {
    let dir = TempDir::new("flag-modes-token");
    let token = dir.path().join("token");
    std::fs::write(&token, "secret-token\n").unwrap();
    let args = [&LOCAL_SERVER[..], &["--auth-token-file", token.to_str().unwrap()]].concat();
    assert_refused(&args, USAGE, &["--allow-unauthenticated", "--auth-token-file"]);
}

#[test]
fn a_tunnel_webtty_server_refuses_the_local_listener_flags() {
    for (extra, flag) in [
        (&["--allowed-origin", "https://ok.example"][..], "--allowed-origin"),
        (&["--allow-unauthenticated"], "--allow-unauthenticated"),
    ] {
        let args = [&["webtty", "server", "--rstream", "--name", "pi"][..], extra].concat();
        assert_refused(&args, USAGE, &[flag, "--rstream"]);
    }
}

#[test]
fn a_retry_interval_without_retrying_is_refused() {
    let server = ["webtty", "server", "--rstream", "--name", "pi", "--no-retry", "--retry-interval", "100"];
    assert_refused(&server, USAGE, &["--retry-interval", "--no-retry"]);
    assert_refused(
        &["forward", "9", "--no-retry", "--retry-interval", "100"],
        USAGE,
        &["--retry-interval", "--no-retry"],
    );
}

#[test]
fn tls_flags_are_refused_for_urls_that_do_not_speak_tls_to_the_server() {
    let plain = format!("ws://127.0.0.1:{}", closed_port());
    for url in [plain.as_str(), "rstrm://pi", "pi"] {
        for (flag, value) in [
            ("--tls-ca-file", Some("ca.pem")),
            ("--tls-server-name", Some("pi.lan")),
            ("--tls-insecure-skip-verify", None),
        ] {
            for verb in ["exec", "client"] {
                let mut args = vec!["webtty", verb, "--url", url, flag];
                args.extend(value);
                args.extend(["--", "true"]);
                assert_refused(&args, RSTREAM_FAILED, &[flag, "wss://"]);
            }
        }
    }
    let http = format!("http://127.0.0.1:{}", closed_port());
    for url in [http.as_str(), "rstrm://pi"] {
        assert_refused(
            &["webtty", "fs", "ls", "--url", url, "--tls-ca-file", "ca.pem", "/"],
            USAGE,
            &["--tls-ca-file", "https://"],
        );
        assert_refused(
            &["webtty", "fs", "--url", url, "--tls-insecure-skip-verify", "ls"],
            USAGE,
            &["--tls-insecure-skip-verify"],
        );
    }
}

#[test]
fn a_ca_file_is_refused_next_to_skipping_verification() {
    let wss = format!("wss://localhost:{}", closed_port());
    for verb in ["exec", "client"] {
        let args =
            ["webtty", verb, "--url", &wss, "--tls-ca-file", "ca.pem", "--tls-insecure-skip-verify", "--", "true"];
        assert_refused(&args, RSTREAM_FAILED, &["--tls-ca-file", "--tls-insecure-skip-verify"]);
    }
    let https = format!("https://localhost:{}", closed_port());
    let args = ["webtty", "fs", "ls", "--url", &https, "--tls-ca-file", "ca.pem", "--tls-insecure-skip-verify", "/"];
    assert_refused(&args, USAGE, &["--tls-ca-file", "--tls-insecure-skip-verify"]);
}

#[test]
fn tls_flags_still_apply_to_tls_urls() {
    let dir = TempDir::new("flag-modes-tls");
    let wss = format!("wss://localhost:{}", closed_port());
    let (code, stderr) =
        run(dir.path(), &["webtty", "exec", "--url", &wss, "--tls-insecure-skip-verify", "--", "true"]);
    assert_eq!(code, RSTREAM_FAILED, "{stderr}");
    assert!(stderr.contains("connect") && !stderr.contains("applies"), "dialed, not refused: {stderr}");
    let https = format!("https://localhost:{}", closed_port());
    let (code, stderr) = run(dir.path(), &["webtty", "fs", "ls", "--url", &https, "--tls-insecure-skip-verify", "/"]);
    assert_eq!(code, USAGE, "{stderr}");
    assert!(stderr.contains("cannot reach") && !stderr.contains("applies"), "dialed, not refused: {stderr}");
}

#[test]
fn exec_refuses_an_output_cap_for_streamed_text() {
    let url = format!("ws://127.0.0.1:{}", closed_port());
    let args = ["webtty", "exec", "--url", &url, "-o", "text", "--max-output", "1000", "--", "true"];
    assert_refused(&args, RSTREAM_FAILED, &["--max-output", "-o json"]);
}

#[test]
fn setup_print_refuses_the_flags_of_editing() {
    for extra in [&["--force"][..], &["--config", "elsewhere.toml"], &["-o", "json"]] {
        let args = [&["codex", "setup", "--print"][..], extra].concat();
        assert_refused(&args, USAGE, &["--print", extra[0]]);
    }
    for extra in [&["--force"][..], &["-o", "json"]] {
        let args = [&["claude", "setup", "--print"][..], extra].concat();
        assert_refused(&args, USAGE, &["--print", extra[0]]);
    }
}

#[test]
fn version_flag_with_a_command_is_refused() {
    for flag in ["-V", "--version"] {
        assert_refused(&[flag, "webtty", "list"], USAGE, &["--version", "rstream version"]);
    }
}

#[test]
fn a_login_user_without_login_mode_is_refused() {
    let args = [&LOCAL_SERVER[..], &["--login-user", "root"]].concat();
    assert_refused(&args, USAGE, &["--login-user", "--execution-mode login"]);
    let args = [&LOCAL_SERVER[..], &["--execution-mode", "sudo"]].concat();
    assert_refused(&args, USAGE, &["\"sudo\"", "spawn or login"]);
}
