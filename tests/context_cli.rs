//! `rstream context …` against the real binary: contexts land in `$RSTREAM_CONFIG` atomically with mode 0600,
//! tokens are never printed, and a corrupt config is reported (path and line) and left untouched.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rstream-ctx-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rstream(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rstream"))
        .args(args)
        .env("RSTREAM_CONFIG", config)
        .env_remove("RSTREAM_CONTEXT")
        .env_remove("RSTREAM_ENGINE")
        .env_remove("RSTREAM_AUTHENTICATION_TOKEN")
        .output()
        .expect("run rstream")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn create_list_use_show_delete_round_trip_without_leaking_the_token() {
    let dir = scratch("round");
    let config = dir.join("nested").join("config.yaml");
    let token = dir.join("token");
    std::fs::write(&token, "secret-token-value\n").unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();

    let t = token.to_str().unwrap();
    stdout(&rstream(&config, &["context", "create", "lab", "--engine", "relay.example:443", "--token-file", t]));
    let ca_arg = ca.to_str().unwrap();
    let args =
        ["context", "create", "home", "--engine", "127.0.0.1:8443", "--engine-tls-ca-file", ca_arg, "--token-file", t];
    stdout(&rstream(&config, &args));
    assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&config).unwrap().contains("kind: inline"));

    let list = stdout(&rstream(&config, &["context", "list", "-o", "json"]));
    assert!(list.starts_with('[') && list.contains(r#""name":"lab","default":true"#), "{list}");
    assert!(list.contains(r#""name":"home","default":false,"engine":"127.0.0.1:8443""#), "{list}");
    assert!(!list.contains("secret-token-value"));

    stdout(&rstream(&config, &["context", "use", "home"]));
    let show = stdout(&rstream(&config, &["context", "show", "-o", "json"]));
    assert!(show.contains(r#""name":"home","default":true"#) && show.contains(r#""token":true"#), "{show}");
    assert!(!show.contains("secret-token-value"), "token printed: {show}");
    let text = stdout(&rstream(&config, &["--context", "lab", "context", "show"]));
    assert!(text.contains("relay.example:443") && !text.contains("secret-token-value"), "{text}");

    stdout(&rstream(&config, &["context", "delete", "home"]));
    let missing = rstream(&config, &["context", "use", "home"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("\"home\" not found"));
}

#[test]
fn corrupt_config_is_reported_with_path_and_line_and_never_overwritten() {
    let dir = scratch("corrupt");
    let config = dir.join("config.yaml");
    let broken = "version: 1\ncontexts:\n  - name: a\n    engine: [oops\n";
    std::fs::write(&config, broken).unwrap();
    for args in [&["context", "list"][..], &["context", "create", "b", "--engine", "h:1"], &["context", "show"]] {
        let out = rstream(&config, args);
        assert_ne!(out.status.code(), Some(0), "{args:?} succeeded on a corrupt config");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(config.to_str().unwrap()) && err.contains("line"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), broken);
}

#[test]
fn missing_context_and_environment_only_engine() {
    let dir = scratch("env");
    let config = dir.join("config.yaml");
    let out = rstream(&config, &["context", "show"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no context selected"));
    let out = Command::new(env!("CARGO_BIN_EXE_rstream"))
        .args(["context", "show", "-o", "json"])
        .env("RSTREAM_CONFIG", &config)
        .env("RSTREAM_ENGINE", "10.1.2.3:9443")
        .env("RSTREAM_AUTHENTICATION_TOKEN", "envtok")
        .env_remove("RSTREAM_CONTEXT")
        .output()
        .unwrap();
    let json = stdout(&out);
    assert!(
        json.contains(r#""name":null"#) && json.contains("10.1.2.3:9443") && json.contains(r#""token":true"#),
        "{json}"
    );
    assert!(!json.contains("envtok"));
}
