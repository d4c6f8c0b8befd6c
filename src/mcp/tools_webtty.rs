//! `rstream_webtty_list` and `rstream_webtty_exec`: find WebTTY servers, run commands on them.
//!
//! Both call the operator libraries (inventory through the engine API, the WebTTY exec client) and drive them
//! with `smol::block_on` on the calling (blocking) thread. `exec` results are upstream's
//! `{url, command, exit_code, stdout, stderr, duration_ms}` plus `timed_out` / `truncated` when set; a non-zero
//! exit code makes the result an error that still carries the output.

use std::time::Duration;

use serde_json::{json, Value};

use super::args::{Args, ToolError};
use super::operator_env::OperatorEnv;
use super::result::ToolOutput;
use super::schema::{number, string, strings, ToolSpec};
use crate::limits::{EXEC_MAX_DURATION, MCP_EXEC_DEFAULT_TIMEOUT, MCP_EXEC_OUTPUT_CAP};
use crate::operator::filter::{self, BareWords};
use crate::operator::inventory;
use crate::webtty::client::{exec, ExecRequest};

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
            ],
            required: &[],
            open_world: true,
        },
        ToolSpec {
            name: EXEC,
            title: "Run remote command",
            description: "Runs one command on a WebTTY server and returns its exit code, stdout and stderr. The \
                          command is an argv array run without a shell (use [\"sh\",\"-c\",\"…\"] for pipes). A \
                          non-zero exit code is an error result that still carries the output.",
            properties: vec![
                ("url", string("The server's rstream_url (rstrm://NAME), a bare server name, or ws://HOST:PORT.")),
                (
                    "command",
                    json!({"type": "array", "items": {"type": "string"}, "minItems": 1,
                    "description": "argv, e.g. [\"uname\", \"-a\"]."}),
                ),
                ("exec_path", string("WebSocket path of the server's exec endpoint; default: the server's (\"/\").")),
                ("workdir", string("Remote working directory; default: the server user's home.")),
                ("env", strings("Extra environment variables, each KEY=value.")),
                ("timeout_seconds", number(0, "End the command after this many seconds (default 300).")),
                ("stdin", string("Text written to the command's stdin, then closed; default: no stdin.")),
            ],
            required: &["url", "command"],
            open_world: true,
        },
    ]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, env: &OperatorEnv) -> Option<Result<ToolOutput, ToolError>> {
    Some(match name {
        LIST => list(args, env),
        EXEC => run(args, env),
        _ => return None,
    })
}

fn list(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let mut filter =
        filter::parse(args.opt_str("filter")?.as_deref().unwrap_or(""), BareWords::MatchNames).map_err(|e| {
            ToolError(format!("{e}; use key=value terms like labels.rstream.webtty.label.role=codex or a bare name"))
        })?;
    if let Some(name) = args.opt_str("name")? {
        filter.names.push(name.to_lowercase());
    }
    let api = env.engine_api()?;
    let servers =
        smol::block_on(inventory::list_webtty_servers(&api, &filter)).map_err(|e| ToolError(e.to_string()))?;
    Ok(ToolOutput::json(servers))
}

/// `rstrm://NAME` for a bare server name; URLs with a scheme as given.
pub fn server_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("rstrm://{url}")
    }
}

fn run(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let url = server_url(&args.required_str("url")?);
    let command = args.raw_str_list("command")?;
    if command.first().is_none_or(|c| c.trim().is_empty()) {
        return Err(ToolError::new("argument \"command\" needs at least the program name, e.g. [\"uname\", \"-a\"]"));
    }
    let mut req = ExecRequest::command(command);
    req.env = environment(&args.str_list("env")?)?;
    req.workdir = args.opt_str("workdir")?;
    req.timeout = Some(timeout(args.opt_f64("timeout_seconds")?)?);
    req.stdin = args.raw_str("stdin")?.map(|s| {
        Box::new(futures_lite::io::Cursor::new(s.into_bytes())) as Box<dyn futures_lite::AsyncRead + Unpin + Send>
    });
    // Keep the longest secret form past the cap: output is scrubbed first and cut afterwards.
    let secrets = env.secrets();
    req.output_cap = MCP_EXEC_OUTPUT_CAP + secrets.lookahead();
    req.connect.exec_path = args.opt_str("exec_path")?;
    req.connect.auth_token = env.webtty_token();
    let r = smol::block_on(exec(&url, req)).map_err(|e| ToolError(e.to_string()))?;
    let (stdout, stdout_cut) =
        secrets.scrub_and_cut(&String::from_utf8_lossy(&r.stdout), MCP_EXEC_OUTPUT_CAP, r.truncated);
    let (stderr, stderr_cut) =
        secrets.scrub_and_cut(&String::from_utf8_lossy(&r.stderr), MCP_EXEC_OUTPUT_CAP, r.truncated);
    let mut value = json!({
        "url": r.url,
        "command": r.command,
        "exit_code": r.exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "duration_ms": r.duration_ms,
    });
    if r.timed_out {
        value["timed_out"] = Value::Bool(true);
    }
    if stdout_cut || stderr_cut {
        value["truncated"] = Value::Bool(true);
    }
    Ok(ToolOutput::Json { value, is_error: r.exit_code != 0 })
}

/// `KEY=value` strings as pairs.
fn environment(items: &[String]) -> Result<Vec<(String, String)>, ToolError> {
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

    #[test]
    fn timeouts_default_and_are_bounded() {
        assert_eq!(timeout(None).unwrap(), MCP_EXEC_DEFAULT_TIMEOUT);
        assert_eq!(timeout(Some(1.5)).unwrap(), Duration::from_millis(1500));
        assert!(timeout(Some(0.0)).is_err());
        assert!(timeout(Some(1e12)).unwrap_err().0.contains("at most"));
    }
}
