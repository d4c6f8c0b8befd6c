//! `rstream_webtty_list` and `rstream_webtty_exec`: find WebTTY servers, run commands on them.
//!
//! Both call the operator libraries (inventory through the engine API, the WebTTY exec client) and drive them
//! with `smol::block_on` on the calling (blocking) thread. `exec` results are upstream's
//! `{surface, url, command, exit_code, stdout, stderr, duration_ms, truncated, error?, error_kind?}`; a non-zero
//! exit code or an `error` makes the result an error that still carries the output captured so far. A cancelled
//! call ends the WebTTY session, and the device kills the remote process group.
//!
//! `list` with `wait_seconds` (≤ [`MCP_LIST_MAX_WAIT`]) subscribes to the engine's event stream first, then lists;
//! while nothing matches it lists again after each `tunnel.created|updated` the engine reports for the filter, and
//! answers as soon as a server matches, or with the empty list when the wait is over.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::args::{Args, ToolError};
use super::catalog::CallContext;
use super::result::ToolOutput;
use super::schema::{field, number, output_list, output_object, string, strings, ToolSpec};
use super::scrub::Scrubber;
use crate::deadline::timeout as within;
use crate::limits::{EXEC_MAX_DURATION, MCP_EXEC_DEFAULT_TIMEOUT, MCP_EXEC_OUTPUT_CAP, MCP_LIST_MAX_WAIT};
use crate::operator::api::EngineApi;
use crate::operator::events::{EventStream, Transport, WatchParams};
use crate::operator::filter::{self, BareWords, Filter};
use crate::operator::inventory::{self, ServerInfo};
use crate::webtty::client::{exec_capturing, ExecRequest, ExecResult};

/// List tool name.
pub const LIST: &str = "rstream_webtty_list";
/// Exec tool name.
pub const EXEC: &str = "rstream_webtty_exec";

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: LIST,
            title: "List WebTTY servers",
            description: "Lists the WebTTY servers online behind the selected engine: rstream_url (pass it as `url` \
                          to the other tools), capabilities (exec, fs), fs_path and fs_mode (only on servers with \
                          fs), host facts (os, arch, hostname) and user labels. Read `capabilities` before choosing \
                          a tool.",
            properties: vec![
                (
                    "filter",
                    string(
                        "Comma-separated key=value terms, all required (e.g. labels.rstream.webtty.label.role=codex, \
                         labels.rstream.webtty.capabilities=exec,fs needs quoting per term); a bare word matches \
                         server names.",
                    ),
                ),
                ("name", string("Only servers whose name, tunnel id or hostname contains this text.")),
                (
                    "wait_seconds",
                    json!({"type": "number", "minimum": 0, "maximum": MCP_LIST_MAX_WAIT.as_secs(),
                    "description": "When nothing matches yet, wait up to this many seconds (at most 120) for a \
                                    matching server to come online and answer as soon as one does (e.g. right \
                                    after starting it); default 0: answer at once."}),
                ),
            ],
            required: &[],
            output: output_list(
                "servers",
                "WebTTY servers online behind the engine.",
                &[
                    ("target", string("The server's name.")),
                    ("rstream_url", string("rstrm://NAME: pass it as `url` to the other tools.")),
                    ("capabilities", field(json!("array"), "exec, fs.")),
                    ("exec_path", string("Advertised command execution path.")),
                ],
                &[],
            ),
        },
        ToolSpec {
            name: EXEC,
            title: "Execute WebTTY Command",
            description: "Runs one command on a WebTTY server and returns its exit code, stdout and stderr. The \
                          command is an argv array run without a shell (use [\"sh\",\"-c\",\"…\"] for pipes). A \
                          non-zero exit code, a timeout or a broken session is an error result that still carries \
                          the output captured so far (error_kind timeout|session|cancelled).",
            properties: vec![
                ("url", string("The server's rstream_url (rstrm://NAME), a bare server name, or ws://HOST:PORT.")),
                (
                    "command",
                    json!({"type": "array", "items": {"type": "string"}, "minItems": 1,
                    "description": "argv, e.g. [\"uname\", \"-a\"]."}),
                ),
                ("exec_path", string("WebSocket path of the server's exec endpoint; default: the server's (\"/\").")),
                ("workdir", string("Remote working directory; default: the server user's home.")),
                (
                    "user",
                    string(
                        "OS user (name or uid) to run as. Servers refuse it unless started with \
                         --allow-client-user; read the server's execution_mode (spawn|login) first.",
                    ),
                ),
                ("env", strings("Extra environment variables, each KEY=value.")),
                ("timeout_seconds", number(0, "End the command after this many seconds (default 300).")),
                ("stdin", string("Text written to the command's stdin, then closed; default: no stdin.")),
            ],
            required: &["url", "command"],
            output: output_object(
                &[
                    ("surface", string("Always \"cli\" (upstream's MCP surface name).")),
                    ("url", string("The server as reached.")),
                    ("command", strings("argv as run.")),
                    ("exit_code", field(json!("integer"), "Remote exit code; 124 after a timeout, -1 without one.")),
                    ("stdout", string("Captured stdout, including partial output on failure.")),
                    ("stderr", string("Captured stderr, including partial output on failure.")),
                    ("duration_ms", field(json!("integer"), "Wall time.")),
                    ("truncated", field(json!("boolean"), "Output beyond the cap was dropped.")),
                    ("error", string("Why the session ended without the command's own exit.")),
                    ("error_kind", field(json!("string"), "cancelled, timeout or session.")),
                ],
                &["surface", "url", "command", "exit_code", "stdout", "stderr", "duration_ms", "truncated"],
            ),
        },
    ]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, ctx: &CallContext<'_>) -> Option<Result<ToolOutput, ToolError>> {
    Some(match name {
        LIST => list(args, ctx),
        EXEC => run(args, ctx),
        _ => return None,
    })
}

