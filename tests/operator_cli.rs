//! Operator commands against a live engine and real device agents on loopback: `tunnels list` and
//! `webtty list` filters, `webtty fs` through the engine (and its refusal on exec-only servers), `doctor` on a
//! healthy and on broken setups.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_until, ChildGuard, Engine, TempDir, BIN};

const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `rstream args…` against the engine's config with extra env; returns (code, stdout, stderr).
fn rstream(engine: &Engine, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RSTREAM_CONFIG", engine.config_path()).stdin(Stdio::null());
    for k in ["RSTREAM_CONTEXT", "RSTREAM_ENGINE", "RSTREAM_AUTHENTICATION_TOKEN", "RSTREAM_WEBTTY_AUTH_TOKEN"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run rstream");
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), s(&out.stdout), s(&out.stderr))
}

fn json(engine: &Engine, args: &[&str]) -> serde_json::Value {
    let (code, out, err) = rstream(engine, args, &[]);
    assert_eq!(code, 0, "{args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn spawn(engine: &Engine, args: &[&str]) -> ChildGuard {
    let log = engine.dir().join(format!("{}.log", args.join("_").replace(['/', ' '], "-")));
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(BIN)
        .args(args)
        .env("RSTREAM_CONFIG", engine.config_path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn rstream");
    ChildGuard(child)
}

fn names(list: &serde_json::Value, key: &str) -> Vec<String> {
    let mut v: Vec<String> = list.as_array().unwrap().iter().map(|t| t[key].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

/// Waits until `webtty list` shows every server in `wanted`.
fn wait_for_servers(engine: &Engine, wanted: &[&str]) {
    wait_until(DEADLINE, "webtty servers registered", || {
        let list = json(engine, &["webtty", "list", "-o", "json"]);
        let have = names(&list, "target");
        wanted.iter().all(|w| have.iter().any(|h| h == w)).then_some(())
    });
}

#[test]
fn filters_select_exactly_the_labelled_tunnels_and_servers() {
    let engine = Engine::start();
    let files = TempDir::new("fsroot");
    let _a = spawn(
        &engine,
        &[
            "webtty",
            "server",
            "--rstream",
            "--name",
            "codex-box",
            "--no-publish",
            "--label",
            "role=codex",
            "--fs-root",
            files.path().to_str().unwrap(),
        ],
    );
    let _b =
        spawn(&engine, &["webtty", "server", "--rstream", "--name", "build-box", "--no-publish", "--label", "role=ci"]);
    let _c = spawn(&engine, &["forward", "127.0.0.1:9", "--name", "api", "--no-publish", "--label", "role=codex"]);
    let _d = spawn(&engine, &["forward", "127.0.0.1:9", "--name", "other", "--no-publish"]);
    wait_for_servers(&engine, &["codex-box", "build-box"]);
    wait_until(DEADLINE, "forward tunnels listed", || {
        (names(&json(&engine, &["tunnels", "list", "-o", "json"]), "name").len() == 4).then_some(())
    });

    let tunnels = json(&engine, &["tunnels", "list", "--filter", "labels.role=codex", "-o", "json"]);
    assert_eq!(names(&tunnels, "name"), ["api"], "{tunnels:#}");
    let any_role = json(&engine, &["tunnels", "list", "--filter", "label.role=*", "-o", "json"]);
    assert_eq!(names(&any_role, "name"), ["api"]);
    let webtty =
        json(&engine, &["tunnels", "list", "--filter", "labels.application-protocol=rstream.webtty", "-o", "json"]);
    assert_eq!(names(&webtty, "name"), ["build-box", "codex-box"]);

    let servers =
        json(&engine, &["webtty", "list", "--filter", "labels.rstream.webtty.label.role=codex", "-o", "json"]);
    assert_eq!(names(&servers, "target"), ["codex-box"], "{servers:#}");
    let s = &servers[0];
    assert_eq!(s["rstream_url"], "rstrm://codex-box");
    assert_eq!(s["status"], "online");
    assert_eq!(s["capabilities"], serde_json::json!(["exec", "fs"]));
    assert_eq!(
        (s["exec_path"].as_str(), s["fs_path"].as_str(), s["fs_mode"].as_str()),
        (Some("/"), Some("/fs"), Some("read-write"))
    );
    assert_eq!(s["labels"], serde_json::json!({"role": "codex"}));
    assert!(
        !s["os_family"].as_str().unwrap_or("").is_empty() && !s["hostname"].as_str().unwrap_or("").is_empty(),
        "{s:#}"
    );

    let exec_only = json(&engine, &["webtty", "list", "--filter", "build", "-o", "json"]);
    assert_eq!(names(&exec_only, "target"), ["build-box"]);
    assert_eq!(exec_only[0]["capabilities"], serde_json::json!(["exec"]));

    let (code, _, err) = rstream(&engine, &["tunnels", "list", "--filter", "colour=red"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown filter key \"colour\""), "{err}");
    let (code, out, _) = rstream(&engine, &["tunnels", "list"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ID") && out.contains("codex-box") && out.contains("role=codex"), "{out}");
}

fn fs(engine: &Engine, url: &str, args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["webtty", "fs", "--url", url];
    full.extend_from_slice(args);
    rstream(engine, &full, &[])
}

fn ok(r: (i32, String, String)) -> String {
    assert_eq!(r.0, 0, "failed: {}", r.2);
    r.1
}

#[test]
fn fs_commands_round_trip_through_the_engine_and_exec_only_servers_are_refused() {
    let engine = Engine::start();
    let root = TempDir::new("fsroot");
    std::fs::write(root.path().join("README.md"), "# device\n").unwrap();
    let _fs = spawn(
        &engine,
        &[
            "webtty",
            "server",
            "--rstream",
            "--name",
            "files",
            "--no-publish",
            "--fs-root",
            root.path().to_str().unwrap(),
        ],
    );
    let _exec = spawn(&engine, &["webtty", "server", "--rstream", "--name", "shell-only", "--no-publish"]);
    wait_for_servers(&engine, &["files", "shell-only"]);

    let (code, _, err) = fs(&engine, "rstrm://shell-only", &["ls", "/"]);
    assert_eq!(code, 1);
    assert!(err.contains("\"shell-only\" is exec-only"), "{err}");

    let url = "rstrm://files";
    assert_eq!(ok(fs(&engine, url, &["read", "/README.md"])), "# device\n");
    ok(fs(&engine, url, &["mkdir", "/notes"]));
    let mut write = Command::new(BIN)
        .args(["webtty", "fs", "--url", url, "write", "/notes/a.txt"])
        .env("RSTREAM_CONFIG", engine.config_path())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(write.stdin.as_mut().unwrap(), b"from stdin\n").unwrap();
    drop(write.stdin.take());
    assert!(write.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(root.path().join("notes/a.txt")).unwrap(), "from stdin\n");

    let listing: serde_json::Value =
        serde_json::from_str(&ok(fs(&engine, url, &["ls", "/notes", "-o", "json"]))).unwrap();
    assert_eq!(
        listing,
        serde_json::json!([{"path": "/notes/a.txt", "kind": "file", "size": 11, "modified": listing[0]["modified"]}])
    );
    let stat: serde_json::Value =
        serde_json::from_str(&ok(fs(&engine, url, &["stat", "/notes", "-o", "json"]))).unwrap();
    assert_eq!(stat["kind"], "directory");

    let local = TempDir::new("local");
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let src = local.path().join("big.bin");
    std::fs::write(&src, &big).unwrap();
    ok(fs(&engine, url, &["upload", src.to_str().unwrap(), "/big.bin"]));
    assert!(std::fs::read(root.path().join("big.bin")).unwrap() == big, "uploaded bytes differ");
    let back = local.path().join("back.bin");
    ok(fs(&engine, url, &["download", "/big.bin", back.to_str().unwrap()]));
    assert!(std::fs::read(&back).unwrap() == big, "downloaded bytes differ");
    let leftovers: Vec<_> =
        std::fs::read_dir(local.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 2, "temp files left behind: {leftovers:?}");

    ok(fs(&engine, url, &["mv", "/notes/a.txt", "/notes/b.txt"]));
    assert!(root.path().join("notes/b.txt").exists() && !root.path().join("notes/a.txt").exists());
    ok(fs(&engine, url, &["rm", "/notes"]));
    assert!(!root.path().join("notes").exists());
    let (code, _, err) = fs(&engine, url, &["read", "/missing.txt"]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
}

fn doctor(engine: &Engine, env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    let (code, out, err) = rstream(engine, &["doctor", "-o", "json"], env);
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, report)
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name} check"))
}

#[test]
fn doctor_passes_on_a_healthy_setup_and_explains_broken_ones() {
    let mut engine = Engine::start();
    let (code, report) = doctor(&engine, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["fail"], 0);
    assert_eq!(report["contextName"], "local");
    for name in
        ["config", "context", "token", "engine_address", "dns", "tls", "engine_clients", "engine_tunnels", "clock"]
    {
        assert_eq!(check(&report, name)["status"], "pass", "{name}: {report:#}");
    }
    assert_eq!(check(&report, "tls")["details"]["caFile"], engine.ca_path().to_str().unwrap());
    assert!(check(&report, "tls")["details"]["caNotAfter"].as_str().is_some());
    // The engine's own certificate, as presented in the handshake, with a date still ahead.
    let cert_not_after = check(&report, "tls")["details"]["certNotAfter"].as_str().unwrap_or_default().to_owned();
    let now = rstream::http::date::format_rfc3339(std::time::SystemTime::now());
    assert!(cert_not_after.len() == now.len() && cert_not_after > now, "certNotAfter {cert_not_after:?} vs now {now}");
    assert!(check(&report, "token")["details"]["permissions"]
        .as_str()
        .unwrap()
        .contains("tunnels.resources.read-only"));
    assert!(report["generatedAt"].as_str().unwrap().ends_with('Z'));

    let expired = engine.token(&common::ALL, Some("1s"));
    let report = wait_until(DEADLINE, "the token to expire", || {
        let (code, report) = doctor(&engine, &[("RSTREAM_AUTHENTICATION_TOKEN", &expired)]);
        (code == 1 && check(&report, "token")["status"] == "fail").then_some(report)
    });
    assert!(check(&report, "token")["message"].as_str().unwrap().contains("expired"));
    assert!(check(&report, "token")["hint"].as_str().unwrap().contains("engine token"));
    assert_eq!(check(&report, "engine_tunnels")["status"], "fail", "the engine refuses the expired token: {report:#}");

    let device = engine.token(&common::DEVICE, None);
    let (code, report) = doctor(&engine, &[("RSTREAM_AUTHENTICATION_TOKEN", &device)]);
    assert_eq!(code, 1);
    assert!(
        check(&report, "engine_tunnels")["hint"].as_str().unwrap().contains("tunnels.resources.read-only"),
        "{report:#}"
    );

    engine.kill();
    let started = std::time::Instant::now();
    let (code, report) = doctor(&engine, &[]);
    assert_eq!(code, 1);
    assert!(started.elapsed() < Duration::from_secs(15), "doctor must not hang on a dead engine");
    let tls = check(&report, "tls");
    assert_eq!(tls["status"], "fail");
    assert!(tls["hint"].as_str().unwrap().contains("rstream engine serve"), "{tls:#}");
    for name in ["engine_clients", "engine_tunnels"] {
        let c = check(&report, name);
        assert_eq!(c["status"], "fail", "{name}: an unreachable engine is a failure: {c:#}");
        assert!(c["hint"].as_str().unwrap().starts_with("engine unreachable: start it"), "{name}: {c:#}");
    }
    assert_eq!(check(&report, "clock")["status"], "skip");
    assert_eq!(report["summary"]["fail"], 3, "tls, engine_clients, engine_tunnels: {report:#}");
}
