//! `webtty exec`, `webtty client` and `webtty list` as scripts and agents use them, from the real binary:
//! exit codes that tell a remote failure from rstream's own (255, like ssh) and from a missing or non-executable
//! command (127 / 126), one JSON object even when the command could not start, streamed text output that no cap
//! truncates, exec-only servers listed without a filesystem, and `webtty client` on a non-terminal stdin.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::tunnel::WebttyAgent;
use common::{ChildGuard, Engine, TempDir, BIN};

/// rstream's own failures (connect, auth, unknown server, refused session).
const RSTREAM_FAILED: i32 = 255;

/// `rstream args…` against the engine's config, with `stdin` fed and closed.
fn rstream(engine: &Engine, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RSTREAM_CONFIG", engine.config_path())
        .env_remove("RSTREAM_CONTEXT")
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rstream");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn exec(engine: &Engine, args: &[&str]) -> Output {
    let mut all = vec!["webtty", "exec"];
    all.extend(args);
    rstream(engine, &all, &[], b"")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let value = values.next().unwrap_or_else(|| panic!("no JSON on stdout; stderr: {}", stderr(out))).unwrap();
    assert!(values.next().is_none(), "more than one JSON value on stdout: {text}");
    value
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn exit_codes_tell_remote_status_from_rstream_failures_and_missing_commands() {
    let engine = Engine::start();
    let _pi = WebttyAgent::start(&engine, &["--name", "pi", "--no-publish"]);
    let dir = TempDir::new("exec-codes");
    let not_executable = dir.path().join("script.sh");
    std::fs::write(&not_executable, "#!/bin/sh\necho never\n").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let not_executable = not_executable.to_str().unwrap();

    let out = exec(&engine, &["--url", "rstrm://pi", "--", "sh", "-c", "exit 1"]);
    assert_eq!(out.status.code(), Some(1), "the remote status passes through: {}", stderr(&out));
    let out = exec(&engine, &["--url", "rstrm://pi", "-o", "text", "--", "sh", "-c", "exit 200"]);
    assert_eq!(out.status.code(), Some(200), "{}", stderr(&out));

    let out = exec(&engine, &["--url", "rstrm://nobody", "--", "true"]);
    assert_eq!(out.status.code(), Some(RSTREAM_FAILED), "unknown server: {}", stderr(&out));
    assert!(stderr(&out).contains("nobody"), "{}", stderr(&out));

    let down = format!("127.0.0.1:{}", closed_port());
    let out =
        rstream(&engine, &["webtty", "exec", "--url", "rstrm://pi", "--", "true"], &[("RSTREAM_ENGINE", &down)], b"");
    assert_eq!(out.status.code(), Some(RSTREAM_FAILED), "engine down: {}", stderr(&out));
    let out = exec(&engine, &["--url", &format!("ws://{down}"), "--", "true"]);
    assert_eq!(out.status.code(), Some(RSTREAM_FAILED), "direct server down: {}", stderr(&out));
    let out = rstream(
        &engine,
        &["webtty", "exec", "--url", "rstrm://pi", "--", "true"],
        &[("RSTREAM_AUTHENTICATION_TOKEN", "not-a-jwt")],
        b"",
    );
    assert_eq!(out.status.code(), Some(RSTREAM_FAILED), "bad token: {}", stderr(&out));

    let out = exec(&engine, &["--url", "rstrm://pi", "-o", "text", "--", "no-such-command-xyz"]);
    assert_eq!(out.status.code(), Some(127), "command not found: {}", stderr(&out));
    assert!(stderr(&out).contains("no-such-command-xyz"), "{}", stderr(&out));
    let out = exec(&engine, &["--url", "rstrm://pi", "-o", "text", "--", not_executable]);
    assert_eq!(out.status.code(), Some(126), "not executable: {}", stderr(&out));

    // JSON mode: still exactly one JSON object on stdout, with the error and the code.
    let out = exec(&engine, &["--url", "rstrm://pi", "--", "no-such-command-xyz"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let result = json(&out);
    assert_eq!(result["exit_code"], 127, "{result}");
    assert!(result["error"].as_str().is_some_and(|e| e.contains("no-such-command-xyz")), "{result}");
    assert_eq!(result["command"], serde_json::json!(["no-such-command-xyz"]));
    let out = exec(&engine, &["--url", "rstrm://nobody", "--", "true"]);
    assert_eq!(out.status.code(), Some(RSTREAM_FAILED));
    let result = json(&out);
    assert_eq!(result["exit_code"], RSTREAM_FAILED, "{result}");
    assert!(result["error"].as_str().is_some_and(|e| e.contains("nobody")), "{result}");

    let help = rstream(&engine, &["webtty", "exec", "--help"], &[], b"");
    let help = String::from_utf8_lossy(&help.stdout);
    for code in ["124", "126", "127", "255"] {
        assert!(help.contains(code), "exit code {code} is not documented in `webtty exec --help`:\n{help}");
    }
}

#[test]
fn output_beyond_the_cap_is_reported_in_json_and_streamed_whole_as_text() {
    let engine = Engine::start();
    let _pi = WebttyAgent::start(&engine, &["--name", "pi", "--no-publish"]);
    let out = exec(&engine, &["--url", "rstrm://pi", "--max-output", "1000", "--", "head", "-c", "5000", "/dev/zero"]);
    let result = json(&out);
    assert_eq!(result["truncated"], true, "{result}");
    assert_eq!(result["stdout"].as_str().map(str::len), Some(1000), "{result}");
    assert_ne!(out.status.code(), Some(0), "truncated output must not look like a clean success");

    // -o text has no cap (--max-output is refused with it): the same output streams whole.
    let out = exec(&engine, &["--url", "rstrm://pi", "-o", "text", "--", "head", "-c", "5000", "/dev/zero"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 5000, "text output streams whole, no cap applies");
}

#[test]
fn exec_only_servers_are_listed_without_a_filesystem() {
    let engine = Engine::start();
    let root = TempDir::new("fsroot");
    let _shell = WebttyAgent::start(&engine, &["--name", "shell", "--no-publish"]);
    let _files =
        WebttyAgent::start(&engine, &["--name", "files", "--no-publish", "--fs-root", root.path().to_str().unwrap()]);
    let out = rstream(&engine, &["webtty", "list", "-o", "json"], &[], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let list = json(&out);
    let server = |name: &str| list.as_array().unwrap().iter().find(|s| s["target"] == name).unwrap().clone();
    let shell = server("shell");
    assert_eq!(shell["capabilities"], serde_json::json!(["exec"]));
    for key in ["fs_path", "fs_mode", "fs_backend"] {
        assert!(shell.get(key).is_none_or(|v| v.is_null()), "exec-only server described with {key}: {shell}");
    }
    let files = server("files");
    assert_eq!((files["fs_path"].as_str(), files["fs_mode"].as_str()), (Some("/fs"), Some("read-write")));
}

#[test]
fn client_on_a_non_terminal_stdin_runs_without_a_pty_and_ends_at_eof() {
    let engine = Engine::start();
    let _pi = WebttyAgent::start(&engine, &["--name", "pi", "--no-publish"]);
    let mut child = Command::new(BIN)
        .args(["webtty", "client", "--url", "rstrm://pi"])
        .env("RSTREAM_CONFIG", engine.config_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"echo from-the-pipe-$((6 * 7))\nexit 3\n").unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = ChildGuard(child);
    let status = child.wait_exit(Duration::from_secs(20)).expect("webtty client with piped stdin hangs");
    let out = std::io::read_to_string(stdout).unwrap();
    let err = std::io::read_to_string(stderr).unwrap();
    assert_eq!(status.code(), Some(3), "stdout: {out:?}; stderr: {err}");
    assert!(out.contains("from-the-pipe-42"), "{out:?}");
    assert!(!out.contains('\x1b'), "terminal escapes leaked into a pipe: {out:?}");
    assert!(err.contains("stdin is not a terminal"), "{err}");

    let mut child = ChildGuard(
        Command::new(BIN)
            .args(["webtty", "client", "--url", "rstrm://pi"])
            .env("RSTREAM_CONFIG", engine.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let status = child.wait_exit(Duration::from_secs(20)).expect("EOF on stdin must end the session");
    assert_eq!(status.code(), Some(0));
}
