//! Shared by `tests/mcp_*.rs`: start the real `rstream mcp serve` and talk to it with rmcp's client over the
//! child's stdio, as Codex or Claude Code would.

#![allow(dead_code)]

pub mod raw;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, Implementation, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

/// Deadline for any single MCP request in tests.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh scratch directory for one test.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rstream-mcp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `rstream mcp serve` with an initialized rmcp client session.
pub struct Mcp {
    /// The client session.
    pub client: RunningService<RoleClient, ClientConfig>,
    /// The server process (killed on drop).
    pub child: tokio::process::Child,
    /// Where the server's stderr goes.
    pub stderr_log: PathBuf,
}

impl Mcp {
    /// Starts the server with `RSTREAM_CONFIG=config` plus `env`, offering `version` (rmcp's default if None).
    pub async fn start(config: &Path, env: &[(&str, &str)], version: Option<ProtocolVersion>) -> Mcp {
        Mcp::start_with(config, &[], env, version).await
    }

    /// [`Mcp::start`] with extra `mcp serve` arguments (the tool policy flags).
    pub async fn start_with(
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        version: Option<ProtocolVersion>,
    ) -> Mcp {
        let stderr_log = config.with_extension("mcp-stderr.log");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rstream"));
        cmd.args(["mcp", "serve"]).args(args);
        for k in
            ["RSTREAM_CONFIG", "RSTREAM_CONTEXT", "RSTREAM_ENGINE", "RSTREAM_AUTHENTICATION_TOKEN", "RSTREAM_API_URL"]
        {
            cmd.env_remove(k);
        }
        cmd.env("RSTREAM_CONFIG", config).envs(env.iter().copied());
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        cmd.stderr(std::fs::File::create(&stderr_log).unwrap()).kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn rstream mcp serve");
        let transport = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("rstream-tests", "1");
        if let Some(v) = version {
            info.protocol_version = v;
        }
        let client = tokio::time::timeout(CALL_TIMEOUT, info.serve(transport))
            .await
            .expect("initialize within deadline")
            .expect("initialize");
        Mcp { client, child, stderr_log }
    }

    /// Calls `tool` with `arguments` (a JSON object).
    pub async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(map) = arguments {
            params = params.with_arguments(map);
        }
        tokio::time::timeout(CALL_TIMEOUT, self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{tool} did not answer within {CALL_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
    }

    /// Calls `tool` and insists on a successful result; returns its structured content.
    pub async fn ok(&self, tool: &str, arguments: Value) -> Value {
        let r = self.call(tool, arguments).await;
        assert_eq!(r.is_error, Some(false), "{tool} failed: {}", text(&r));
        r.structured_content.clone().unwrap_or(Value::Null)
    }

    /// Calls `tool` and insists on an error result; returns its text.
    pub async fn err(&self, tool: &str, arguments: Value) -> String {
        let r = self.call(tool, arguments).await;
        assert_eq!(r.is_error, Some(true), "{tool} should have failed: {}", text(&r));
        text(&r)
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

/// All text content of a result, joined.
pub fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.as_str()).collect::<Vec<_>>().join("\n")
}

/// The whole result as JSON text (what went over the wire).
pub fn wire(r: &CallToolResult) -> String {
    serde_json::to_string(r).unwrap()
}

/// A `rstream webtty server --rstream` registered with the engine of `config` (killed on drop).
pub struct WebttyTunnel {
    child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl WebttyTunnel {
    /// Starts `webtty server --rstream <args>` and waits until it reports itself online.
    pub fn start(config: &Path, args: &[&str]) -> WebttyTunnel {
        use std::io::BufRead;
        wait_for_context(config);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rstream"))
            .args(["webtty", "server", "--rstream", "--retry-interval", "200"])
            .args(args)
            .env("RSTREAM_CONFIG", config)
            .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn webtty server --rstream");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, online) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("webtty server online as rstrm://") {
                    let _ = tx.send(());
                }
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let server = WebttyTunnel { child, log };
        if online.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!("webtty server {args:?} never came online:\n{}", server.log());
        }
        server
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for WebttyTunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the engine has written its `local` context into `config`.
pub fn wait_for_context(config: &Path) {
    wait_for(Duration::from_secs(20), "the engine's context in the config file", || {
        std::fs::read_to_string(config).ok().filter(|c| c.contains("name: local")).map(drop)
    });
}

/// Polls `probe` every 20 ms until it returns `Some`, or panics after `limit` naming `what`.
pub fn wait_for<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(std::time::Instant::now() < end, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The python of the venv holding the official MCP Python SDK (tests/mcp_sdk/venv.sh), built once per test
/// binary (concurrent tests wait for the first).
pub fn sdk_python() -> &'static Path {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_sdk/venv.sh");
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-sdk-venv");
        let out = std::process::Command::new(&script).env("RSTREAM_MCP_SDK_VENV", &venv).output().expect("run venv.sh");
        assert!(
            out.status.success(),
            "cannot build the MCP SDK venv (needs python3 -m venv and PyPI; `make deps` installs both):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// The inline token the engine wrote into `config` (to prove it never reaches the agent).
pub fn context_token(config: &Path) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text.lines().find(|l| l.trim_start().starts_with("value:")).expect("inline token in config");
    line.trim_start().trim_start_matches("value:").trim().trim_matches('"').to_owned()
}
