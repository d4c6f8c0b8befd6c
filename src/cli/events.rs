//! `rstream events`: follow the engine's event stream (`state.initial`, `client.*`, `tunnel.*`, `stream.summary`),
//! print each event and optionally POST it to a receiver (`--forward-to`, signed with `--webhook`).
//!
//! The subscription uses the current context (engine, token, CA) like `tunnels list`. When it ends or breaks, it is
//! opened again with a growing delay (up to [`EVENT_CLIENT_RECONNECT_MAX`]) and starts over with a fresh
//! `state.initial`; a refusal (401/403, bad filters) ends the command with an error instead.

use std::path::PathBuf;

use argh::FromArgs;
use serde_json::Value;

use super::terminal_text::printable;
use super::{CliError, CliResult};
use crate::backoff::Backoff;
use crate::cli::output::Stdout;
use crate::config;
use crate::limits::EVENT_CLIENT_RECONNECT_MAX;
use crate::operator::events::{EventStream, Transport, WatchError, WatchParams};
use crate::operator::filter::{parse, parse_clients, BareWords};
use crate::operator::webhook::{random_id, Forwarder, Signing};
use crate::secret::Secret;
use crate::transport::EngineEndpoint;

/// follow the engine's events (tunnels and clients coming and going, stream summaries)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "events",
    example = "rstream events",
    example = "rstream events -o ndjson --events tunnel.created,tunnel.deleted",
    example = "rstream events --tunnel-filter 'labels.role=codex' --transport sse",
    example = "rstream events --forward-to http://127.0.0.1:9000/hooks --webhook --webhook-secret-file ~/.rstream-whsec",
    note = "Event types: state.initial (always first, after every reconnect), client.created|updated|deleted, \
            tunnel.created|updated|deleted, stream.summary. --tunnel-filter takes the keys of `tunnels list \
            --filter`; --client-filter takes id, status, user_id, agent, channel, version, os, arch, \
            protocol_version, labels.<k>. Both are applied by the engine, --events here. With --webhook each POST \
            carries rstream-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.\" + body)> (see README, \
            \"Verifying forwarded events\")."
)]
pub struct EventsCommand {
    /// comma-separated event types to show (default: all)
    #[argh(option)]
    pub events: Option<String>,
    /// tunnel filters, `--filter` syntax (applied by the engine)
    #[argh(option)]
    pub tunnel_filter: Option<String>,
    /// client filters, `--filter` syntax with client keys (applied by the engine)
    #[argh(option)]
    pub client_filter: Option<String>,
    /// websocket (default) or sse
    #[argh(option, default = "Transport::WebSocket", from_str_fn(parse_transport))]
    pub transport: Transport,
    /// output: text (default), json (pretty) or ndjson (one event per line)
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// POST each event as JSON to this http:// or https:// URL (10 s timeout, bounded retries)
    #[argh(option)]
    pub forward_to: Option<String>,
    /// sign forwarded events like upstream webhooks (needs --webhook-secret-file or --webhook-secret)
    #[argh(switch)]
    pub webhook: bool,
    /// file holding the webhook secret (whsec_…)
    #[argh(option)]
    pub webhook_secret_file: Option<PathBuf>,
    /// the webhook secret itself (less safe: visible in the process list and shell history)
    #[argh(option)]
    pub webhook_secret: Option<String>,
    /// rstream-webhook-id to send (default: generated, cli_we_…)
    #[argh(option)]
    pub webhook_id: Option<String>,
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    s.parse()
}

/// How events are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Text,
    Json,
    Ndjson,
}

