//! `rstream_local_tunnel_expose`, `rstream_local_tunnel_list`, `rstream_local_tunnel_stop`: publish a port of
//! the operator's machine through the engine with a supervised `rstream forward`.
//!
//! Expose validates the request, starts the `forward` (see [`super::local_tunnel_process`]), waits for its
//! `online` line and records it in the registry next to the config; list reports each entry as `running` or
//! `exited` (with the end of its log) and changes nothing, so it is truly read-only; stop ends one by local id,
//! tunnel id or name and forgets it (an exited one too). Children this server started are kept as handles so
//! they are reaped; ones from earlier sessions are recognised by pid and name. A log file lives as long as its
//! registry entry: it is deleted on stop, on a failed expose (its tail is in the error), and when the next
//! expose forgets the tunnels that exited.
//! Tunnels carry upstream's labels `application-protocol=rstream.local_tunnel`,
//! `rstream.local_tunnel.kind=codex` and `rstream.local_tunnel.port=<port>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::args::{Args, ToolError};
use super::cancel::Cancel;
use super::local_tunnel_process::{
    is_forward_running, log_tail, spawn_forward, stop_forward, wait_online, ForwardSpec,
};
use super::local_tunnel_registry::{config_dir, matches, LocalTunnel, Registry, LOG_DIR};
use super::result::ToolOutput;
use super::schema::{boolean, field, one_of, output_list, output_object, string, strings, ToolSpec};
use crate::limits::{MCP_MAX_LOCAL_TUNNELS, MCP_TUNNEL_ONLINE_TIMEOUT};
use crate::proto::rstream::published_protocol_refusal;

/// Expose tool name.
pub const EXPOSE: &str = "rstream_local_tunnel_expose";
/// List tool name.
pub const LIST: &str = "rstream_local_tunnel_list";
/// Stop tool name.
pub const STOP: &str = "rstream_local_tunnel_stop";

/// Protocols `rstream forward` offers here (`http/1.1` is an alias of `http`).
const PROTOCOLS: [&str; 5] = ["http", "http/1.1", "tls", "tcp", "bytestream"];
/// Labels the tool sets itself.
const RESERVED_LABELS: [&str; 2] = ["application-protocol", "rstream.local_tunnel."];

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: EXPOSE,
            title: "Expose local tunnel",
            description: "Publishes a TCP port of THIS machine (where the MCP server runs) through the rstream \
                          engine by starting a supervised `rstream forward`. Returns the public URL (or rstrm://NAME \
                          when publish=false) and the id to pass to rstream_local_tunnel_stop when done. The tunnel \
                          keeps running after this session until stopped.",
            properties: vec![
                ("port", string("Local port to expose, e.g. \"3000\".")),
                ("host", string("Local host the port is on; default localhost.")),
                ("name", string("Tunnel name (letters, digits, - and _); default codex-local-tunnel-<unix time>.")),
                (
                    "publish",
                    boolean("Publish on the engine's public host (default true); false = private rstrm://NAME."),
                ),
                (
                    "protocol",
                    one_of(
                        &PROTOCOLS,
                        "http (default; same as http/1.1; the only protocol published tunnels carry on this \
                         engine), tls or tcp (private only: need publish=false), or bytestream (raw private stream; \
                         needs publish=false).",
                    ),
                ),
                ("labels", strings("Extra tunnel labels, each key=value.")),
            ],
            required: &["port"],
            output: output_object(
                &[
                    ("id", string("Local tunnel id, for rstream_local_tunnel_stop.")),
                    ("url", string("Published URL, host:port, or rstrm://NAME when private.")),
                    ("pid", field(json!("integer"), "Process id of the supervised forward.")),
                    ("protocol", string("Tunnel protocol.")),
                    ("publish", boolean("Published on the engine's public host.")),
                    ("cleanup_tool", string("The tool that stops it.")),
                    ("cleanup_id", string("The id to pass to cleanup_tool.")),
                ],
                &["id", "url", "cleanup_tool", "cleanup_id"],
            ),
        },
        ToolSpec {
            name: LIST,
            title: "List local tunnels",
            description: "Lists the local tunnels started through this MCP server (from any session), each with its \
                          URL, pid and status: running, or exited with the end of its log. Changes nothing; stop an \
                          exited one with rstream_local_tunnel_stop to forget it.",
            properties: vec![],
            required: &[],
            output: output_list(
                "local_tunnels",
                "Local tunnels managed by this MCP server.",
                &[
                    ("id", string("Local tunnel id.")),
                    ("url", string("Where the service is reachable.")),
                    ("status", string("running or exited.")),
                ],
                &[],
            ),
        },
        ToolSpec {
            name: STOP,
            title: "Stop local tunnel",
            description: "Stops a local tunnel started with rstream_local_tunnel_expose and forgets it.",
            properties: vec![("id", string("Local tunnel id (lt-…), engine tunnel id, or tunnel name."))],
            required: &["id"],
            output: output_object(
                &[
                    ("ok", boolean("Stopped (or already gone) and forgotten.")),
                    ("id", string("Local tunnel id.")),
                    ("was_running", boolean("The forward was still running.")),
                ],
                &["ok", "id"],
            ),
        },
    ]
}

