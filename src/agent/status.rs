//! `forward`'s output: the tunnel status block and connection lines, as text or one JSON object per line.
//!
//! Shapes follow upstream `rstream forward`: the text block is `tunnel status` then `  key : value` lines
//! (keys padded to the longest, missing values `-`); JSON status objects carry `version, update, plan,
//! provider, region, status, tunnel_id, forwarding, forwarded` (absent keys omitted); a stream prints
//! `incoming connection: …` / `{"active":true,…}` and, when it ends, `connection closed: idx=N` /
//! `{"event":"connection_closed","idx":N}`. JSON goes through serde-json-core (no serde_json on the device).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::events::AgentEvent;
use crate::http::date::civil_from_days;
use crate::proto::rstream::{opt_str, ServerDetails, TunnelProperties};

/// What `forward` shows about its tunnel; updated from [`AgentEvent`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TunnelStatus {
    /// Engine version (`<version> (<channel>)` off the stable channel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Update notice from the engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    /// Plan (hosted engines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `connecting`, `connected`, `online`, `connection failed (…)`, `tunnel creation failed (…)`, `disconnected`.
    pub status: String,
    /// Engine id of the tunnel once online.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_id: Option<String>,
    /// Where clients reach the tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<String>,
    /// The local target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<String>,
}

impl TunnelStatus {
    /// A status that will show `forwarded` and compute forwarding addresses with the engine's port.
    pub fn new(forwarded: String) -> Self {
        TunnelStatus { status: "connecting".into(), forwarded: Some(forwarded), ..Default::default() }
    }

    /// Applies a status-changing event; returns false for events that do not change the block.
    pub fn apply(&mut self, event: &AgentEvent, engine_port: u16) -> bool {
        match event {
            AgentEvent::Connecting { .. } => self.set_status("connecting"),
            AgentEvent::Connected { server, .. } => {
                self.take_server(server);
                self.set_status("connected")
            }
            AgentEvent::ConnectionFailed { error } => self.set_status(&format!("connection failed ({error})")),
            AgentEvent::Online { tunnel } => {
                self.tunnel_id = opt_str(&tunnel.id).map(str::to_owned);
                self.forwarding = Some(forwarding_address(tunnel, engine_port));
                self.set_status("online")
            }
            AgentEvent::TunnelFailed { error, .. } => self.set_status(&format!("tunnel creation failed ({error})")),
            AgentEvent::Disconnected { .. } => {
                self.tunnel_id = None;
                self.set_status("disconnected")
            }
            AgentEvent::StreamOpened { .. } | AgentEvent::StreamClosed { .. } => false,
        }
    }

    fn set_status(&mut self, status: &str) -> bool {
        self.status = status.to_owned();
        true
    }

    fn take_server(&mut self, server: &ServerDetails) {
        let own =
            |v: &Option<crate::proto::rstream::StringValue>| opt_str(v).filter(|s| !s.is_empty()).map(str::to_owned);
        self.version = own(&server.version).map(|v| match opt_str(&server.channel) {
            Some(channel) if !channel.is_empty() && channel != "stable" => format!("{v} ({channel})"),
            _ => v,
        });
        self.update = own(&server.update);
        self.plan = own(&server.plan);
        self.provider = own(&server.provider);
        self.region = own(&server.region);
    }

    /// The text block.
    pub fn text(&self) -> String {
        let rows = [
            ("version", &self.version),
            ("update", &self.update),
            ("plan", &self.plan),
            ("provider", &self.provider),
            ("region", &self.region),
            ("status", &Some(self.status.clone())),
            ("tunnel ID", &self.tunnel_id),
            ("forwarding", &self.forwarding),
            ("forwarded", &self.forwarded),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::from("tunnel status\n");
        for (key, value) in rows {
            out.push_str(&format!("  {key:<width$} : {}\n", value.as_deref().unwrap_or("-")));
        }
        out
    }
}

/// An incoming stream, as JSON.
#[derive(Serialize)]
struct IncomingJson<'a> {
    active: bool,
    date: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<String>,
}

