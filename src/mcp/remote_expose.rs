//! `rstream_remote_expose` and `rstream_remote_expose_stop`: start (and stop) `rstream forward` on a POSIX
//! WebTTY host through one WebTTY exec, with upstream's script contract ([`super::remote_expose_script`]), so a
//! port of that machine gets a tunnel and the agent its URL.
//!
//! Our WebTTY servers end every process a session starts unless the host opted in with `webtty server
//! --allow-detach` (label `rstream.webtty.detach`). An `rstrm://` server that says `denied` is refused before
//! anything is sent; any server that says so in the session (`RSTREAM_WEBTTY_DETACH=denied`, e.g. reached by
//! `ws://`) makes the script start nothing. Either way the result is an error naming the flag — never an
//! "online" that dies a second later. Servers that say nothing (upstream's) get the plain script. The exec
//! goes through the `--allow-servers` policy like `rstream_webtty_exec`.
//!
//! Result `{id, status, pid?, log_path?, forward?, url?, command[], webtty{…exec result}}` plus a
//! `resource_link` to the URL; an error unless `status` is `online`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::args::{Args, ToolError};
use super::catalog::CallContext;
use super::remote_expose_script::{parse_markers, sanitize_id, start_script, stop_script, DETACH_HINT};
use super::remote_mcp::{MCP_APPLICATION_PROTOCOL, MCP_PATH_LABEL, MCP_TRANSPORT, MCP_TRANSPORT_LABEL};
use super::result::ToolOutput;
use super::schema::{boolean, field, number, one_of, output_object, string, strings, ToolSpec};
use super::tools_webtty::{environment, exec_on, server_url, RemoteCommand};
use crate::operator::filter::{self, BareWords};
use crate::operator::inventory::{
    list_webtty_servers, resolve_server, APPLICATION_PROTOCOL_LABEL, WEBTTY_DETACH_DENIED,
};

/// Start tool name.
pub const EXPOSE: &str = "rstream_remote_expose";
/// Stop tool name.
pub const STOP: &str = "rstream_remote_expose_stop";

/// Default wait for `online` (upstream's), and its bounds.
const TIMEOUT_DEFAULT: u64 = 30;
const TIMEOUT_RANGE: (u64, u64) = (1, 120);
/// Time the exec gets beyond the script's own wait (starting the shell, writing files, the stop's kill waits).
const EXEC_SLACK: Duration = Duration::from_secs(30);

const PROTOCOLS: &[&str] = &[
    "http",
    "h2c",
    "h3",
    "tls",
    "tcp",
    "udp",
    "dtls",
    "quic",
    "http/1.1",
    "http/2",
    "http/3",
    "bytestream",
    "datagram",
];