fn list(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let mut filter =
        filter::parse(args.opt_str("filter")?.as_deref().unwrap_or(""), BareWords::MatchNames).map_err(|e| {
            ToolError(format!("{e}; use key=value terms like labels.rstream.webtty.label.role=codex or a bare name"))
        })?;
    if let Some(name) = args.opt_str("name")? {
        filter.names.push(name.to_lowercase());
    }
    let wait = wait_seconds(args.opt_f64("wait_seconds")?)?;
    let api = ctx.env.engine_api()?;
    let servers = ctx.block_on(async {
        if wait.is_zero() {
            return listing(&api, &filter, ctx).await;
        }
        wait_for_servers(&api, &filter, ctx, Instant::now() + wait).await
    })?;
    Ok(ToolOutput::json(json!({ "servers": servers })))
}

/// `wait_seconds` as a duration; more than [`MCP_LIST_MAX_WAIT`] is refused.
fn wait_seconds(value: Option<f64>) -> Result<Duration, ToolError> {
    match value {
        None => Ok(Duration::ZERO),
        Some(s) if s <= MCP_LIST_MAX_WAIT.as_secs_f64() => Ok(Duration::from_secs_f64(s)),
        Some(s) => {
            Err(ToolError(format!("argument \"wait_seconds\" is at most {}, got {s}", MCP_LIST_MAX_WAIT.as_secs())))
        }
    }
}

/// The servers matching `filter` that the tool policy lets this caller see.
async fn listing(api: &EngineApi, filter: &Filter, ctx: &CallContext<'_>) -> Result<Vec<ServerInfo>, ToolError> {
    let servers = inventory::list_webtty_servers(api, filter).await.map_err(|e| ToolError(e.to_string()))?;
    ctx.servers.visible(ctx.env, servers).await
}

/// Lists until a server matches or `deadline` passes, listing again after each tunnel event the engine reports for
/// the filter. The subscription comes first, so a server that comes up between the listing and the wait is an
/// event, not a miss.
async fn wait_for_servers(
    api: &EngineApi,
    filter: &Filter,
    ctx: &CallContext<'_>,
    deadline: Instant,
) -> Result<Vec<ServerInfo>, ToolError> {
    let params = WatchParams { tunnels: Some(filter.tunnels.clone()), clients: None };
    let waiting = |e: &dyn std::fmt::Display| ToolError(format!("waiting for a server to come online: {e}"));
    let mut events = EventStream::open(api.endpoint(), Transport::WebSocket, &params).await.map_err(|e| waiting(&e))?;
    loop {
        let servers = listing(api, filter, ctx).await?;
        if !servers.is_empty() {
            return Ok(servers);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(event) = within(left, events.next()).await else { return Ok(servers) };
            let event = event.map_err(|e| waiting(&e))?;
            if matches!(event["type"].as_str(), Some("tunnel.created" | "tunnel.updated")) {
                break;
            }
        }
    }
}

