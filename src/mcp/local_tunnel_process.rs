//! The `rstream forward` child behind a local tunnel: spawn it detached, wait for its `online` status line,
//! recognise it later by pid, and stop it.
//!
//! The child is this same binary (`forward <host:port> -o json --name …`) with `RSTREAM_CONFIG` set, in its own
//! process group (so the agent's Ctrl-C or the MCP server's exit does not take it down), stdin closed and
//! stdout/stderr appended to a 0600 log file in a 0700 directory next to the config. Its first `online` JSON
//! line carries the tunnel id and the forwarding address. Signals go through [`crate::webtty::sys`] (the one
//! module allowed `unsafe`), since std can only SIGKILL its own children.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::args::ToolError;
use crate::limits::{MCP_TUNNEL_POLL_INTERVAL, MCP_TUNNEL_STOP_GRACE};
use crate::webtty::sys;

/// Most bytes of a `forward` log scanned for its status lines, and the tail shown in errors.
const LOG_SCAN_LEN: u64 = 256 * 1024;
/// Log tail quoted when a `forward` fails.
const LOG_TAIL_LEN: usize = 2048;

/// What to run: `rstream forward` flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardSpec {
    /// Local host.
    pub host: String,
    /// Local port.
    pub port: u16,
    /// Tunnel name.
    pub name: String,
    /// Published or private.
    pub publish: bool,
    /// `http`, `tls`, `tcp`, or `bytestream` (no protocol: raw private stream).
    pub protocol: String,
    /// Labels `key=value`.
    pub labels: Vec<String>,
}

impl ForwardSpec {
    /// The command line after the executable.
    pub fn args(&self) -> Vec<String> {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let mut args = vec!["forward".to_owned(), format!("{host}:{}", self.port), "-o".into(), "json".into()];
        args.extend(["--name".to_owned(), self.name.clone()]);
        args.push(if self.publish { "--publish" } else { "--no-publish" }.to_owned());
        match self.protocol.as_str() {
            "http" => args.push("--http".into()),
            "tls" => args.push("--tls".into()),
            "tcp" => args.push("--tcp".into()),
            _ => {}
        }
        for label in &self.labels {
            args.extend(["--label".to_owned(), label.clone()]);
        }
        args
    }
}

/// The `online` status line of a `forward`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OnlineStatus {
    /// `online`, `connecting`, `connection failed (…)`, …
    pub status: String,
    /// Engine tunnel id.
    pub tunnel_id: String,
    /// Public or private address.
    pub forwarding: String,
    /// Local target description.
    pub forwarded: String,
}

impl OnlineStatus {
    /// The address an agent can use: the forwarding string without its ` (tls)` / ` (unpublished)` note.
    pub fn url(&self) -> String {
        match self.forwarding.rsplit_once(" (") {
            Some((addr, note)) if note.ends_with(')') => addr.to_owned(),
            _ => self.forwarding.clone(),
        }
    }
}

/// Starts `exe forward …` detached, logging to a new file in `log_dir`. Returns the child and its log path.
pub fn spawn_forward(
    exe: &Path,
    config: &Path,
    spec: &ForwardSpec,
    log_dir: &Path,
) -> Result<(Child, PathBuf), ToolError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(log_dir)
        .map_err(|e| ToolError(format!("cannot create log directory {}: {e}", log_dir.display())))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let log_path = log_dir.join(format!("{}-{nanos}.log", spec.name));
    let log = fs::OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| ToolError(format!("cannot create log file {}: {e}", log_path.display())))?;
    let log_err = log.try_clone().map_err(|e| ToolError(format!("log file {}: {e}", log_path.display())))?;
    let child = Command::new(exe)
        .args(spec.args())
        .env("RSTREAM_CONFIG", config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(|e| ToolError(format!("cannot start {} forward: {e}", exe.display())))?;
    Ok((child, log_path))
}