fn common_args() -> Vec<(&'static str, Value)> {
    vec![
        ("webtty_url", string("The WebTTY server: its rstream_url (rstrm://NAME), a bare name, or ws://HOST:PORT.")),
        ("exec_path", string("WebSocket path of the server's exec endpoint; default: the server's.")),
        ("env", strings("Extra environment for the script, each KEY=value (e.g. RSTREAM_REMOTE_EXPOSE_DIR=…).")),
    ]
}

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    let mut expose = common_args();
    expose.extend([
        ("port", number(1, "Port of the service on the WebTTY host.")),
        ("host", string("Address of the service on the WebTTY host (default 127.0.0.1).")),
        ("id", string("Id of this expose ([A-Za-z0-9_-]; default remote-expose-<unixnano>); pass it to stop.")),
        ("name", string("Tunnel name (default: one forward picks).")),
        ("publish", boolean("Publish on the engine's public host (default true); false keeps it rstrm:// only.")),
        ("protocol", one_of(PROTOCOLS, "Tunnel protocol (default http when published, bytestream when private).")),
        ("token_auth", boolean("Published HTTP only: callers need a token (default: true when mcp_path is set).")),
        ("mcp_path", string("The service is an MCP endpoint at this path: labelled for rstream_remote_mcp_discover.")),
        ("labels", strings("Extra tunnel labels, each key=value.")),
        ("timeout_seconds", number(1, "How long to wait for the tunnel to be online (default 30, at most 120).")),
        ("rstream_command", string("The rstream binary on the WebTTY host (default \"rstream\").")),
    ]);
    let mut stop = common_args();
    stop.push(("id", string("The id rstream_remote_expose returned.")));
    vec![
        ToolSpec {
            name: EXPOSE,
            title: "Expose a port of a WebTTY host",
            description: "Starts `rstream forward` on a WebTTY server's host (one exec of a /bin/sh script) so a \
                          port there gets a tunnel, and returns its URL. Our WebTTY servers allow it only when \
                          started with --allow-detach (label rstream.webtty.detach=allowed). Stop it with \
                          rstream_remote_expose_stop. Keep it private (publish=false) unless others need it.",
            properties: expose,
            required: &["webtty_url", "port"],
            output: output_object(
                &[
                    ("id", string("Pass it to rstream_remote_expose_stop.")),
                    ("status", string("online, starting or failed.")),
                    ("pid", string("The forward's pid on the WebTTY host.")),
                    ("log_path", string("The forward's log on the WebTTY host.")),
                    ("forward", field(json!("object"), "The forward's last status line.")),
                    ("url", string("Where the service is reachable.")),
                    ("error", string("Why nothing was started.")),
                    ("command", strings("The forward command line.")),
                    ("webtty", field(json!("object"), "The exec result (rstream_webtty_exec's shape).")),
                ],
                &["id", "status", "command", "webtty"],
            ),
        },
        ToolSpec {
            name: STOP,
            title: "Stop a remote expose",
            description: "Stops a forward rstream_remote_expose started: SIGTERM, SIGKILL after a second.",
            properties: stop,
            required: &["webtty_url", "id"],
            output: output_object(
                &[
                    ("id", string("The expose id.")),
                    ("stopped", field(json!("boolean"), "The forward is gone.")),
                    ("pid", string("Its pid.")),
                    ("stdout", string("Script output.")),
                    ("stderr", string("Script errors.")),
                    ("exit_code", field(json!("integer"), "Script exit code.")),
                ],
                &["id", "stopped", "stdout", "stderr", "exit_code"],
            ),
        },
    ]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, ctx: &CallContext<'_>) -> Option<Result<ToolOutput, ToolError>> {
    Some(match name {
        EXPOSE => expose(args, ctx),
        STOP => stop(args, ctx),
        _ => return None,
    })
}

