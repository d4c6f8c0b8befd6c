//! `rstream forward [[host:]port]`: expose a local service through the engine.
//!
//! Builds the tunnel properties from the flags (published tunnels default to HTTP/1.1, as upstream's local
//! tunnels do), runs an [`Agent`] with a [`TcpTarget`] handler, and prints the status block on every change plus
//! one line per stream. Exits only on a permanent refusal (bad token, no permission) or, with `--no-retry`, on
//! the first failure. The self-hosted engine publishes HTTP only: it refuses a published `--tls`/`--tcp` tunnel
//! with the reason (they work with `--no-publish`); managed rstream engines may publish them.

use argh::FromArgs;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{output_or, to_json, CliError, CliResult, OutputFormat};
use crate::agent::status::{forwarded_address, stream_line, TunnelStatus};
use crate::agent::{Agent, AgentEvent, EventSink, Retry, TcpTarget};
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
    /// milliseconds between reconnect attempts (upper bound of the backoff; default 5000)
    #[argh(option)]
    pub retry_interval: Option<u64>,
    /// exit instead of reconnecting when the engine connection is lost
    #[argh(switch)]
    pub no_retry: bool,
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
        let events = print_events(output, status, ctx.engine_port());
        let agent = Agent::new(endpoint, vec![tunnel], TcpTarget { addr: format!("{host}:{port}") })
            .with_events(events)
            .with_retry(retry);
        Err(CliError::new(smol::block_on(agent.run()).to_string()))
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
        for label in &self.label {
            let (k, v) = label
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| CliError::new(format!("label {label:?} is not key=value")))?;
            tunnel.labels.insert(k.to_owned(), v.to_owned());
        }
        Ok(tunnel)
    }

    fn retry(&self) -> Result<Retry, CliError> {
        if self.retry_interval == Some(0) {
            return Err(CliError::new("--retry-interval must be greater than 0 (milliseconds)"));
        }
        Ok(Retry { enabled: !self.no_retry, max_interval: self.retry_interval.map(Duration::from_millis) })
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

/// A random tunnel name, `r` + 8 hex digits.
fn generated_name() -> Result<String, CliError> {
    let mut b = [0u8; 4];
    getrandom::getrandom(&mut b).map_err(|e| CliError::new(format!("cannot generate a tunnel name: {e}")))?;
    Ok(format!("r{:08x}", u32::from_be_bytes(b)))
}

/// Prints the status block on every change and a line per stream, in the chosen format.
fn print_events(output: OutputFormat, status: TunnelStatus, engine_port: u16) -> EventSink {
    let status = Mutex::new(status);
    Arc::new(move |event: &AgentEvent| {
        if output == OutputFormat::None {
            return;
        }
        let json = output == OutputFormat::Json;
        if let Some(line) = stream_line(event, json, SystemTime::now()) {
            return println!("{line}");
        }
        let mut status = status.lock().unwrap_or_else(|p| p.into_inner());
        if status.apply(event, engine_port) {
            match json {
                true => match to_json(&*status) {
                    Ok(line) => println!("{line}"),
                    Err(e) => log_warn!("{e}"),
                },
                false => print!("{}", status.text()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn contradictory_or_malformed_flags_are_refused() {
        assert!(cmd(&["--publish", "--no-publish"]).tunnel_properties().is_err());
        assert!(cmd(&["--http", "--tls"]).tunnel_properties().is_err());
        assert!(cmd(&["--token-auth", "--no-publish"]).tunnel_properties().is_err());
        assert!(cmd(&["--token-auth", "--tcp"]).tunnel_properties().is_err());
        let err = cmd(&["--label", "novalue"]).tunnel_properties().unwrap_err();
        assert!(err.message.contains("\"novalue\" is not key=value"), "{err}");
        assert!(cmd(&["--retry-interval", "0"]).retry().is_err());
        let retry = cmd(&["--retry-interval", "1500", "--no-retry"]).retry().unwrap();
        assert_eq!((retry.enabled, retry.max_interval), (false, Some(Duration::from_millis(1500))));
    }
}