/// `rstrm://NAME` for a bare server name; URLs with a scheme as given.
pub fn server_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("rstrm://{url}")
    }
}

fn run(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let url = server_url(&args.required_str("url")?);
    let command = args.raw_str_list("command")?;
    if command.first().is_none_or(|c| c.trim().is_empty()) {
        return Err(ToolError::new("argument \"command\" needs at least the program name, e.g. [\"uname\", \"-a\"]"));
    }
    let run = RemoteCommand {
        command,
        env: environment(&args.str_list("env")?)?,
        workdir: args.opt_str("workdir")?,
        user: args.opt_str("user")?,
        timeout: timeout(args.opt_f64("timeout_seconds")?)?,
        stdin: args.raw_str("stdin")?,
        exec_path: args.opt_str("exec_path")?,
    };
    exec_on(ctx, &url, run)
}

/// One command for [`exec_on`].
pub struct RemoteCommand {
    /// argv.
    pub command: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Remote working directory.
    pub workdir: Option<String>,
    /// OS user to run as (the server decides whether it allows that).
    pub user: Option<String>,
    /// Deadline.
    pub timeout: Duration,
    /// Text for stdin.
    pub stdin: Option<String>,
    /// The server's exec path, if not the advertised one.
    pub exec_path: Option<String>,
}

/// Runs `run` on the server `url` (after the `--allow-servers` check) and returns upstream's exec result.
pub fn exec_on(ctx: &CallContext<'_>, url: &str, run: RemoteCommand) -> Result<ToolOutput, ToolError> {
    let mut req = ExecRequest::command(run.command);
    req.env = run.env;
    req.workdir = run.workdir;
    req.user = run.user;
    req.timeout = Some(run.timeout);
    req.stdin = run.stdin.map(|s| {
        Box::new(futures_lite::io::Cursor::new(s.into_bytes())) as Box<dyn futures_lite::AsyncRead + Unpin + Send>
    });
    // Keep the longest secret form past the cap: output is scrubbed first and cut afterwards.
    let secrets = ctx.env.secrets();
    req.output_cap = MCP_EXEC_OUTPUT_CAP + secrets.lookahead();
    req.connect.exec_path = run.exec_path;
    req.connect.auth_token = ctx.env.webtty_token();
    req.cancel = Some(ctx.cancel.signal());
    // The policy check resolves the server before anything is sent; the session then goes to exactly that one.
    let dial = ctx.block_on(ctx.servers.resolve(ctx.env, url))?;
    let (result, failure) = match smol::block_on(exec_capturing(&dial, req)) {
        Ok(r) => (r, None),
        Err(f) => match f.partial {
            Some(partial) => (partial, Some(f.error.to_string())),
            None => return Err(ToolError(f.error.to_string())),
        },
    };
    let shown = if dial == url { result.url.clone() } else { url.to_owned() };
    Ok(exec_output(result, shown, failure, &secrets))
}

/// Upstream's exec result: the output always (scrubbed, then cut at the cap), `error` / `error_kind` when the
/// session did not end on its own.
fn exec_output(r: ExecResult, url: String, failure: Option<String>, secrets: &Scrubber) -> ToolOutput {
    let (stdout, stdout_cut) =
        secrets.scrub_and_cut(&String::from_utf8_lossy(&r.stdout), MCP_EXEC_OUTPUT_CAP, r.truncated);
    let (stderr, stderr_cut) =
        secrets.scrub_and_cut(&String::from_utf8_lossy(&r.stderr), MCP_EXEC_OUTPUT_CAP, r.truncated);
    let mut value = json!({
        "surface": "cli",
        "url": url,
        "command": r.command,
        "exit_code": r.exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "duration_ms": r.duration_ms,
        "truncated": stdout_cut || stderr_cut,
    });
    let ended = if r.cancelled {
        Some((
            "cancelled",
            "cancelled by the client (notifications/cancelled); the remote process group was killed".to_owned(),
        ))
    } else if r.timed_out {
        Some(("timeout", format!("timed out after {} ms; the remote process group was killed", r.duration_ms)))
    } else {
        failure.map(|e| ("session", format!("the WebTTY session broke: {e}")))
    };
    let is_error = r.exit_code != 0 || ended.is_some();
    if let Some((kind, error)) = ended {
        value["error"] = Value::String(error);
        value["error_kind"] = json!(kind);
    }
    ToolOutput::Json { value, is_error }
}