/// The `rstream forward` argv the arguments describe (labels: ours over the agent's).
fn forward_argv(args: &Args) -> Result<Vec<String>, ToolError> {
    let port = args.opt_u64("port")?.ok_or_else(|| ToolError::new("missing required argument \"port\""))?;
    let port =
        u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| ToolError(format!("port {port} is not 1-65535")))?;
    let host = args.opt_str("host")?.unwrap_or_else(|| "127.0.0.1".into());
    let publish = args.opt_bool("publish")?.unwrap_or(true);
    let mcp_path = args.opt_str("mcp_path")?;
    let rstream = args.opt_str("rstream_command")?.unwrap_or_else(|| "rstream".into());
    let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut argv = vec![rstream, "forward".into(), target, "--output".into(), "json".into()];
    if let Some(name) = args.opt_str("name")? {
        argv.extend(["--name".into(), name]);
    }
    argv.push(if publish { "--publish" } else { "--no-publish" }.into());
    let protocol = args.opt_str("protocol")?;
    let flag = match (publish, protocol.as_deref()) {
        (true, None | Some("http" | "h2c" | "http/1.1" | "http/2")) => Some("--http"),
        (true, Some("tls")) => Some("--tls"),
        (true | false, Some("tcp")) => Some("--tcp"),
        (false, Some("tls")) => Some("--tls"),
        (false, None | Some("bytestream" | "http" | "h2c" | "http/1.1" | "http/2")) => None,
        (_, Some(other)) => {
            return Err(ToolError(format!(
                "protocol {other:?} is not supported by rstream forward here (datagram \
                                          and HTTP/3 tunnels are not); use http, tls, tcp or bytestream"
            )))
        }
    };
    argv.extend(flag.map(str::to_owned));
    let token_auth = args.opt_bool("token_auth")?;
    match (token_auth.unwrap_or(mcp_path.is_some()), publish && flag == Some("--http")) {
        (true, true) => argv.push("--token-auth".into()),
        (true, false) if token_auth == Some(true) => {
            return Err(ToolError::new("token_auth needs a published HTTP tunnel (publish true, protocol http)"))
        }
        _ => {}
    }
    let mut labels = Vec::new();
    for label in args.str_list("labels")? {
        match label.split_once('=') {
            Some((k, _)) if !k.is_empty() => labels.push(label.clone()),
            _ => return Err(ToolError(format!("label {label:?} is not key=value"))),
        }
    }
    let kind = if mcp_path.is_some() { "mcp" } else { "network" };
    labels.extend([
        format!("rstream.remote.kind={kind}"),
        format!("rstream.remote.port={port}"),
        "rstream.remote.source=webtty".to_owned(),
    ]);
    if let Some(path) = &mcp_path {
        let path = if path.starts_with('/') { path.clone() } else { format!("/{path}") };
        labels.extend([
            format!("{APPLICATION_PROTOCOL_LABEL}={MCP_APPLICATION_PROTOCOL}"),
            format!("{MCP_PATH_LABEL}={path}"),
            "rstream.mcp.role=remote-surface".to_owned(),
            format!("{MCP_TRANSPORT_LABEL}={MCP_TRANSPORT}"),
            format!("rstream.remote.path={path}"),
        ]);
    }
    for label in labels {
        argv.extend(["--label".into(), label]);
    }
    Ok(argv)
}

/// Refuses an `rstrm://` server whose labels say it ends every process a session starts.
fn check_detach(ctx: &CallContext<'_>, url: &str) -> Result<(), ToolError> {
    let Some(name) = url.strip_prefix("rstrm://").map(|r| r.split('/').next().unwrap_or(r)) else { return Ok(()) };
    let api = ctx.env.engine_api()?;
    let everyone = filter::parse("", BareWords::MatchNames).map_err(|e| ToolError(e.to_string()))?;
    let servers =
        ctx.block_on(async { list_webtty_servers(&api, &everyone).await.map_err(|e| ToolError(e.to_string())) })?;
    match resolve_server(&servers, name) {
        Ok(server) if server.detach == WEBTTY_DETACH_DENIED => {
            Err(ToolError(format!("remote expose on {:?} refused: {DETACH_HINT}", server.target)))
        }
        _ => Ok(()), // unknown servers are the exec's to report; upstream's say nothing
    }
}

