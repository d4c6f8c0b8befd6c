//! `rstream codex setup` and `rstream claude setup` against the real binary, on temp files and a stand-in
//! `claude` executable (Claude Code is an external tool; the stand-in records the arguments it gets).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rstream-setup-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rstream(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rstream"));
    cmd.args(args);
    for k in ["RSTREAM_CONFIG", "RSTREAM_CONTEXT", "RSTREAM_API_URL", "CODEX_HOME"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run rstream")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

const EXISTING: &str = "# Codex settings\nmodel = \"o4-mini\" # keep\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\"\nargs = []\n\n[profiles.fast]\nmodel = \"mini\"\n";

#[test]
fn codex_setup_installs_then_is_idempotent_and_preserves_the_rest_of_the_file() {
    let dir = scratch("codex");
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, EXISTING).unwrap();
    let rcfg = dir.join("rstream.yaml");
    std::fs::write(&rcfg, "version: 1\n").unwrap();
    let env = [("CODEX_HOME", dir.to_str().unwrap()), ("RSTREAM_CONFIG", rcfg.to_str().unwrap())];

    let out = rstream(&["codex", "setup", "-o", "json"], &env);
    let report = json(&out);
    assert_eq!(report["status"], "installed");
    assert_eq!(report["changed"], true);
    assert_eq!(report["config"], cfg.to_str().unwrap());
    let text = std::fs::read_to_string(&cfg).unwrap();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_rstream")).unwrap();
    let block = format!(
        "\n[mcp_servers.rstream]\ncommand = \"{}\"\nargs = [\"mcp\", \"serve\"]\nstartup_timeout_sec = 30\n\
         tool_timeout_sec = 300\nenv = {{ RSTREAM_CONFIG = \"{}\" }}\n",
        exe.display(),
        rcfg.display()
    );
    assert!(text.contains(&block), "block missing:\n{text}");
    assert_eq!(text.replacen(&block, "", 1), EXISTING, "other content changed");

    let again = rstream(&["codex", "setup", "-o", "json"], &env);
    assert_eq!(json(&again)["status"], "already_configured");
    assert_eq!(json(&again)["changed"], false);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), text);

    let human = rstream(&["codex", "setup"], &env);
    assert!(String::from_utf8_lossy(&human.stdout).contains("already configured"));
}

#[test]
fn codex_setup_refuses_a_customised_entry_until_forced() {
    let dir = scratch("conflict");
    let cfg = dir.join("config.toml");
    let env = [("CODEX_HOME", dir.to_str().unwrap())];
    assert!(rstream(&["codex", "setup"], &env).status.success());
    let custom = std::fs::read_to_string(&cfg).unwrap().replace("tool_timeout_sec = 300", "tool_timeout_sec = 900");
    std::fs::write(&cfg, &custom).unwrap();

    let out = rstream(&["codex", "setup", "-o", "json"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["status"], "conflict");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), custom, "conflict must not write");

    let forced = rstream(&["codex", "setup", "--force", "-o", "json"], &env);
    assert_eq!(json(&forced)["status"], "repaired");
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("tool_timeout_sec = 300"));
}

#[test]
fn codex_setup_repairs_a_missing_command_and_rejects_invalid_toml() {
    let dir = scratch("repair");
    let cfg = dir.join("config.toml");
    let env = [("CODEX_HOME", dir.to_str().unwrap())];
    let broken = "[mcp_servers.rstream]\ncommand = \"/nonexistent/rstream\"\nargs = [\"mcp\", \"serve\"]\n\
                  startup_timeout_sec = 30\ntool_timeout_sec = 300\n";
    std::fs::write(&cfg, broken).unwrap();
    let out = rstream(&["codex", "setup", "-o", "json"], &env);
    let report = json(&out);
    assert_eq!(report["status"], "repaired");
    assert_eq!(report["diagnostics"][0]["code"], "command_not_executable");

    let invalid = "model = \"x\"\n[mcp_servers\n";
    std::fs::write(&cfg, invalid).unwrap();
    let out = rstream(&["codex", "setup"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid TOML"));
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), invalid);
}

#[test]
fn codex_setup_print_writes_nothing() {
    let dir = scratch("print");
    let out = rstream(&["codex", "setup", "--print"], &[("CODEX_HOME", dir.to_str().unwrap())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("[mcp_servers.rstream]\ncommand = ") && text.contains("args = [\"mcp\", \"serve\"]"));
    assert!(!dir.join("config.toml").exists());
}

fn fake_claude(dir: &Path, exit_code: i32) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("claude");
    let log = dir.join("claude.log");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}\nexit {exit_code}\n", log.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn claude_setup_registers_through_the_claude_cli() {
    let dir = scratch("claude");
    let bin = fake_claude(&dir, 0);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let env = [("PATH", path.as_str()), ("RSTREAM_CONFIG", "/tmp/r.yaml")];
    let out = rstream(&["claude", "setup", "--force", "-o", "json"], &env);
    assert_eq!(json(&out), serde_json::json!({"name": "rstream", "scope": "user", "changed": true}));
    let log = std::fs::read_to_string(dir.join("claude.log")).unwrap();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_rstream")).unwrap();
    let expected = format!(
        "mcp remove rstream --scope user\nmcp add rstream --scope user --env RSTREAM_CONFIG=/tmp/r.yaml -- {} mcp serve\n",
        exe.display()
    );
    assert_eq!(log, expected);
}