impl EventsCommand {
    /// Runs the command until interrupted or refused.
    pub fn run(self) -> CliResult {
        let output = match self.output.as_deref() {
            None | Some("text") => Output::Text,
            Some("json") => Output::Json,
            Some("ndjson") => Output::Ndjson,
            Some(other) => {
                return Err(CliError::new(format!("unknown output format {other:?}: expected text, json or ndjson")))
            }
        };
        let kinds: Vec<String> = self
            .events
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        let params = WatchParams {
            tunnels: self
                .tunnel_filter
                .as_deref()
                .map(|f| parse(f, BareWords::Refuse).map(|f| f.tunnels))
                .transpose()?,
            clients: self.client_filter.as_deref().map(parse_clients).transpose()?,
        };
        let forwarder = self.forwarder()?;
        let endpoint = EngineEndpoint::from_context(&config::resolve()?)?;
        smol::block_on(follow(&endpoint, self.transport, &params, forwarder.as_ref(), |event| {
            let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
            if !kinds.is_empty() && !kinds.iter().any(|k| k == kind) {
                return Ok(false);
            }
            print(event, output)?;
            Ok(true)
        }))
    }

    /// The forwarder `--forward-to` and the webhook flags describe, refusing flags that mean nothing alone.
    fn forwarder(&self) -> Result<Option<Forwarder>, CliError> {
        let secret_given = self.webhook_secret_file.is_some() || self.webhook_secret.is_some();
        let Some(url) = &self.forward_to else {
            let webhook_flags = [
                ("--webhook", self.webhook),
                ("--webhook-secret-file", self.webhook_secret_file.is_some()),
                ("--webhook-secret", self.webhook_secret.is_some()),
                ("--webhook-id", self.webhook_id.is_some()),
            ];
            super::refuse_given(&webhook_flags, "needs --forward-to URL")?;
            return Ok(None);
        };
        if !self.webhook {
            let flags = [
                ("--webhook-secret-file", self.webhook_secret_file.is_some()),
                ("--webhook-secret", self.webhook_secret.is_some()),
                ("--webhook-id", self.webhook_id.is_some()),
            ];
            super::refuse_given(&flags, "needs --webhook")?;
            return Ok(Some(Forwarder::new(url, None).map_err(CliError::new)?));
        }
        if !secret_given {
            return Err(CliError::new("--webhook needs --webhook-secret-file FILE (or --webhook-secret VALUE)"));
        }
        let (text, source) = match (&self.webhook_secret_file, &self.webhook_secret) {
            (Some(_), Some(_)) => {
                return Err(CliError::new("give either --webhook-secret-file or --webhook-secret, not both"))
            }
            (Some(path), None) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| CliError::new(format!("--webhook-secret-file {shown:?}: {e}")))?;
                (text, format!("--webhook-secret-file {shown:?}"))
            }
            (None, Some(value)) => (value.clone(), "--webhook-secret".to_owned()),
            (None, None) => unreachable!("checked above"),
        };
        let secret = text.trim();
        if secret.is_empty() {
            return Err(CliError::new(format!("the webhook secret from {source} is empty")));
        }
        let webhook_id = match &self.webhook_id {
            Some(id) => id.clone(),
            None => random_id("cli_we_").map_err(CliError::new)?,
        };
        let signing = Signing { secret: Secret::from(secret), webhook_id };
        Ok(Some(Forwarder::new(url, Some(signing)).map_err(CliError::new)?))
    }
}

