//! `rstream forward [[host:]port]`: expose a local service through the engine.
//!
//! Builds the tunnel properties from the flags (published tunnels default to HTTP/1.1, as upstream's local
//! tunnels do), runs an [`Agent`] with a [`TcpTarget`] handler, and prints the status block on every change plus
//! one line per stream (see [`EventPrinter`]). Exits on a permanent refusal (bad token, no permission), at once
//! when the tunnel name is in use by another tunnel (unless `--retry`), when stdout goes away, or, with
//! `--no-retry`, on the first failure. The self-hosted engine publishes HTTP only: it refuses a published
//! `--tls`/`--tcp` tunnel with the reason (they work with `--no-publish`); managed rstream engines may publish them.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use argh::FromArgs;
use futures_lite::future;

use super::{output_or, refuse_given, to_json, CliError, CliResult, OutputFormat};
use crate::agent::status::{forwarded_address, stream_line, TunnelStatus};
use crate::agent::{Agent, AgentError, AgentEvent, EventSink, Retry, TcpTarget};
use crate::cli::output::Stdout;
use crate::config;
use crate::proto::rstream::{some_str, TunnelProperties};
use crate::transport::EngineEndpoint;

/// expose a local TCP/HTTP service: published at https://<name>.t.<engine-host> by default, private with
/// --no-publish (reachable only as rstrm://<name> by authenticated clients)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "forward",
    example = "rstream forward 3000 --name web",
    example = "rstream forward 127.0.0.1:8080 --name api --no-publish --label role=api -o json",
    example = "rstream forward 8000 --name hooks --token-auth   # callers need a token with tunnels.streams.create-delete"
)]
pub struct ForwardCommand {
    /// local target, [host:]port (default localhost:8080)
    #[argh(positional)]
    pub target: Option<String>,
    /// tunnel name
    #[argh(option)]
    pub name: Option<String>,
    /// label key=value (repeatable)
    #[argh(option)]
    pub label: Vec<String>,
    /// publish on the engine's public host (default)
    #[argh(switch)]
    pub publish: bool,
    /// keep the tunnel private
    #[argh(switch)]
    pub no_publish: bool,
    /// an HTTP tunnel (default when published)
    #[argh(switch)]
    pub http: bool,
    /// a TLS passthrough tunnel (the self-hosted engine: with --no-publish only)
    #[argh(switch)]
    pub tls: bool,
    /// raw TCP tunnel (the self-hosted engine: with --no-publish only)
    #[argh(switch)]
    pub tcp: bool,
    /// published HTTP only: the engine admits a request only with a token allowed to open streams
    /// (`Authorization: Bearer` or `?rstream.token=`) and strips it before the request reaches the service
    #[argh(switch)]
    pub token_auth: bool,
    /// output: text or json (one JSON object per line)
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// milliseconds between reconnect attempts (upper bound of the backoff; default 5000; not with --no-retry)
    #[argh(option)]
    pub retry_interval: Option<u64>,
    /// exit instead of reconnecting when the engine connection is lost
    #[argh(switch)]
    pub no_retry: bool,
    /// keep retrying also when the tunnel name is in use by another tunnel (default: exit at once)
    #[argh(switch)]
    pub retry: bool,
}

impl ForwardCommand {
    /// Runs the forwarder until interrupted.
    pub fn run(self) -> CliResult {
        let output = output_or(&self.output, OutputFormat::Text)?;
        let (host, port) = parse_target(self.target.as_deref())?;
        let tunnel = self.tunnel_properties()?;
        let retry = self.retry()?;
        let ctx = config::resolve()?;
        let endpoint = EngineEndpoint::from_context(&ctx)?;
        let status = TunnelStatus::new(forwarded_address(&host, port, &tunnel));
        let terminal = output == OutputFormat::Text && std::io::stdout().is_terminal();
        let (printer, output_failed) = EventPrinter::new(output, terminal, status, ctx.engine_port());
        let agent = Agent::new(endpoint, vec![tunnel], TcpTarget { addr: format!("{host}:{port}") })
            .with_events(printer.into_sink())
            .with_retry(retry);
        smol::block_on(future::or(async { Err(stopped(agent.run().await)) }, async {
            Err(output_failed.recv().await.unwrap_or_else(|_| CliError::new("forward output stopped")))
        }))
    }