fn expose(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let url = server_url(&args.required_str("webtty_url")?);
    let forward = forward_argv(args)?;
    let id = match args.opt_str("id")? {
        Some(id) => sanitize_id(&id).ok_or_else(|| ToolError(format!("id {id:?} holds no [A-Za-z0-9_-]")))?,
        None => {
            format!("remote-expose-{}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos())
        }
    };
    let wait = args.opt_u64("timeout_seconds")?.unwrap_or(TIMEOUT_DEFAULT).clamp(TIMEOUT_RANGE.0, TIMEOUT_RANGE.1);
    check_detach(ctx, &url)?;
    let run = RemoteCommand {
        command: vec!["/bin/sh".into(), "-lc".into(), start_script(&id, &forward, wait)],
        env: environment(&args.str_list("env")?)?,
        workdir: None,
        user: None,
        timeout: Duration::from_secs(wait) + EXEC_SLACK,
        stdin: None,
        exec_path: args.opt_str("exec_path")?,
    };
    let webtty = exec_value(exec_on(ctx, &url, run)?);
    let markers = parse_markers(webtty["stdout"].as_str().unwrap_or_default());
    let status = markers.status.clone().unwrap_or_else(|| "failed".into());
    let mut value =
        json!({"id": markers.id.clone().unwrap_or(id), "status": status, "command": forward, "webtty": webtty});
    let forward_status = markers.json_line.as_deref().and_then(|l| serde_json::from_str::<Value>(l).ok());
    let url = forward_status.as_ref().and_then(|f| f["forwarding"].as_str()).map(|f| {
        let base = f.strip_suffix(" (unpublished)").unwrap_or(f);
        format!("{base}{}", args.opt_str("mcp_path").ok().flatten().unwrap_or_default())
    });
    for (key, v) in [("pid", markers.pid), ("log_path", markers.log), ("error", markers.error)] {
        if let Some(v) = v {
            value[key] = json!(v);
        }
    }
    if let Some(f) = forward_status {
        value["forward"] = f;
    }
    let is_error = status != "online";
    match url {
        Some(url) => {
            value["url"] = json!(url);
            Ok(ToolOutput::Linked { value, is_error, uri: url, name: "remote expose".into() })
        }
        None => Ok(ToolOutput::Json { value, is_error }),
    }
}

fn stop(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let url = server_url(&args.required_str("webtty_url")?);
    let given = args.required_str("id")?;
    let id = sanitize_id(&given).ok_or_else(|| ToolError(format!("id {given:?} holds no [A-Za-z0-9_-]")))?;
    let run = RemoteCommand {
        command: vec!["/bin/sh".into(), "-lc".into(), stop_script(&id)],
        env: environment(&args.str_list("env")?)?,
        workdir: None,
        user: None,
        timeout: EXEC_SLACK,
        stdin: None,
        exec_path: args.opt_str("exec_path")?,
    };
    let webtty = exec_value(exec_on(ctx, &url, run)?);
    let stdout = webtty["stdout"].as_str().unwrap_or_default().to_owned();
    let stopped = stdout.lines().any(|l| l == "stopped=true");
    let mut value = json!({
        "id": id,
        "stopped": stopped,
        "stdout": stdout,
        "stderr": webtty["stderr"],
        "exit_code": webtty["exit_code"],
    });
    if let Some(pid) = stdout.lines().find_map(|l| l.strip_prefix("pid=")) {
        value["pid"] = json!(pid);
    }
    Ok(ToolOutput::Json { value, is_error: !stopped })
}

/// The JSON of an exec result.
fn exec_value(out: ToolOutput) -> Value {
    match out {
        ToolOutput::Json { value, .. } | ToolOutput::Linked { value, .. } | ToolOutput::Document { value, .. } => value,
        ToolOutput::Text(text) => json!({ "stdout": text }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: Value) -> Result<Vec<String>, ToolError> {
        forward_argv(&Args::from_value(v))
    }

    #[test]
    fn the_forward_command_carries_upstreams_labels_and_flags() {
        let a = argv(json!({"port": 8080, "name": "web", "publish": false})).unwrap();
        assert_eq!(a[..7], ["rstream", "forward", "127.0.0.1:8080", "--output", "json", "--name", "web"]);
        assert!(a.contains(&"--no-publish".into()) && !a.contains(&"--http".into()));
        assert!(a.contains(&"rstream.remote.kind=network".into()) && a.contains(&"rstream.remote.port=8080".into()));
        let m = argv(json!({"port": "9000", "mcp_path": "mcp", "rstream_command": "/opt/rstream"})).unwrap();
        assert_eq!(m[0], "/opt/rstream");
        for want in ["--publish", "--http", "--token-auth", "application-protocol=rstream.mcp", "rstream.mcp.path=/mcp"]
        {
            assert!(m.contains(&want.to_owned()), "{want} missing from {m:?}");
        }
        assert!(argv(json!({"port": 1, "protocol": "udp"})).unwrap_err().0.contains("not supported"));
        assert!(argv(json!({"port": 1, "publish": false, "token_auth": true})).is_err());
        assert!(argv(json!({"port": 0})).is_err());
        assert!(argv(json!({"port": 1, "labels": ["nokey"]})).is_err());
    }
}