#[test]
fn claude_setup_explains_a_missing_cli_and_prints_the_block() {
    let dir = scratch("noclaude");
    let out = rstream(&["claude", "setup"], &[("PATH", dir.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("claude executable not found on PATH"));
    let out = rstream(&["claude", "setup", "--scope", "project", "--print"], &[("PATH", dir.to_str().unwrap())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"mcpServers\"") && text.contains("claude mcp add rstream --scope project"), "{text}");
    let bad = rstream(&["claude", "setup", "--scope", "global"], &[]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid scope \"global\""));
}

#[test]
fn claude_setup_reports_a_failing_claude() {
    let dir = scratch("claudefail");
    let bin = fake_claude(&dir, 1);
    let out = rstream(&["claude", "setup"], &[("PATH", bin.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
}

#[test]
fn codex_setup_verify_starts_mcp_serve_and_finds_the_agent_tools() {
    let dir = scratch("verify");
    let rcfg = dir.join("rstream.yaml");
    std::fs::write(&rcfg, "version: 1\n").unwrap();
    let env = [("CODEX_HOME", dir.to_str().unwrap()), ("RSTREAM_CONFIG", rcfg.to_str().unwrap())];
    let out = rstream(&["codex", "setup", "--verify", "-o", "json"], &env);
    let report = json(&out);
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    let v = &report["verification"];
    assert_eq!(v["status"], "succeeded", "{report}");
    assert_eq!((v["server_name"].as_str(), v["protocol_version"].as_str()), (Some("rstream"), Some("2025-11-25")));
    assert_eq!(v["server_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["tool_count"].as_u64().unwrap() >= 4, "{report}");
}

#[test]
fn codex_setup_writes_the_tool_policy_into_args_and_verifies_the_policed_server() {
    let dir = scratch("codex-policy");
    let rcfg = dir.join("rstream.yaml");
    std::fs::write(&rcfg, "version: 1\n").unwrap();
    let env = [("CODEX_HOME", dir.to_str().unwrap()), ("RSTREAM_CONFIG", rcfg.to_str().unwrap())];
    let policy = ["--read-only", "--allow-servers", "labels.rstream.webtty.label.role=codex"];
    let out = rstream(&[&["codex", "setup", "--verify", "-o", "json"][..], &policy].concat(), &env);
    let report = json(&out);
    assert!(out.status.success(), "{report}");
    // exec is disabled by --read-only, so the probe does not require it; the rest of the essentials must be there.
    assert_eq!(
        report["verification"]["required_tools"],
        serde_json::json!(["rstream_runtime_status", "rstream_context_list", "rstream_webtty_list"])
    );
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let args =
        "args = [\"mcp\", \"serve\", \"--read-only\", \"--allow-servers\", \"labels.rstream.webtty.label.role=codex\"]";
    assert!(text.contains(args), "{text}");
    // The same policy again is already configured; dropping it is a change that needs --force.
    let again = rstream(&[&["codex", "setup", "-o", "json"][..], &policy].concat(), &env);
    assert_eq!(json(&again)["status"], "already_configured");
    let loosened = rstream(&["codex", "setup", "-o", "json"], &env);
    assert_eq!(json(&loosened)["status"], "conflict");
    assert!(std::fs::read_to_string(dir.join("config.toml")).unwrap().contains(args), "the policy was removed");
}

#[test]
fn setup_refuses_a_policy_that_names_no_tool_and_claude_gets_the_flags_after_mcp_serve() {
    let dir = scratch("claude-policy");
    let bin = fake_claude(&dir, 0);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = rstream(&["claude", "setup", "--tools", "rstream_webtty_lst"], &[("PATH", path.as_str())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"rstream_webtty_lst\" matches no tool"));
    let out = rstream(&["codex", "setup", "--deny-tools", "a b", "--print"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("claude.log").exists(), "a refused setup ran claude");
    let out = rstream(
        &["claude", "setup", "--tools", "rstream_webtty_*", "--deny-tools", "rstream_webtty_exec"],
        &[("PATH", path.as_str())],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(dir.join("claude.log")).unwrap();
    assert!(
        log.ends_with("mcp serve --tools rstream_webtty_* --deny-tools rstream_webtty_exec\n"),
        "claude was called with: {log}"
    );
}
