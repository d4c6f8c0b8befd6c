//! What every command does with its stdout, from the real binary: a reader that went away (`| head -1`,
//! `| true`) ends the command quietly with 141 (128 + SIGPIPE, what a shell reports for coreutils in the same
//! place), a full disk (`> /dev/full`) is one clear error and exit 1 — never a panic or a backtrace. Plus
//! `rstream --version`, `-V` and `rstream version -o json`.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::tunnel::WebttyAgent;
use common::{Engine, TempDir, BIN};

/// Exit code of a command whose stdout reader went away.
const BROKEN_PIPE_EXIT: i32 = 141;

/// A pipe whose reading end is already closed: the first write gets EPIPE, deterministically.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer.into()
}

/// `/dev/full`: every write fails with ENOSPC.
fn dev_full() -> Stdio {
    std::fs::OpenOptions::new().write(true).open("/dev/full").expect("open /dev/full").into()
}

/// Runs `rstream args…` against `engine`'s config with `stdout`; returns (exit code, stderr).
fn run_into(engine: &Engine, args: &[&str], stdout: Stdio) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("RSTREAM_CONFIG", engine.config_path())
        .env_remove("RSTREAM_CONTEXT")
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run rstream");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The WebTTY server `pi`, with a filesystem holding `/a.txt`.
fn start_pi(engine: &Engine) -> (TempDir, WebttyAgent) {
    let root = TempDir::new("fsroot");
    std::fs::write(root.path().join("a.txt"), "a").unwrap();
    let pi = WebttyAgent::start(engine, &["--name", "pi", "--no-publish", "--fs-root", root.path().to_str().unwrap()]);
    (root, pi)
}

/// Every data command, with the servers it needs (`pi` has a filesystem).
fn data_commands() -> Vec<Vec<&'static str>> {
    let commands: &[&[&str]] = &[
        &["--help"],
        &["webtty", "exec", "--help"],
        &["version"],
        &["version", "-o", "json"],
        &["--version"],
        &["context", "list"],
        &["context", "show"],
        &["tunnels", "list"],
        &["tunnels", "list", "-o", "json"],
        &["webtty", "list"],
        &["webtty", "list", "-o", "json"],
        &["doctor"],
        &["doctor", "-o", "json"],
        &["webtty", "exec", "--url", "rstrm://pi", "--", "echo", "hi"],
        &["webtty", "exec", "--url", "rstrm://pi", "-o", "text", "--", "echo", "hi"],
        &["webtty", "fs", "--url", "rstrm://pi", "ls", "/"],
        &["webtty", "fs", "--url", "rstrm://pi", "ls", "/", "-o", "json"],
        &["webtty", "fs", "read", "--url", "rstrm://pi", "/a.txt"],
        &["webtty", "fs", "download", "--url", "rstrm://pi", "/a.txt", "-"],
    ];
    commands.iter().map(|c| c.to_vec()).collect()
}

#[test]
fn a_closed_stdout_ends_every_data_command_quietly() {
    let engine = Engine::start();
    let (_root, _pi) = start_pi(&engine);
    for args in data_commands() {
        let (code, stderr) = run_into(&engine, &args, closed_pipe());
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{args:?} panicked:\n{stderr}");
        assert_eq!(code, BROKEN_PIPE_EXIT, "{args:?} on a closed stdout; stderr:\n{stderr}");
        assert_eq!(stderr, "", "{args:?} must exit quietly on a closed stdout");
    }

    // `dial` copies what the remote side answers to stdout.
    let mut dial = Command::new(BIN)
        .args(["dial", "rstrm://pi"])
        .env("RSTREAM_CONFIG", engine.config_path())
        .stdin(Stdio::piped())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    dial.stdin.take().unwrap().write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let out = dial.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!((out.status.code(), stderr.as_ref()), (Some(BROKEN_PIPE_EXIT), ""), "dial on a closed stdout");
}

#[test]
fn a_full_stdout_is_a_clear_error_not_a_panic() {
    let engine = Engine::start();
    let (_root, _pi) = start_pi(&engine);
    for args in data_commands() {
        let (code, stderr) = run_into(&engine, &args, dev_full());
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
        assert_ne!(code, 0, "{args:?} into /dev/full must fail; stderr:\n{stderr}");
        assert!(
            stderr.contains("error: writing to stdout: No space left on device"),
            "{args:?} into /dev/full; stderr:\n{stderr}"
        );
    }
}

#[test]
fn version_flags_and_json_name_version_target_and_features() {
    let text = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let long = text(&["--version"]);
    assert!(long.starts_with(&format!("rstream {}", env!("CARGO_PKG_VERSION"))), "{long}");
    assert_eq!(text(&["-V"]), long);
    assert_eq!(text(&["version"]), long);

    let json: serde_json::Value = serde_json::from_str(&text(&["version", "-o", "json"])).unwrap();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    let target = json["target"].as_str().unwrap();
    assert!(target.starts_with(std::env::consts::ARCH) && target.contains(std::env::consts::OS), "{json}");
    let features: Vec<&str> = json["features"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert_eq!(features, ["device", "operator", "mcp", "engine"]);
    assert!(json.get("commit").is_none_or(|c| c.as_str().is_some_and(|c| !c.is_empty())), "{json}");

    let help = text(&["--help"]);
    assert!(help.contains("--version"), "{help}");
}