    /// The tunnel as the flags describe it.
    fn tunnel_properties(&self) -> Result<TunnelProperties, CliError> {
        if self.publish && self.no_publish {
            return Err(CliError::new("--publish and --no-publish are mutually exclusive"));
        }
        let protocol = match (self.http, self.tls, self.tcp) {
            (false, false, false) if self.no_publish => None,
            (false, false, false) | (true, false, false) => Some("http"),
            (false, true, false) => Some("tls"),
            (false, false, true) => Some("tcp"),
            _ => return Err(CliError::new("--http, --tls and --tcp are mutually exclusive")),
        };
        if self.token_auth && (self.no_publish || protocol != Some("http")) {
            return Err(CliError::new("--token-auth needs a published HTTP tunnel (not --no-publish, --tls or --tcp)"));
        }
        let mut tunnel = TunnelProperties {
            name: some_str(self.name.clone().map_or_else(generated_name, Ok)?),
            r#type: some_str("bytestream"),
            publish: Some((!self.no_publish).into()),
            protocol: protocol.map(Into::into),
            http_version: protocol.filter(|p| *p == "http").map(|_| "http/1.1".into()),
            token_auth: self.token_auth.then(|| true.into()),
            ..Default::default()
        };
        for (k, v) in parse_labels(&self.label)? {
            tunnel.labels.insert(k, v);
        }
        Ok(tunnel)
    }

    fn retry(&self) -> Result<Retry, CliError> {
        if self.retry_interval == Some(0) {
            return Err(CliError::new("--retry-interval must be greater than 0 (milliseconds)"));
        }
        if self.retry && self.no_retry {
            return Err(CliError::new("--retry and --no-retry are mutually exclusive"));
        }
        let waits = [("--retry-interval", self.no_retry && self.retry_interval.is_some())];
        refuse_given(&waits, "spaces reconnect attempts, and --no-retry makes none")?;
        Ok(Retry {
            enabled: !self.no_retry,
            max_interval: self.retry_interval.map(Duration::from_millis),
            name_in_use: self.retry,
        })
    }
}

/// `[host:]port` → (host, port); default `localhost:8080`.
fn parse_target(target: Option<&str>) -> Result<(String, u16), CliError> {
    let target = target.unwrap_or("8080");
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => (host.trim_start_matches('[').trim_end_matches(']'), port),
        None => ("localhost", target),
    };
    let port = port.parse::<u16>().ok().filter(|p| *p != 0);
    match (host.is_empty(), port) {
        (false, Some(port)) => Ok((host.to_owned(), port)),
        _ => Err(CliError::new(format!("invalid target {target:?}: expected [host:]port"))),
    }
}

/// `--label key=value` values as pairs (an empty key or a missing `=` is refused, naming the value).
pub fn parse_labels(labels: &[String]) -> Result<Vec<(String, String)>, CliError> {
    labels
        .iter()
        .map(|label| match label.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(CliError::new(format!("label {label:?} is not key=value"))),
        })
        .collect()
}

/// A random tunnel name, `r` + 8 hex digits.
fn generated_name() -> Result<String, CliError> {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).map_err(|e| CliError::new(format!("cannot generate a tunnel name: {e}")))?;
    Ok(format!("r{:08x}", u32::from_be_bytes(b)))
}

/// The error `forward` exits with when its agent stops; a name in use says so in words and names the way out.
pub fn stopped(error: AgentError) -> CliError {
    match &error {
        AgentError::TunnelRefused { name, error: engine } if error.is_name_in_use() => CliError::new(format!(
            "tunnel {name:?}: name in use by another tunnel ({engine}); choose another --name, or pass --retry to \
             keep trying until it is free"
        )),
        _ => CliError::new(error.to_string()),
    }
}

/// ANSI: move the cursor up `n` lines, then erase from there to the end of the screen.
fn erase_lines_above(n: usize) -> String {
    format!("\x1b[{n}A\x1b[J")
}

/// Prints `forward`'s events: the status block on every change and a line per stream, as text or JSON. On a
/// terminal a changed block replaces the previous one in place (when nothing was printed after it) instead of
/// scrolling another copy; an unchanged block is not printed again. The first failed write is reported once
/// through the channel [`EventPrinter::new`] returns, which ends `forward` (quietly for a closed pipe).
struct EventPrinter {
    output: OutputFormat,
    terminal: bool,
    engine_port: u16,
    state: Mutex<PrinterState>,
    failed: async_channel::Sender<CliError>,
}