/// Waits until the log shows `online` (returned), a failure status, the child's exit, `timeout`, or
/// `cancelled()` — all but the first are errors (quoting the log tail); the caller stops the child.
pub fn wait_online(
    child: &mut Child,
    log_path: &Path,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<OnlineStatus, ToolError> {
    let deadline = Instant::now() + timeout;
    loop {
        if cancelled() {
            return Err(ToolError::new(
                "cancelled by the client (notifications/cancelled) before the tunnel was online",
            ));
        }
        let log = read_head(log_path);
        for status in log.lines().filter_map(|l| serde_json::from_str::<OnlineStatus>(l).ok()) {
            if status.status == "online" {
                return Ok(status);
            }
            if status.status.contains("failed") {
                return Err(ToolError(format!("forward reported {:?}; log:\n{}", status.status, tail(&log))));
            }
        }
        if let Ok(Some(exit)) = child.try_wait() {
            return Err(ToolError(format!("forward exited ({exit}) before going online; log:\n{}", tail(&log))));
        }
        if Instant::now() >= deadline {
            return Err(ToolError(format!(
                "forward did not report online within {timeout:?}; log:\n{}",
                tail(&read_head(log_path))
            )));
        }
        std::thread::sleep(MCP_TUNNEL_POLL_INTERVAL);
    }
}

fn read_head(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(f) = fs::File::open(path) {
        let _ = f.take(LOG_SCAN_LEN).read_to_string(&mut text);
    }
    text
}

fn tail(log: &str) -> &str {
    let mut start = log.len().saturating_sub(LOG_TAIL_LEN);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    log[start..].trim_end()
}

/// The last `max` bytes of a log file (for `rstream_local_tunnel_list` diagnostics).
pub fn log_tail(path: &Path, max: u64) -> String {
    let read = || -> io::Result<String> {
        let mut f = fs::File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
        let mut bytes = Vec::new();
        f.take(max).read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_default()
}

/// Whether `pid` is still the `forward` named `name` (not a recycled pid, not a zombie).
pub fn is_forward_running(pid: u32, name: &str) -> bool {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => {
            let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            args.contains(&b"forward".as_slice())
                && args.windows(2).any(|w| w[0] == b"--name" && w[1] == name.as_bytes())
        }
        // No procfs (macOS): fall back to "some process has this pid".
        Err(_) if !Path::new("/proc/self").exists() => i32::try_from(pid).is_ok_and(sys::group_exists),
        Err(_) => false,
    }
}

/// Stops the `forward` `pid` named `name`: SIGTERM, then SIGKILL after [`MCP_TUNNEL_STOP_GRACE`]. `child` is the
/// handle when this server started it (so it is reaped). Returns whether it was running.
pub fn stop_forward(pid: u32, name: &str, mut child: Option<Child>) -> Result<bool, ToolError> {
    let mut running = || match child.as_mut() {
        Some(c) => matches!(c.try_wait(), Ok(None)),
        None => is_forward_running(pid, name),
    };
    if !running() {
        return Ok(false);
    }
    signal(pid, libc::SIGTERM)?;
    let deadline = Instant::now() + MCP_TUNNEL_STOP_GRACE;
    while running() {
        if Instant::now() >= deadline {
            match child.as_mut() {
                Some(c) => c.kill().map_err(|e| ToolError(format!("cannot kill forward {pid}: {e}")))?,
                None => signal(pid, libc::SIGKILL)?,
            }
            if let Some(c) = child.as_mut() {
                let _ = c.wait();
            }
            break;
        }
        std::thread::sleep(MCP_TUNNEL_POLL_INTERVAL);
    }
    Ok(true)
}

fn signal(pid: u32, signal: i32) -> Result<(), ToolError> {
    let pid = i32::try_from(pid).map_err(|_| ToolError(format!("pid {pid} out of range")))?;
    sys::signal_process(pid, signal).map_err(|e| ToolError(format!("cannot signal forward {pid}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(protocol: &str, publish: bool) -> ForwardSpec {
        ForwardSpec {
            host: "localhost".into(),
            port: 3000,
            name: "web".into(),
            publish,
            protocol: protocol.into(),
            labels: vec!["a=b".into()],
        }
    }

    #[test]
    fn command_line_carries_target_name_publish_protocol_and_labels() {
        assert_eq!(
            spec("http", true).args(),
            ["forward", "localhost:3000", "-o", "json", "--name", "web", "--publish", "--http", "--label", "a=b"]
        );
        let private = spec("bytestream", false).args();
        assert!(private.contains(&"--no-publish".to_owned()) && !private.iter().any(|a| a == "--http"));
        let mut v6 = spec("tcp", true);
        v6.host = "::1".into();
        assert_eq!(v6.args()[1], "[::1]:3000");
        assert!(v6.args().contains(&"--tcp".to_owned()));
    }

    #[test]
    fn url_drops_the_forwarding_note() {
        let s = |f: &str| OnlineStatus { forwarding: f.into(), ..Default::default() }.url();
        assert_eq!(s("https://web.t.localhost:8443"), "https://web.t.localhost:8443");
        assert_eq!(s("web.t.localhost:8443 (tls)"), "web.t.localhost:8443");
        assert_eq!(s("rstrm://web (unpublished)"), "rstrm://web");
    }

    #[test]
    fn a_forward_that_fails_or_exits_is_reported_with_its_log() {
        let dir = std::env::temp_dir().join(format!("rstream-mcp-fwd-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("x.log");
        fs::write(&log, "{\"status\":\"connecting\"}\n{\"status\":\"tunnel creation failed (name taken)\"}\n").unwrap();
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let err = wait_online(&mut child, &log, Duration::from_secs(5), &|| false).unwrap_err();
        assert!(err.0.contains("tunnel creation failed (name taken)"), "{err}");
        assert!(stop_forward(child.id(), "x", Some(child)).unwrap());

        fs::write(&log, "error: no context selected\n").unwrap();
        let mut child = Command::new("true").spawn().unwrap();
        let err = wait_online(&mut child, &log, Duration::from_secs(5), &|| false).unwrap_err();
        assert!(err.0.contains("exited") && err.0.contains("no context selected"), "{err}");

        fs::write(&log, "{\"status\":\"online\",\"tunnel_id\":\"t1\",\"forwarding\":\"https://w.t.localhost\"}\n")
            .unwrap();
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let online = wait_online(&mut child, &log, Duration::from_secs(5), &|| false).unwrap();
        assert_eq!((online.tunnel_id.as_str(), online.url().as_str()), ("t1", "https://w.t.localhost"));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_pid_that_is_not_our_forward_is_not_running() {
        let mut other = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(!is_forward_running(other.id(), "web"));
        assert!(!stop_forward(other.id(), "web", None).unwrap(), "must not signal a stranger");
        assert!(matches!(other.try_wait(), Ok(None)), "the stranger survives");
        let _ = other.kill();
        let _ = other.wait();
    }
}