/// Subscribes, hands every event to `handle` (which prints it and says whether it passed the type filter), delivers
/// the ones that passed to `forwarder`, and reconnects when the stream is lost. Returns only on a refusal or a
/// handler error.
async fn follow(
    endpoint: &EngineEndpoint,
    transport: Transport,
    params: &WatchParams,
    forwarder: Option<&Forwarder>,
    mut handle: impl FnMut(&Value) -> Result<bool, CliError>,
) -> CliResult {
    let mut backoff = Backoff::new(Some(EVENT_CLIENT_RECONNECT_MAX));
    loop {
        let lost = match EventStream::open(endpoint, transport, params).await {
            Err(WatchError::Refused(status, message)) => {
                return Err(CliError::new(format!(
                    "the engine {} refused the event subscription: {message} ({status}){}",
                    endpoint.addr,
                    hint(status)
                )))
            }
            Err(WatchError::Lost(why)) => why,
            Ok(mut stream) => {
                log_info!("events: subscribed to {} ({transport:?})", endpoint.addr);
                loop {
                    match stream.next().await {
                        Ok(event) => {
                            backoff.reset();
                            if let (true, Some(forwarder)) = (handle(&event)?, forwarder) {
                                if let Err(e) = forwarder.deliver(&event).await {
                                    log_warn!("events: forwarding failed, event skipped: {e}");
                                }
                            }
                        }
                        Err(e) => break e.to_string(),
                    }
                }
            }
        };
        let delay = backoff.next_delay();
        log_warn!("events: {lost}; reconnecting in {:.1} s", delay.as_secs_f64());
        async_io::Timer::after(delay).await;
    }
}

/// What to check after a refusal.
fn hint(status: u16) -> &'static str {
    match status {
        401 => " — check the context's token (rstream context show)",
        403 => " — the token needs the tunnels.resources.read-only permission",
        400 => " — check --tunnel-filter / --client-filter",
        _ => "",
    }
}

/// Prints one event in `output`.
fn print(event: &Value, output: Output) -> Result<(), CliError> {
    match output {
        Output::Ndjson => writeln!(Stdout, "{event}"),
        Output::Json => writeln!(Stdout, "{}", serde_json::to_string_pretty(event).map_err(CliError::from)?),
        Output::Text => writeln!(Stdout, "{}", printable(&text_line(event))),
    }
}

/// One readable line: time, type and what the event is about.
fn text_line(event: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let kind = s(&event["type"]);
    let o = &event["object"];
    let when = event.get("created_at").map(s).filter(|t| !t.is_empty()).unwrap_or_else(|| s(&o["snapshot_at"]));
    let about = match kind.split('.').next().unwrap_or("") {
        "state" => format!(
            "{} clients, {} tunnels",
            o["clients"].as_array().map_or(0, Vec::len),
            o["tunnels"].as_array().map_or(0, Vec::len)
        ),
        "tunnel" => format!("{} ({}) {}", s(&o["name"]), s(&o["id"]), s(&o["status"])),
        "client" => format!("{} user={} {}", s(&o["id"]), s(&o["user_id"]), s(&o["agent"])),
        "stream" => {
            let r = &o["response"];
            let m = &r["metrics"];
            let target = match s(&o["routing"]["decision"]).as_str() {
                "routed" => s(&o["routing"]["tunnel"]["tunnelName"]),
                other => other.to_owned(),
            };
            format!(
                "{target} {} up={} down={} {}ms",
                s(&r["outcome"]),
                m["upstream_bytes"].as_u64().unwrap_or(0),
                m["downstream_bytes"].as_u64().unwrap_or(0),
                m["duration_ms"].as_u64().unwrap_or(0)
            )
        }
        _ => String::new(),
    };
    format!("{when}  {kind:<15}  {about}").trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_name_what_each_event_is_about() {
        let initial =
            serde_json::json!({"type":"state.initial","object":{"snapshot_at":"T0","clients":[{}],"tunnels":[]}});
        assert_eq!(text_line(&initial), "T0  state.initial    1 clients, 0 tunnels");
        let created = serde_json::json!({"type":"tunnel.created","created_at":"T1",
            "object":{"name":"web","id":"abc","status":"online"}});
        assert_eq!(text_line(&created), "T1  tunnel.created   web (abc) online");
        let summary = serde_json::json!({"type":"stream.summary","created_at":"T2","object":{
            "routing":{"decision":"routed","tunnel":{"tunnelName":"web"}},
            "response":{"outcome":"connected","metrics":{"upstream_bytes":5,"downstream_bytes":7,"duration_ms":3}}}});
        assert_eq!(text_line(&summary), "T2  stream.summary   web connected up=5 down=7 3ms");
    }
}