/// A closed stream, as JSON.
#[derive(Serialize)]
struct ClosedJson {
    event: &'static str,
    idx: u64,
}

/// The line for a stream event, text or JSON (`None` for other events).
pub fn stream_line(event: &AgentEvent, json: bool, now: SystemTime) -> Option<String> {
    match event {
        AgentEvent::StreamOpened { stream_id, source_ip, .. } => {
            let stream = Some(stream_id.as_str()).filter(|s| !s.is_empty());
            let source = source_ip.map(|ip| ip.to_string());
            Some(match json {
                true => {
                    let date = rfc3339_millis(now);
                    let line = IncomingJson { active: true, date: &date, stream_id: stream, source_ip: source };
                    crate::cli::to_json(&line).ok()?
                }
                false => format!(
                    "incoming connection: date={} stream_id={} source_ip={} active=true",
                    text_date(now),
                    stream.unwrap_or("-"),
                    source.as_deref().unwrap_or("-")
                ),
            })
        }
        AgentEvent::StreamClosed { idx } => Some(match json {
            true => crate::cli::to_json(&ClosedJson { event: "connection_closed", idx: *idx }).ok()?,
            false => format!("connection closed: idx={idx}"),
        }),
        _ => None,
    }
}

/// Where clients reach a registered tunnel: `https://<host>` for published HTTP, `<host> (tls)` for TLS, the bare
/// host otherwise, `rstrm://<name> (unpublished)` for private tunnels. The engine's port is appended to the
/// published host when it is not 443 (a self-hosted engine on another port serves its tunnels there too).
pub fn forwarding_address(tunnel: &TunnelProperties, engine_port: u16) -> String {
    let name = opt_str(&tunnel.name).or(opt_str(&tunnel.id)).unwrap_or("");
    if !tunnel.is_published() {
        return format!("rstrm://{name} (unpublished)");
    }
    let host = opt_str(&tunnel.host).filter(|h| !h.is_empty()).unwrap_or(name);
    let host = match host.contains(':') || engine_port == 443 {
        true => host.to_owned(),
        false => format!("{host}:{engine_port}"),
    };
    match opt_str(&tunnel.protocol) {
        Some("http") => format!("https://{host}"),
        Some(p @ ("tls" | "dtls" | "quic")) => format!("{host} ({p})"),
        _ => host,
    }
}

/// The local target as upstream shows it: `http://host[:port] (http/1.1)` for HTTP, `host:port (tcp)` for TLS
/// tunnels terminated by the engine, `host:port` otherwise.
pub fn forwarded_address(host: &str, port: u16, tunnel: &TunnelProperties) -> String {
    match opt_str(&tunnel.protocol) {
        Some("http") => {
            let authority = if port == 80 { host.to_owned() } else { format!("{host}:{port}") };
            match opt_str(&tunnel.http_version) {
                Some(v) => format!("http://{authority} ({v})"),
                None => format!("http://{authority}"),
            }
        }
        Some("tls") => format!("{host}:{port} (tcp)"),
        _ => format!("{host}:{port}"),
    }
}

/// `2006-01-02 15:04:05.000 UTC`.
fn text_date(t: SystemTime) -> String {
    let (date, time) = utc(t);
    format!("{date} {time} UTC")
}

/// `2006-01-02T15:04:05.000Z`.
fn rfc3339_millis(t: SystemTime) -> String {
    let (date, time) = utc(t);
    format!("{date}T{time}Z")
}