/// The local tunnels of one config: registry, log directory, and the children this server started.
pub struct LocalTunnels {
    exe: PathBuf,
    config_path: PathBuf,
    registry: Registry,
    children: Mutex<HashMap<String, Child>>,
}

impl LocalTunnels {
    /// Local tunnels next to `config_path`, started as `exe forward …`.
    pub fn new(exe: PathBuf, config_path: PathBuf) -> LocalTunnels {
        let registry = Registry::next_to(&config_path);
        LocalTunnels { exe, config_path, registry, children: Mutex::new(HashMap::new()) }
    }

    /// Runs `name` if it belongs to this family (`cancel` ends an expose still waiting for its tunnel).
    pub fn call(&self, name: &str, args: &Args, cancel: &Cancel) -> Option<Result<ToolOutput, ToolError>> {
        Some(match name {
            EXPOSE => self.expose(args, cancel),
            LIST => self.list(),
            STOP => args.required_str("id").and_then(|id| self.stop(&id)),
            _ => return None,
        })
    }

    fn expose(&self, args: &Args, cancel: &Cancel) -> Result<ToolOutput, ToolError> {
        let spec = forward_spec(args)?;
        let (running, exited) = self.prune()?;
        exited.iter().for_each(|t| drop(std::fs::remove_file(&t.log_path)));
        if running.len() >= MCP_MAX_LOCAL_TUNNELS {
            return Err(ToolError(format!(
                "{} local tunnels are already running (limit {MCP_MAX_LOCAL_TUNNELS}); stop one with {STOP}",
                running.len()
            )));
        }
        if let Some(t) = running.iter().find(|t| t.name == spec.name) {
            return Err(ToolError(format!(
                "a local tunnel named {:?} is already running (id {}, {}); stop it with {STOP} or choose another name",
                t.name, t.id, t.url
            )));
        }
        let log_dir = config_dir(&self.config_path).join(LOG_DIR);
        let (mut child, log_path) = spawn_forward(&self.exe, &self.config_path, &spec, &log_dir)?;
        let online = match wait_online(&mut child, &log_path, MCP_TUNNEL_ONLINE_TIMEOUT, &|| cancel.is_cancelled()) {
            Ok(online) => online,
            Err(e) => {
                let _ = stop_forward(child.id(), &spec.name, Some(child));
                let _ = std::fs::remove_file(&log_path);
                return Err(e);
            }
        };
        let entry = LocalTunnel {
            id: local_id()?,
            name: spec.name.clone(),
            tunnel_id: online.tunnel_id.clone(),
            url: online.url(),
            forwarding: online.forwarding.clone(),
            forwarded: online.forwarded.clone(),
            pid: child.id(),
            protocol: spec.protocol.clone(),
            publish: spec.publish,
            host: spec.host.clone(),
            port: spec.port,
            labels: spec.labels.clone(),
            log_path: log_path.display().to_string(),
            started_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        if let Err(e) = self.registry.update(|all| all.push(entry.clone())) {
            let _ = stop_forward(entry.pid, &entry.name, Some(child));
            return Err(ToolError(format!("tunnel stopped: cannot record it: {e}")));
        }
        self.lock_children().insert(entry.id.clone(), child);
        Ok(ToolOutput::json(json!({
            "id": entry.id,
            "url": entry.url,
            "pid": entry.pid,
            "protocol": entry.protocol,
            "publish": entry.publish,
            "token_auth": false,
            "rstream_auth": false,
            "challenge_mode": false,
            "name": entry.name,
            "tunnel_id": entry.tunnel_id,
            "forwarded": entry.forwarded,
            "log_path": entry.log_path,
            "cleanup_tool": STOP,
            "cleanup_id": entry.id,
        })))
    }

    fn list(&self) -> Result<ToolOutput, ToolError> {
        let all = self.registry.load().map_err(|e| ToolError(e.to_string()))?;
        let alive = self.liveness();
        let items: Vec<Value> = all
            .iter()
            .map(|t| {
                let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
                if alive(t) {
                    v["status"] = json!("running");
                } else {
                    v["status"] = json!("exited");
                    v["log_tail"] = json!(log_tail(Path::new(&t.log_path), 1024));
                }
                v
            })
            .collect();
        Ok(ToolOutput::json(json!({ "local_tunnels": items })))
    }

    fn stop(&self, key: &str) -> Result<ToolOutput, ToolError> {
        let all = self.registry.load().map_err(|e| ToolError(e.to_string()))?;
        let Some(entry) = all.iter().find(|t| matches(t, key)).cloned() else {
            let known: Vec<String> = all.iter().map(|t| format!("{} ({})", t.id, t.name)).collect();
            let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            return Err(ToolError(format!("no local tunnel {key:?} (known: {known})")));
        };
        let child = self.lock_children().remove(&entry.id);
        let was_running = stop_forward(entry.pid, &entry.name, child)?;
        self.registry.update(|all| all.retain(|t| t.id != entry.id)).map_err(|e| ToolError(e.to_string()))?;
        let _ = std::fs::remove_file(&entry.log_path);
        Ok(ToolOutput::json(json!({
            "ok": true,
            "id": entry.id,
            "name": entry.name,
            "tunnel_id": entry.tunnel_id,
            "pid": entry.pid,
            "was_running": was_running,
        })))
    }

    /// Whether a tunnel's `forward` still runs (children of this server are reaped on the way).
    fn liveness(&self) -> impl Fn(&LocalTunnel) -> bool {
        let mut children = self.lock_children();
        children.retain(|_, c| matches!(c.try_wait(), Ok(None)));
        let ours: Vec<String> = children.keys().cloned().collect();
        move |t: &LocalTunnel| ours.contains(&t.id) || is_forward_running(t.pid, &t.name)
    }

    /// Drops exited entries from the registry: returns (running, exited).
    fn prune(&self) -> Result<(Vec<LocalTunnel>, Vec<LocalTunnel>), ToolError> {
        let alive = self.liveness();
        self.registry
            .update(|all| {
                let (running, exited): (Vec<LocalTunnel>, Vec<LocalTunnel>) = all.drain(..).partition(|t| alive(t));
                all.clone_from(&running);
                (running, exited)
            })
            .map_err(|e| ToolError(e.to_string()))
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, HashMap<String, Child>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Validates the expose arguments into a `forward` command.
fn forward_spec(args: &Args) -> Result<ForwardSpec, ToolError> {
    let port = args.opt_u64("port")?.ok_or_else(|| ToolError::new("missing required argument \"port\""))?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ToolError(format!("argument \"port\" must be between 1 and 65535, got {port}")))?;
    let host = args.opt_str("host")?.unwrap_or_else(|| "localhost".to_owned());
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(ToolError(format!("argument \"host\" is not a host name or address: {host:?}")));
    }
    let name = match args.opt_str("name")? {
        Some(n) => n,
        None => format!(
            "codex-local-tunnel-{}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
        ),
    };
    let valid_name = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(ToolError(format!(
            "argument \"name\" must be 1-63 letters, digits, '-' or '_' starting with a letter or digit, got {name:?}"
        )));
    }
    let publish = args.opt_bool("publish")?.unwrap_or(true);
    let protocol_arg = args.opt_str("protocol")?;
    let protocol = match protocol_arg.as_deref() {
        None | Some("http") | Some("http/1.1") => "http",
        Some(p) if PROTOCOLS.contains(&p) => p,
        Some(p) => {
            return Err(ToolError(format!(
                "protocol {p:?} is not supported by this rstream (supported: {})",
                PROTOCOLS.join(", ")
            )))
        }
    };
    if protocol == "bytestream" && publish {
        return Err(ToolError::new("protocol=bytestream requires publish=false"));
    }
    if let Some(refusal) = publish.then(|| published_protocol_refusal(Some(protocol), "publish=false")).flatten() {
        return Err(ToolError(refusal));
    }
    let mut labels = Vec::new();
    for label in args.str_list("labels")? {
        let Some((key, _)) = label.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(ToolError(format!("label {label:?} is not key=value")));
        };
        if RESERVED_LABELS.iter().any(|r| key == r.trim_end_matches('.') || key.starts_with(r)) {
            return Err(ToolError(format!("label {key:?} is set by {EXPOSE} itself")));
        }
        labels.push(label);
    }
    labels.push("application-protocol=rstream.local_tunnel".to_owned());
    labels.push("rstream.local_tunnel.kind=codex".to_owned());
    labels.push(format!("rstream.local_tunnel.port={port}"));
    Ok(ForwardSpec { host, port, name, publish, protocol: protocol.to_owned(), labels })
}