/// What has been printed so far.
struct PrinterState {
    status: TunnelStatus,
    /// The last text block printed, and whether it is still the last thing on the screen.
    last_block: Option<(String, bool)>,
}

impl EventPrinter {
    fn new(
        output: OutputFormat,
        terminal: bool,
        status: TunnelStatus,
        engine_port: u16,
    ) -> (EventPrinter, async_channel::Receiver<CliError>) {
        let (failed, output_failed) = async_channel::bounded(1);
        let state = Mutex::new(PrinterState { status, last_block: None });
        (EventPrinter { output, terminal, engine_port, state, failed }, output_failed)
    }

    fn into_sink(self) -> EventSink {
        Arc::new(move |event: &AgentEvent| {
            if let Err(e) = self.print(event) {
                let _ = self.failed.try_send(e);
            }
        })
    }

    fn print(&self, event: &AgentEvent) -> Result<(), CliError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.render(&mut state, event, SystemTime::now())? {
            Some(text) => {
                write!(Stdout, "{text}")?;
                crate::cli::output::flush()
            }
            None => Ok(()),
        }
    }

    /// What `event` adds to the output (`None`: nothing), updating what has been printed.
    fn render(
        &self,
        state: &mut PrinterState,
        event: &AgentEvent,
        now: SystemTime,
    ) -> Result<Option<String>, CliError> {
        if self.output == OutputFormat::None {
            return Ok(None);
        }
        let json = self.output == OutputFormat::Json;
        if let Some(line) = stream_line(event, json, now) {
            if let Some((_, last)) = state.last_block.as_mut() {
                *last = false;
            }
            return Ok(Some(format!("{line}\n")));
        }
        if !state.status.apply(event, self.engine_port) {
            return Ok(None);
        }
        if json {
            return Ok(Some(format!("{}\n", to_json(&state.status)?)));
        }
        let block = state.status.text();
        let redraw = match &state.last_block {
            Some((previous, _)) if *previous == block => return Ok(None),
            Some((previous, true)) if self.terminal => erase_lines_above(previous.lines().count()),
            _ => String::new(),
        };
        let text = format!("{redraw}{block}");
        state.last_block = Some((block, true));
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rstream::{Error as WireError, ErrorCode};

    fn cmd(args: &[&str]) -> ForwardCommand {
        ForwardCommand::from_args(&["forward"], args).unwrap()
    }

    #[test]
    fn targets_default_to_localhost_8080() {
        assert_eq!(parse_target(None).unwrap(), ("localhost".into(), 8080));
        assert_eq!(parse_target(Some("3000")).unwrap(), ("localhost".into(), 3000));
        assert_eq!(parse_target(Some("127.0.0.1:9")).unwrap(), ("127.0.0.1".into(), 9));
        assert_eq!(parse_target(Some("[::1]:80")).unwrap(), ("::1".into(), 80));
        for bad in ["x", ":80", "host:", "host:0", "host:70000"] {
            assert!(parse_target(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn published_tunnels_default_to_http_and_private_ones_to_raw_bytes() {
        let t = cmd(&["--name", "web", "--label", "role=api"]).tunnel_properties().unwrap();
        assert_eq!(t.protocol, some_str("http"));
        assert_eq!(t.http_version, some_str("http/1.1"));
        assert!(t.is_published());
        assert_eq!(t.labels.get("role").map(String::as_str), Some("api"));
        let t = cmd(&["--name", "db", "--no-publish"]).tunnel_properties().unwrap();
        assert_eq!((t.protocol.clone(), t.is_published(), t.token_auth), (None, false, None));
        let t = cmd(&["--name", "api", "--token-auth"]).tunnel_properties().unwrap();
        assert_eq!((t.protocol.clone(), t.token_auth), (some_str("http"), Some(true.into())));
        let t = cmd(&["--tcp", "--no-publish"]).tunnel_properties().unwrap();
        assert_eq!(t.protocol, some_str("tcp"));
        assert!(crate::proto::rstream::opt_str(&t.name).unwrap().starts_with('r'));
    }

    fn printer(output: OutputFormat, terminal: bool) -> (EventPrinter, PrinterState) {
        let status = TunnelStatus::new("localhost:9".into());
        let (printer, _failed) = EventPrinter::new(output, terminal, status.clone(), 443);
        (printer, PrinterState { status, last_block: None })
    }

    #[test]
    fn on_a_terminal_a_changed_block_replaces_the_previous_one_unless_lines_came_after_it() {
        let (p, mut state) = printer(OutputFormat::Text, true);
        let at = SystemTime::UNIX_EPOCH;
        let mut render = |event: AgentEvent| p.render(&mut state, &event, at).unwrap();
        let first = render(AgentEvent::Connecting { engine: "e".into() }).unwrap();
        assert!(first.starts_with("tunnel status\n"), "{first:?}");
        assert_eq!(render(AgentEvent::Connecting { engine: "e".into() }), None, "an unchanged block is not repeated");
        let failed = render(AgentEvent::ConnectionFailed { error: "refused".into() }).unwrap();
        assert!(failed.starts_with(&format!("{}tunnel status\n", erase_lines_above(10))), "{failed:?}");
        assert!(render(AgentEvent::StreamClosed { idx: 1 }).unwrap().starts_with("connection closed"));
        let after_line = render(AgentEvent::Connecting { engine: "e".into() }).unwrap();
        assert!(after_line.starts_with("tunnel status\n"), "a line printed after the block stays: {after_line:?}");
    }

    #[test]
    fn off_a_terminal_blocks_scroll_and_json_reports_every_change() {
        let (p, mut state) = printer(OutputFormat::Text, false);
        let at = SystemTime::UNIX_EPOCH;
        p.render(&mut state, &AgentEvent::Connecting { engine: "e".into() }, at).unwrap();
        let next = p.render(&mut state, &AgentEvent::ConnectionFailed { error: "x".into() }, at).unwrap().unwrap();
        assert!(next.starts_with("tunnel status\n"), "{next:?}");
        let (p, mut state) = printer(OutputFormat::Json, true);
        let line = p.render(&mut state, &AgentEvent::Connecting { engine: "e".into() }, at).unwrap().unwrap();
        assert_eq!(line, "{\"status\":\"connecting\",\"forwarded\":\"localhost:9\"}\n");
    }

    #[test]
    fn a_name_in_use_is_said_in_words_with_the_way_out() {
        let legacy = WireError { code: 409, ..WireError::new(ErrorCode::Unspecified, "taken") };
        for error in [legacy, WireError::new(ErrorCode::InvalidRequest, "taken")] {
            let refused = AgentError::TunnelRefused { name: "web".into(), error };
            let msg = stopped(refused).message;
            assert!(msg.starts_with("tunnel \"web\": name in use by another tunnel"), "{msg}");
            assert!(msg.contains("--retry") && msg.contains("taken"), "{msg}");
        }
        let bad = WireError::new(ErrorCode::FeatureNotAvailable, "bad protocol");
        let bad = AgentError::TunnelRefused { name: "web".into(), error: bad };
        assert_eq!(
            stopped(bad).message,
            "the engine refused tunnel \"web\": engine error 5000 FEATURE_NOT_AVAILABLE: bad protocol"
        );
    }

    #[test]
    fn contradictory_or_malformed_flags_are_refused() {
        assert!(cmd(&["--publish", "--no-publish"]).tunnel_properties().is_err());
        assert!(cmd(&["--http", "--tls"]).tunnel_properties().is_err());
        assert!(cmd(&["--token-auth", "--no-publish"]).tunnel_properties().is_err());
        assert!(cmd(&["--token-auth", "--tcp"]).tunnel_properties().is_err());
        let err = cmd(&["--label", "novalue"]).tunnel_properties().unwrap_err();
        assert!(err.message.contains("\"novalue\" is not key=value"), "{err}");
        assert!(cmd(&["--retry-interval", "0"]).retry().is_err());
        let retry = cmd(&["--retry-interval", "1500"]).retry().unwrap();
        assert_eq!((retry.enabled, retry.max_interval), (true, Some(Duration::from_millis(1500))));
        assert!(!cmd(&["--no-retry"]).retry().unwrap().enabled);
        let moot = cmd(&["--retry-interval", "1500", "--no-retry"]).retry().unwrap_err();
        assert!(moot.message.contains("--retry-interval") && moot.message.contains("--no-retry"), "{moot}");
        assert!(!cmd(&[]).retry().unwrap().name_in_use, "a name in use ends forward unless --retry");
        assert!(cmd(&["--retry"]).retry().unwrap().name_in_use);
        assert!(cmd(&["--retry", "--no-retry"]).retry().is_err());
    }
}
