//! The official MCP Python SDK (PyPI `mcp`, in a venv built by tests/mcp_sdk/venv.sh) drives the real
//! `rstream mcp serve` over stdio against a real engine and two devices this harness starts: every tool's result
//! validates against its outputSchema; a cancellation kills the remote `sleep 60` within 2 s; 9 calls run 8 at
//! once and 8+16+1 leave one "server is busy"; `--read-only` refuses exec and fs_write; `--allow-servers`
//! refuses a server outside its filter. The scenarios themselves are in tests/mcp_sdk/drive.py.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
mod mcp_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ChildGuard, Engine, TempDir};
use mcp_common::{sdk_python as python, WebttyTunnel};
use serde_json::json;

/// Longest a scenario may run (the SDK's own waits are shorter).
const SCENARIO_DEADLINE: Duration = Duration::from_secs(180);

/// An engine with two WebTTY servers — `sdk-codex` (exec + fs, role=codex, `--allow-detach` so remote expose can
/// start a forward through it) and `sdk-ops` (exec only, role=ops) — and a private MCP endpoint `sdk-mcp` (`mcp
/// publish --no-publish`), so the remote MCP tools have something to discover, list and call.
struct Fleet {
    engine: Engine,
    fs_root: TempDir,
    _codex: WebttyTunnel,
    _ops: WebttyTunnel,
    _mcp: ChildGuard,
}

impl Fleet {
    fn start() -> Fleet {
        let engine = Engine::start();
        let cfg = engine.config_path();
        let fs_root = TempDir::new("sdk-fsroot");
        let root = fs_root.path().to_str().unwrap();
        let codex = WebttyTunnel::start(
            &cfg,
            &["--name", "sdk-codex", "--no-publish", "--label", "role=codex", "--fs-root", root, "--allow-detach"],
        );
        let ops = WebttyTunnel::start(&cfg, &["--name", "sdk-ops", "--no-publish", "--label", "role=ops"]);
        let mcp = Command::new(env!("CARGO_BIN_EXE_rstream"))
            .args(["mcp", "publish", "--no-publish", "--name", "sdk-mcp", "-o", "json"])
            .env("RSTREAM_CONFIG", &cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mcp publish");
        Fleet { engine, fs_root, _codex: codex, _ops: ops, _mcp: ChildGuard(mcp) }
    }

    /// Runs `drive.py` on `scenario` and fails the test with its output unless it holds.
    fn run(&self, scenario: &str) {
        let scratch = TempDir::new(&format!("sdk-{scenario}"));
        let params = json!({
            "scenario": scenario,
            "rstream": env!("CARGO_BIN_EXE_rstream"),
            "config": self.engine.config_path(),
            "codex_url": "rstrm://sdk-codex",
            "ops_url": "rstrm://sdk-ops",
            "fs_root": self.fs_root.path(),
            "rstream_config": self.engine.config_path(),
            "scratch": scratch.path(),
        });
        let params_file = scratch.path().join("params.json");
        std::fs::write(&params_file, params.to_string()).unwrap();
        let log = scratch.path().join("drive.log");
        let child = Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_sdk/drive.py"))
            .arg(&params_file)
            .env_remove("RSTREAM_CONFIG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .expect("run drive.py");
        let mut child = ChildGuard(child);
        let status = child.wait_exit(SCENARIO_DEADLINE);
        let output = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let report = format!(
            "--- drive.py stdout\n{}--- drive.py stderr\n{}--- mcp serve stderr\n{}",
            output(&log),
            output(&log.with_extension("err")),
            output(&scratch.path().join("mcp-serve.stderr"))
        );
        match status {
            Some(s) if s.success() => eprintln!("{report}"),
            Some(s) => panic!("scenario {scenario} failed ({s}):\n{report}"),
            None => panic!("scenario {scenario} still running after {SCENARIO_DEADLINE:?}:\n{report}"),
        }
    }
}

#[test]
fn every_tool_result_validates_against_its_output_schema() {
    Fleet::start().run("schemas");
}

#[test]
fn a_cancelled_call_kills_the_remote_sleep_within_two_seconds() {
    Fleet::start().run("cancel");
}

#[test]
fn eight_calls_run_at_once_sixteen_wait_and_one_more_is_busy() {
    Fleet::start().run("concurrency");
}

#[test]
fn read_only_refuses_exec_and_fs_write() {
    Fleet::start().run("read_only");
}

#[test]
fn allow_servers_refuses_a_server_outside_the_filter() {
    Fleet::start().run("allow_servers");
}