/// A fresh local id: `lt-` + 8 hex digits.
fn local_id() -> Result<String, ToolError> {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).map_err(|e| ToolError(format!("cannot generate a local tunnel id: {e}")))?;
    Ok(format!("lt-{:08x}", u32::from_be_bytes(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Result<ForwardSpec, ToolError> {
        forward_spec(&Args::from_value(v))
    }

    #[test]
    fn defaults_are_a_published_http_tunnel_on_localhost_with_upstream_labels() {
        let s = spec(json!({"port": "3000"})).unwrap();
        assert_eq!((s.host.as_str(), s.port, s.publish, s.protocol.as_str()), ("localhost", 3000, true, "http"));
        assert!(s.name.starts_with("codex-local-tunnel-"), "{}", s.name);
        assert_eq!(
            s.labels,
            [
                "application-protocol=rstream.local_tunnel",
                "rstream.local_tunnel.kind=codex",
                "rstream.local_tunnel.port=3000"
            ]
        );
        let s = spec(json!({"port": 8080, "protocol": "http/1.1", "labels": ["team=a"], "name": "web"})).unwrap();
        assert_eq!((s.protocol.as_str(), s.labels[0].as_str(), s.name.as_str()), ("http", "team=a", "web"));
    }

    #[test]
    fn invalid_requests_are_refused_with_the_reason() {
        let err = |v: Value| spec(v).unwrap_err().0;
        assert_eq!(err(json!({})), "missing required argument \"port\"");
        assert!(err(json!({"port": "70000"})).contains("between 1 and 65535"));
        assert!(err(json!({"port": "http"})).contains("whole number"));
        for protocol in ["tcp", "tls"] {
            assert_eq!(
                err(json!({"port": "1", "protocol": protocol})),
                format!("published tunnels on this engine are HTTP only; protocol {protocol:?} needs publish=false")
            );
            let private = spec(json!({"port": "1", "protocol": protocol, "publish": false})).unwrap();
            assert_eq!((private.protocol.as_str(), private.publish), (protocol, false));
        }
        assert_eq!(err(json!({"port": "1", "protocol": "bytestream"})), "protocol=bytestream requires publish=false");
        assert!(err(json!({"port": "1", "protocol": "quic"})).contains("not supported"));
        assert!(err(json!({"port": "1", "name": "../etc"})).contains("argument \"name\""));
        assert!(err(json!({"port": "1", "labels": ["novalue"]})).contains("not key=value"));
        assert!(err(json!({"port": "1", "labels": ["rstream.local_tunnel.port=9"]})).contains("set by"));
        assert!(err(json!({"port": "1", "host": "a b"})).contains("host"));
    }

    #[test]
    fn stopping_an_unknown_tunnel_names_the_known_ones() {
        let dir = std::env::temp_dir().join(format!("rstream-mcp-lt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let lt = LocalTunnels::new(PathBuf::from("/bin/false"), dir.join("config.yaml"));
        assert_eq!(lt.stop("lt-nope").unwrap_err().0, "no local tunnel \"lt-nope\" (known: none)");
        match lt.list().unwrap() {
            ToolOutput::Json { value, .. } => assert_eq!(value, json!({"local_tunnels": []})),
            other => panic!("{other:?}"),
        }
    }
}