/// `KEY=value` strings as pairs.
pub fn environment(items: &[String]) -> Result<Vec<(String, String)>, ToolError> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains(|c: char| c.is_whitespace() || c == '\0') => {
                Ok((k.to_owned(), v.to_owned()))
            }
            _ => Err(ToolError(format!("env entry {item:?} is not KEY=value"))),
        })
        .collect()
}

/// The exec deadline: the agent's (0 < t ≤ [`EXEC_MAX_DURATION`]) or [`MCP_EXEC_DEFAULT_TIMEOUT`].
fn timeout(seconds: Option<f64>) -> Result<Duration, ToolError> {
    match seconds {
        None => Ok(MCP_EXEC_DEFAULT_TIMEOUT),
        Some(s) if s > 0.0 && s <= EXEC_MAX_DURATION.as_secs_f64() => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(ToolError(format!(
            "argument \"timeout_seconds\" must be above 0 and at most {}, got {s}",
            EXEC_MAX_DURATION.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_become_rstream_urls() {
        assert_eq!(server_url("pi"), "rstrm://pi");
        assert_eq!(server_url("rstrm://pi"), "rstrm://pi");
        assert_eq!(server_url("ws://127.0.0.1:8080"), "ws://127.0.0.1:8080");
    }

    #[test]
    fn env_entries_must_be_key_value() {
        let ok = environment(&["A=1".into(), "B=x=y".into(), "C=".into()]).unwrap();
        assert_eq!(ok, [("A".into(), "1".into()), ("B".into(), "x=y".into()), ("C".into(), String::new())]);
        assert!(environment(&["=1".into()]).is_err());
        assert!(environment(&["NOVALUE".into()]).is_err());
    }

    fn result(exit_code: i32) -> ExecResult {
        ExecResult {
            url: "rstrm://pi/".into(),
            command: vec!["true".into()],
            exit_code,
            stdout: b"so far".to_vec(),
            stderr: Vec::new(),
            duration_ms: 5,
            timed_out: false,
            truncated: false,
            cancelled: false,
        }
    }

    fn none() -> Scrubber {
        Scrubber::new(Vec::<Vec<u8>>::new())
    }

    fn value(out: ToolOutput) -> (Value, bool) {
        match out {
            ToolOutput::Json { value, is_error } => (value, is_error),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_results_keep_partial_output_and_say_how_the_session_ended() {
        let (ok, is_error) = value(exec_output(result(0), "rstrm://pi".into(), None, &none()));
        assert_eq!((ok["surface"].as_str(), ok["truncated"].clone(), is_error), (Some("cli"), json!(false), false));
        assert!(ok.get("error_kind").is_none());
        let (broken, is_error) =
            value(exec_output(result(-1), "rstrm://pi".into(), Some("connection reset".into()), &none()));
        assert_eq!(
            (broken["error_kind"].as_str(), broken["stdout"].as_str(), is_error),
            (Some("session"), Some("so far"), true)
        );
        assert!(broken["error"].as_str().unwrap().contains("connection reset"));
        let mut timed = result(124);
        timed.timed_out = true;
        assert_eq!(value(exec_output(timed, "x".into(), None, &none())).0["error_kind"], "timeout");
        let mut cancelled = result(-1);
        cancelled.cancelled = true;
        assert_eq!(value(exec_output(cancelled, "x".into(), None, &none())).0["error_kind"], "cancelled");
    }

    #[test]
    fn timeouts_default_and_are_bounded() {
        assert_eq!(timeout(None).unwrap(), MCP_EXEC_DEFAULT_TIMEOUT);
        assert_eq!(timeout(Some(1.5)).unwrap(), Duration::from_millis(1500));
        assert!(timeout(Some(0.0)).is_err());
        assert!(timeout(Some(1e12)).unwrap_err().0.contains("at most"));
    }
}