fn utc(t: SystemTime) -> (String, String) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let time = format!("{:02}:{:02}:{:02}.{:03}", rem / 3600, rem / 60 % 60, rem % 60, since.subsec_millis());
    (format!("{y:04}-{mo:02}-{d:02}"), time)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::proto::rstream::some_str;

    fn tunnel(publish: bool, protocol: Option<&str>) -> TunnelProperties {
        TunnelProperties {
            id: some_str("t-1"),
            name: some_str("web"),
            publish: Some(publish.into()),
            protocol: protocol.map(|p| p.into()),
            host: some_str("web.t.localhost"),
            http_version: protocol.filter(|p| *p == "http").map(|_| "http/1.1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn forwarding_addresses_follow_the_reference_formats() {
        assert_eq!(forwarding_address(&tunnel(true, Some("http")), 8443), "https://web.t.localhost:8443");
        assert_eq!(forwarding_address(&tunnel(true, Some("http")), 443), "https://web.t.localhost");
        assert_eq!(forwarding_address(&tunnel(true, Some("tls")), 443), "web.t.localhost (tls)");
        assert_eq!(forwarding_address(&tunnel(false, None), 8443), "rstrm://web (unpublished)");
        assert_eq!(
            forwarded_address("localhost", 3000, &tunnel(true, Some("http"))),
            "http://localhost:3000 (http/1.1)"
        );
        assert_eq!(forwarded_address("localhost", 80, &tunnel(true, Some("http"))), "http://localhost (http/1.1)");
        assert_eq!(forwarded_address("localhost", 22, &tunnel(false, None)), "localhost:22");
    }

    #[test]
    fn status_block_is_aligned_with_dashes_for_missing_values() {
        let mut status = TunnelStatus::new("http://localhost:3000 (http/1.1)".into());
        let server =
            ServerDetails { version: some_str("0.1.0"), provider: some_str("self-hosted"), ..Default::default() };
        assert!(status.apply(&AgentEvent::Connected { client_id: "c".into(), server }, 8443));
        assert!(status.apply(&AgentEvent::Online { tunnel: Box::new(tunnel(true, Some("http"))) }, 8443));
        assert_eq!(
            status.text(),
            "tunnel status\n  version    : 0.1.0\n  update     : -\n  plan       : -\n  provider   : self-hosted\n  \
             region     : -\n  status     : online\n  tunnel ID  : t-1\n  forwarding : https://web.t.localhost:8443\n  \
             forwarded  : http://localhost:3000 (http/1.1)\n"
        );
        let json = crate::cli::to_json(&status).unwrap();
        assert_eq!(
            json,
            r#"{"version":"0.1.0","provider":"self-hosted","status":"online","tunnel_id":"t-1","forwarding":"https://web.t.localhost:8443","forwarded":"http://localhost:3000 (http/1.1)"}"#
        );
        assert!(status.apply(&AgentEvent::ConnectionFailed { error: "no route".into() }, 8443));
        assert_eq!(status.status, "connection failed (no route)");
    }

    #[test]
    fn stream_lines_in_text_and_json() {
        let at = UNIX_EPOCH + Duration::from_millis(1_136_214_245_007);
        let opened =
            AgentEvent::StreamOpened { idx: 1, stream_id: "s\"1".into(), source_ip: Some([127, 0, 0, 1].into()) };
        assert_eq!(
            stream_line(&opened, false, at).unwrap(),
            "incoming connection: date=2006-01-02 15:04:05.007 UTC stream_id=s\"1 source_ip=127.0.0.1 active=true"
        );
        assert_eq!(
            stream_line(&opened, true, at).unwrap(),
            r#"{"active":true,"date":"2006-01-02T15:04:05.007Z","stream_id":"s\"1","source_ip":"127.0.0.1"}"#
        );
        let closed = AgentEvent::StreamClosed { idx: 1 };
        assert_eq!(stream_line(&closed, false, at).unwrap(), "connection closed: idx=1");
        assert_eq!(stream_line(&closed, true, at).unwrap(), r#"{"event":"connection_closed","idx":1}"#);
        assert!(stream_line(&AgentEvent::Connecting { engine: "e".into() }, true, at).is_none());
    }
}
